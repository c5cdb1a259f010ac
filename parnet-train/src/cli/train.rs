//! `parnet train`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use super::args::ModelArgs;
use crate::config::{Overrides, TrainConfig};
use crate::distributed::{BatchNormMode, Distributed};
use crate::train::{ResumeOverrides, TrainOptions, TrainSummary, resume_with, train};

/// Options of `parnet train`.
#[derive(Args, Debug, Clone, Default)]
pub struct TrainArgs {
    /// A TOML config (default: the built-in synthetic job, configs/synthetic.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long, conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// The network (default: the config's; --classes default: the data set's class count).
    #[command(flatten)]
    pub model: ModelArgs,
    /// `synthetic` or a data path (default: the config's, or $PARNET_DATA for real-data configs).
    #[arg(long)]
    pub data: Option<String>,
    /// Training epochs (may be fractional, e.g. 2.5).
    #[arg(long)]
    pub epochs: Option<f64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub threads: Option<usize>,
    /// The run directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop with a checkpoint after this many minutes.
    #[arg(long)]
    pub time_limit_minutes: Option<f64>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Data-parallel over the ranks of an `mpirun` job (a build with `--features mpi`): each
    /// rank trains on its share of every batch, gradients are averaged, rank 0 writes the run.
    #[arg(long)]
    pub distributed: bool,
    /// Batch-norm statistics of a distributed run: of the global batch (`sync`) or of each
    /// rank's share (`local`, running statistics averaged every epoch).
    #[arg(long, value_enum, default_value_t, requires = "distributed")]
    pub batch_norm: BatchNormMode,
}

/// Runs `parnet train` and prints how it ended.
pub fn run(args: &TrainArgs) -> Result<()> {
    if args.distributed {
        return run_distributed(args);
    }
    report(&run_train(args, None)?);
    Ok(())
}

/// `parnet train --distributed`: this process is one rank of an `mpirun` job.
#[cfg(feature = "mpi")]
fn run_distributed(args: &TrainArgs) -> Result<()> {
    crate::distributed::mpi::run_as_rank(|replicas| {
        let d = Distributed {
            replicas,
            batch_norm: args.batch_norm,
        };
        let summary = run_train(args, Some(d))?;
        if d.is_leader() {
            report(&summary);
            let t = replicas.traffic();
            crate::say!(
                "MPI on rank 0: {} exchanges, {:.1} MB sent, {:.2} s inside them ({:.1}% of the run's {:.1} s)",
                t.calls,
                t.bytes_sent as f64 / 1e6,
                t.seconds,
                100.0 * t.seconds / summary.seconds.max(1e-9),
                summary.seconds
            );
        }
        Ok(())
    })
}

#[cfg(not(feature = "mpi"))]
fn run_distributed(_: &TrainArgs) -> Result<()> {
    Err(crate::distributed::built_without_mpi(
        "`parnet train --distributed`",
    ))
}

/// Prints how a run ended.
fn report(summary: &TrainSummary) {
    if summary.interrupted {
        crate::say!(
            "run stopped early in {}; resume with --resume",
            summary.run_dir.display()
        );
    } else {
        crate::say!(
            "done: {} epochs, validation top-1 {:.2}%{} (best {:.2}%), {:.0} images/s, {:.0} s; run in {}",
            summary.epochs,
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

/// Resolves the configuration (file, then $PARNET_DATA for a config whose data path does not
/// exist, then command-line overrides) and trains, or resumes.
pub fn run_train(args: &TrainArgs, distributed: Option<Distributed>) -> Result<TrainSummary> {
    let opts = TrainOptions {
        progress: !args.quiet,
        verbose: true,
        distributed,
    };
    if let Some(dir) = &args.resume {
        let fixed = [
            ("--model", args.model.model.is_some()),
            ("--classes", args.model.classes.is_some()),
            ("--activation", args.model.activation.is_some()),
            ("--width-mult", !args.model.width_mult.is_empty()),
            ("--batch-size", args.batch_size.is_some()),
            ("--lr", args.lr.is_some()),
            ("--seed", args.seed.is_some()),
            ("--out", args.out.is_some()),
        ];
        let refused: Vec<&str> = fixed.iter().filter(|f| f.1).map(|f| f.0).collect();
        if !refused.is_empty() {
            anyhow::bail!(
                "--resume continues the run in {} with its own configuration; {} cannot change mid-run (--epochs, --time-limit-minutes, --threads and --data can). For a new run with other values: parnet train --config {}/config.toml {}",
                dir.display(),
                refused.join(", "),
                dir.display(),
                refused
                    .iter()
                    .map(|f| format!("{f} ..."))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        let overrides = ResumeOverrides {
            epochs: args.epochs,
            time_limit_minutes: args.time_limit_minutes,
            threads: args.threads,
            data: args.data.clone(),
        };
        return resume_with(dir, &overrides, opts);
    }
    let mut cfg = TrainConfig::load(args.config.as_deref())?;
    if cfg.data.source != "synthetic"
        && !Path::new(&cfg.data.source).exists()
        && let Ok(env) = std::env::var("PARNET_DATA")
    {
        cfg.data.source = env;
    }
    if args.model.width_mult.len() > 1 {
        anyhow::bail!("give one --width-mult");
    }
    cfg.apply(&Overrides {
        model: args.model.model.clone(),
        classes: args.model.classes,
        activation: args.model.activation.clone(),
        data: args.data.clone(),
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        width_mult: args.model.width_mult.first().copied(),
        seed: args.seed,
        threads: args.threads,
        out: args.out.clone(),
        time_limit_minutes: args.time_limit_minutes,
    });
    train(cfg, opts)
}
