//! The `parnet` subcommands. Each is a thin layer: parse, call a library function, print.

mod bench;
mod fuse;
mod infer;
mod info;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use parnet_core::models::parnet::Activation;

use crate::model_io::ModelSpec;

pub use bench::{LatencyStats, measure_latency};
pub use fuse::fuse_weights;
pub use infer::infer_file;
pub use info::{info_json, info_text};

/// parnet: ParNet ("Non-deep Networks") on the CPU.
#[derive(Parser, Debug)]
#[command(name = "parnet", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
        if let Some(t) = self.threads {
            if t == 0 {
                bail!("--threads must be at least 1");
            }
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build_global()?;
        }
        Ok(())
    }
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
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
    }
    Ok(())
}
