//! The `parnet` subcommands. Each is a thin layer: parse, call a library function, print.

mod bench;
mod bench_train;
mod eval;
mod fuse;
mod infer;
mod info;
mod study;
mod train;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use parnet_core::models::NetworkSpec;
use parnet_core::models::parnet::Activation;

use crate::evaluate::EvalResult;
use crate::model_io::ModelSpec;

pub use bench::{LatencyStats, measure_latency};
pub use bench_train::{TrainStepProtocol, TrainStepStats, measure_train_step};
pub use eval::{EvalArgs, run_eval};
pub use fuse::fuse_weights;
pub use infer::infer_file;
pub use info::{info_json, info_text};
pub use study::{DepthArgs, StudyCommand, run_study};
pub use train::{TrainArgs, run_train};

/// parnet: ParNet ("Non-deep Networks") on the CPU.
#[derive(Parser, Debug)]
#[command(name = "parnet", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model (no arguments: a small ParNet on the built-in synthetic set).
    Train(TrainArgs),
    /// Top-1, top-5 and loss of a checkpoint (or deploy weights) on a data set.
    Eval(EvalArgs),
    /// Data sets: convert and inspect.
    Data {
        #[command(subcommand)]
        what: DataCommand,
    },
    /// Parameters, multiply-adds, depth and per-layer output shapes of a model.
    Info {
        #[command(flatten)]
        model: ModelArgs,
        /// Square input size (default: 224, or 32 for parnet-cifar).
        #[arg(long)]
        image_size: Option<usize>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a model on the tensor `input` (N,3,H,W) of a safetensors file; write `logits`.
    Infer {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        weights: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        /// Run the reparameterized (deploy) graph.
        #[arg(long)]
        fused: bool,
        #[command(flatten)]
        threads: ThreadArgs,
    },
    /// Reparameterize training weights into deploy weights.
    Fuse {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        weights: PathBuf,
        #[arg(long)]
        output: PathBuf,
    },
    /// Timing commands.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Studies over many networks (issue 6: is depth necessary?).
    Study {
        #[command(subcommand)]
        what: StudyCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Forward latency (inference) of a model with random weights.
    Latency {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Square input size (default: the model's).
        #[arg(long)]
        image_size: Option<usize>,
        #[arg(long)]
        fused: bool,
        /// Run the three streams one after another instead of concurrently.
        #[arg(long)]
        sequential_streams: bool,
        /// Timed runs after warm-up.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        #[command(flatten)]
        threads: ThreadArgs,
        #[arg(long)]
        json: bool,
    },
    /// Training-step throughput (forward + backward + SGD) on fixed random inputs, timed as
    /// tools/bench_torch_train.py times PyTorch.
    Train {
        /// Any trainable network: parnet-cifar, sequential-parnet-cifar, resnet-20, ...
        #[arg(long, default_value = "parnet-cifar")]
        model: String,
        #[arg(long, default_value_t = 10)]
        classes: usize,
        /// Block activation: silu (paper) or relu (released configs).
        #[arg(long, default_value = "silu")]
        activation: String,
        /// Width multipliers, comma-separated (one case each).
        #[arg(long, value_delimiter = ',')]
        width_mult: Vec<f64>,
        /// Batch sizes, comma-separated (one case each).
        #[arg(long, value_delimiter = ',', default_value = "64")]
        batch: Vec<usize>,
        #[arg(long, default_value_t = 32)]
        image_size: usize,
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Timed steps per case.
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Then run as many steps again with the per-op profiler and print where a step goes.
        #[arg(long)]
        profile: bool,
        #[command(flatten)]
        threads: ThreadArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Convert an image folder (root/<class>/<image>) into one file read in a single pass.
    Pack {
        /// The image folder.
        src: PathBuf,
        /// The output folder.
        dst: PathBuf,
        /// Resize the shorter side and centre-crop to SIZE x SIZE.
        #[arg(long)]
        size: Option<usize>,
        /// Skip (and count) images that cannot be decoded.
        #[arg(long)]
        skip_corrupt: bool,
    },
    /// Format, count, image size, per-class counts, per-channel mean and std.
    Inspect {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// Which model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// parnet-s, parnet-s96, parnet-m, parnet-l, parnet-xl or parnet-cifar.
    #[arg(long)]
    pub model: String,
    /// Number of classes (default 1000, or 10 for parnet-cifar).
    #[arg(long)]
    pub classes: Option<usize>,
    /// Block activation: silu (paper) or relu (released configs).
    #[arg(long, default_value = "silu")]
    pub activation: String,
    /// Width multiplier (rounds widths to multiples of 8).
    #[arg(long)]
    pub width_mult: Option<f64>,
}

impl ModelArgs {
    pub fn spec(&self) -> Result<ModelSpec> {
        Ok(ModelSpec {
            name: self.model.clone(),
            classes: self.classes,
            activation: Activation::parse(&self.activation)?,
            width_mult: self.width_mult,
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct ThreadArgs {
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl ThreadArgs {
    /// Sizes the one rayon pool; must run before any parallel work.
    pub fn apply(&self) -> Result<()> {
        crate::train::set_threads(self.threads)
    }
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Study { what } => run_study(&what)?,
        Command::Info {
            model,
            image_size,
            json,
        } => {
            let spec = model.spec()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&info_json(&spec, image_size)?)?
                );
            } else {
                print!("{}", info_text(&spec, image_size)?);
            }
        }
        Command::Train(args) => {
            let summary = run_train(&args)?;
            if summary.interrupted {
                println!(
                    "run stopped early in {}; resume with --resume",
                    summary.run_dir.display()
                );
            } else {
                println!(
                    "done: {} epochs, validation top-1 {:.2}%{} (best {:.2}%), {:.0} images/s, {:.0} s; run in {}",
                    summary.epochs_done,
                    100.0 * summary.final_val.top1,
                    summary.final_val_flip.map_or(String::new(), |f| format!(
                        " ({:.2}% with flip TTA)",
                        100.0 * f.top1
                    )),
                    100.0 * summary.best_val_top1,
                    summary.images_per_sec,
                    summary.seconds,
                    summary.run_dir.display()
                );
            }
        }
        Command::Eval(args) => {
            let r = run_eval(&args)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                let line = |what: &str, r: &EvalResult| {
                    println!(
                        "{} images{what}: top-1 {:.2}%, top-5 {:.2}%, loss {:.4}",
                        r.images,
                        100.0 * r.top1,
                        100.0 * r.top5,
                        r.loss
                    )
                };
                line("", &r.plain);
                if let Some(flip) = &r.flip {
                    line(" with flip TTA", flip);
                }
            }
        }
        Command::Data {
            what:
                DataCommand::Pack {
                    src,
                    dst,
                    size,
                    skip_corrupt,
                },
        } => {
            let options = parnet_data::PackOptions {
                size,
                skip_corrupt,
                ..Default::default()
            };
            let report = parnet_data::pack_folder(&src, &dst, &options)?;
            println!(
                "packed {} images ({}x{}, {} classes) into {}{}",
                report.count,
                report.height,
                report.width,
                report.num_classes,
                report.output.display(),
                if report.skipped.is_empty() {
                    String::new()
                } else {
                    format!("; skipped {} unreadable images", report.skipped.len())
                }
            );
        }
        Command::Data {
            what: DataCommand::Inspect { path, json },
        } => {
            let report = parnet_data::inspect(&path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
        }
        Command::Infer {
            model,
            weights,
            input,
            output,
            fused,
            threads,
        } => {
            threads.apply()?;
            let shape = infer_file(&model.spec()?, &weights, &input, &output, fused)?;
            println!("wrote logits {shape:?} to {}", output.display());
        }
        Command::Fuse {
            model,
            weights,
            output,
        } => {
            let (before, after) = fuse_weights(&model.spec()?, &weights, &output)?;
            println!(
                "fused {before} -> {after} parameters; wrote {}",
                output.display()
            );
        }
        Command::Bench {
            what:
                BenchCommand::Latency {
                    model,
                    batch,
                    image_size,
                    fused,
                    sequential_streams,
                    runs,
                    warmup,
                    threads,
                    json,
                },
        } => {
            threads.apply()?;
            let stats = measure_latency(
                &model.spec()?,
                batch,
                image_size,
                fused,
                !sequential_streams,
                warmup,
                runs,
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                println!("{stats}");
            }
        }
        Command::Bench {
            what:
                BenchCommand::Train {
                    model,
                    classes,
                    activation,
                    width_mult,
                    batch,
                    image_size,
                    warmup,
                    steps,
                    profile,
                    threads,
                    json,
                },
        } => {
            threads.apply()?;
            let widths: Vec<Option<f64>> = if width_mult.is_empty() {
                vec![None]
            } else {
                width_mult.into_iter().map(Some).collect()
            };
            let mut all = Vec::new();
            for width in widths {
                let spec = NetworkSpec {
                    width_mult: width,
                    activation: Activation::parse(&activation)?,
                    ..NetworkSpec::new(&model, classes)
                };
                spec.validate()?;
                for &b in &batch {
                    let protocol = TrainStepProtocol {
                        batch: b,
                        image_size,
                        warmup,
                        steps,
                        seed: 0,
                        profile,
                    };
                    let stats = measure_train_step(&spec, &protocol)?;
                    if !json {
                        println!("{stats}");
                    }
                    all.push(stats);
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            }
        }
    }
    Ok(())
}
