//! `parnet study depth`: latency (and, optionally, accuracy) against depth at roughly constant
//! multiply-adds, for the depth sweep of ParNet-style networks and the deep baselines.
//!
//! Every figure is repeated: latency as `latency_repeats` medians per network (the networks are
//! interleaved within each repeat so that drift in the machine's speed spreads evenly), accuracy
//! as `train_repeats` trainings with different seeds. The mean and standard deviation of the
//! repeats go to `depth_study.csv` and into the charts as error bars; every single measurement
//! goes to `depth_study_raw.csv`.

mod report;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use parnet_core::models::parnet_sweep::{SweepSpec, depth_sweep};
use parnet_core::models::{Network, NetworkSpec};

use crate::bench::latency::{LatencyProtocol, mean_std, median_forward_ms};
use crate::config::TrainConfig;
use crate::metrics::read_log;
use crate::train::{TrainOptions, last_checkpoint, resume, train};
pub use report::{Row, write_outputs};

/// What `parnet study depth` runs.
#[derive(Clone, Debug)]
pub struct StudyOptions {
    pub out: PathBuf,
    /// A small sweep (1 and 3 streams, two depths each) and few repeats: minutes on 2 cores.
    pub quick: bool,
    /// The network whose multiply-adds every sweep member matches; `None`: `parnet-cifar` at
    /// `width_mult`.
    pub reference: Option<NetworkSpec>,
    /// Width multiplier of the ParNet-style baselines (and of the default reference).
    pub width_mult: f64,
    /// Classes of the networks timed (with training, the data's count is trained).
    pub classes: usize,
    /// Batch sizes of the latency measurements (the first is the one charted against accuracy).
    pub batches: Vec<usize>,
    pub latency_repeats: usize,
    /// Train each network for this many epochs (fractional allowed); `None`: latency only.
    pub train_epochs: Option<f64>,
    pub train_repeats: usize,
    /// Base training configuration (data, optimiser, schedule); the model, epochs, seed and run
    /// directory are set per run.
    pub base_config: TrainConfig,
    /// Include the named baselines (parnet-cifar, sequential-parnet-cifar, resnet-20/56).
    pub baselines: bool,
}

/// One network of the study.
#[derive(Clone, Debug)]
pub struct Member {
    pub spec: NetworkSpec,
    /// `sweep` or `baseline`.
    pub family: &'static str,
    pub sweep: Option<SweepSpec>,
}

const IMAGE_SIZE: usize = 32;

/// The networks of a study: the sweep at the multiply-adds of the reference network
/// (`parnet-cifar` x`width_mult` by default), then the baselines.
pub fn members(opts: &StudyOptions, classes: usize) -> Result<Vec<Member>> {
    let reference = match &opts.reference {
        Some(spec) => spec.clone(),
        None => NetworkSpec {
            width_mult: Some(opts.width_mult),
            ..NetworkSpec::new("parnet-cifar", classes)
        },
    };
    let target = reference.build(0)?.macs(IMAGE_SIZE);
    let sweep = depth_sweep(target, IMAGE_SIZE, classes, opts.quick);
    if sweep.is_empty() {
        bail!("no sweep network matches {target} multiply-adds; try another --width-mult");
    }
    let activation = opts.base_activation()?;
    let mut out: Vec<Member> = sweep
        .into_iter()
        .map(|s| {
            let s = s.with_activation(activation);
            Member {
                spec: NetworkSpec {
                    activation,
                    ..NetworkSpec::new(&s.name(), classes)
                },
                family: "sweep",
                sweep: Some(s),
            }
        })
        .collect();
    if opts.baselines {
        let names: &[&str] = if opts.quick {
            &["parnet-cifar", "resnet-20"]
        } else {
            &[
                "parnet-cifar",
                "sequential-parnet-cifar",
                "resnet-20",
                "resnet-56",
            ]
        };
        for name in names {
            let mut spec = NetworkSpec::new(name, classes);
            if name.contains("parnet") {
                spec.width_mult = Some(opts.width_mult);
                spec.activation = activation;
            }
            out.push(Member {
                spec,
                family: "baseline",
                sweep: None,
            });
        }
    }
    Ok(out)
}

impl StudyOptions {
    fn base_activation(&self) -> Result<parnet_core::models::parnet::Activation> {
        Ok(parnet_core::models::parnet::Activation::parse(
            &self.base_config.model.activation,
        )?)
    }
}

/// Runs the study and writes the CSVs and charts into `opts.out`; returns the rows.
pub fn run_depth_study(opts: &StudyOptions, verbose: bool) -> Result<Vec<Row>> {
    if opts.batches.is_empty() || opts.batches.contains(&0) {
        bail!("--batch sizes must be positive");
    }
    if opts.latency_repeats == 0 || opts.train_repeats == 0 {
        bail!("repeat counts must be at least 1");
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    // The class count only changes the classifier.
    let members = members(opts, opts.classes)?;
    let models = members
        .iter()
        .map(|m| m.spec.build(0))
        .collect::<parnet_core::Result<Vec<Box<dyn Network>>>>()?;
    let mut rows: Vec<Row> = members
        .iter()
        .zip(&models)
        .map(|(m, model)| Row::new(m, model.as_ref(), IMAGE_SIZE, &opts.batches))
        .collect();
    if verbose {
        crate::say!(
            "{} networks, {} threads; latency: batches {:?}, {} repeats",
            rows.len(),
            rayon::current_num_threads(),
            opts.batches,
            opts.latency_repeats
        );
    }
    let runs: usize = if opts.quick { 3 } else { 7 };
    for repeat in 0..opts.latency_repeats {
        for (row, model) in rows.iter_mut().zip(&models) {
            for (b, &batch) in opts.batches.iter().enumerate() {
                let protocol = LatencyProtocol {
                    batch,
                    image_size: IMAGE_SIZE,
                    warmup: if repeat == 0 { 2 } else { 1 },
                    runs: if batch > 1 { runs.div_ceil(2) } else { runs },
                    parallel_streams: true,
                };
                row.latency_samples[b].push(median_forward_ms(model.as_ref(), &protocol)?);
            }
        }
        if verbose {
            crate::say!(
                "latency repeat {}/{} done",
                repeat + 1,
                opts.latency_repeats
            );
        }
    }
    drop(models);
    if let Some(epochs) = opts.train_epochs {
        for row_index in 0..rows.len() {
            for seed in 0..opts.train_repeats as u64 {
                let member = &members[row_index];
                let dir = opts
                    .out
                    .join("runs")
                    .join(&member.spec.name)
                    .join(format!("seed{seed}"));
                let result = train_member(opts, member, epochs, seed, &dir)?;
                if verbose {
                    crate::say!(
                        "{} seed {seed}: val top-1 {:.2}% ({:.0} img/s, {:.0} s)",
                        member.spec.name,
                        100.0 * result.val_top1,
                        result.images_per_sec,
                        result.seconds
                    );
                }
                rows[row_index].train_results.push(result);
            }
        }
    }
    let notes = write_outputs(&opts.out, &rows, opts)?;
    if verbose {
        for note in notes {
            crate::say!("{note}");
        }
    }
    Ok(rows)
}

/// The outcome of one training run.
#[derive(Clone, Copy, Debug)]
pub struct TrainResult {
    pub val_top1: f64,
    pub images_per_sec: f64,
    pub seconds: f64,
}

/// Trains (or resumes, or reads back a finished) run of `member` in `dir`.
fn train_member(
    opts: &StudyOptions,
    member: &Member,
    epochs: f64,
    seed: u64,
    dir: &Path,
) -> Result<TrainResult> {
    let quiet = TrainOptions {
        progress: false,
        verbose: false,
        distributed: None,
    };
    if last_checkpoint(dir).exists() {
        resume(dir, quiet).with_context(|| format!("resuming {}", dir.display()))?;
    } else {
        let mut cfg = opts.base_config.clone();
        cfg.model.name = member.spec.name.clone();
        cfg.model.width_mult = member.spec.width_mult;
        cfg.train.epochs = epochs;
        cfg.train.seed = seed;
        cfg.train.out = dir.to_path_buf();
        train(cfg, quiet).with_context(|| format!("training {}", member.spec.name))?;
    }
    let records = read_log(&dir.join("metrics.jsonl"))?;
    let Some(last) = records.last() else {
        bail!("{} finished without a metrics record", dir.display());
    };
    let Some(val_top1) = last.val_top1 else {
        bail!("{}: the last epoch was not evaluated", dir.display());
    };
    let rates: Vec<f64> = records.iter().map(|r| r.images_per_sec).collect();
    Ok(TrainResult {
        val_top1,
        images_per_sec: mean_std(&rates).0,
        seconds: last.seconds,
    })
}
