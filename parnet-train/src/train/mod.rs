//! The training loop: the core's training step over the loader's batches, evaluation and a
//! checkpoint every epoch, and a checkpoint on Ctrl-C / SIGTERM or when the time limit is
//! reached, so a run can always be resumed, bit for bit.
//!
//! - [`session`](self): a run from start or resume to its end;
//! - `epoch`: one epoch of steps; `epoch_end`: evaluation, log and checkpoints after it;
//! - [`run_dir`]: what a run directory holds; [`stop`]: Ctrl-C, SIGTERM and [`request_stop`].

mod epoch;
mod epoch_end;
pub mod run_dir;
mod session;
pub mod stop;

pub use run_dir::{best_checkpoint, last_checkpoint};
pub use stop::request_stop;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use parnet_core::models::NetworkSpec;
use parnet_core::models::parnet::Activation;

use crate::config::TrainConfig;
use crate::distributed::{Distributed, leads};
use crate::evaluate::EvalResult;

/// How the loop reports.
#[derive(Clone, Copy, Debug)]
pub struct TrainOptions {
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
    /// Print one line per epoch.
    pub verbose: bool,
    /// The ranks of a distributed run this process is one of (`None`: a single process).
    pub distributed: Option<Distributed>,
}

/// What a run ended with.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    pub run_dir: PathBuf,
    /// Epochs begun (a fractional last epoch counts as one).
    pub epochs_done: usize,
    /// The run's length in epochs (`train.epochs`, possibly fractional).
    pub epochs: f64,
    pub final_val: EvalResult,
    /// The final flip-averaged figures (`train.eval_tta = "flip"`).
    pub final_val_flip: Option<EvalResult>,
    pub best_val_top1: f64,
    /// Stopped early by a signal or the time limit (resume to continue).
    pub interrupted: bool,
    pub images_per_sec: f64,
    pub seconds: f64,
}

/// The network a config describes, for a data set of `data_classes` classes (`model.classes`,
/// when set, must be at least that).
pub fn network_spec(cfg: &TrainConfig, data_classes: usize) -> Result<NetworkSpec> {
    let classes = cfg.model.classes.unwrap_or(data_classes);
    if classes < data_classes {
        bail!(
            "model.classes = {classes}, but the data set has {data_classes} classes; the model needs at least as many outputs"
        );
    }
    let spec = NetworkSpec {
        width_mult: cfg.model.width_mult,
        activation: Activation::parse(&cfg.model.activation)?,
        dropout: cfg.model.dropout,
        ..NetworkSpec::new(&cfg.model.name, classes)
    };
    spec.validate().context("model.name / model.width_mult")?;
    Ok(spec)
}

/// Starts a new run in `cfg.train.out` (which must not already hold one).
pub fn train(cfg: TrainConfig, opts: TrainOptions) -> Result<TrainSummary> {
    cfg.validate()?;
    // Only the process that writes (rank 0 of a distributed run) makes and locks the directory.
    let (dir, _lock) = if leads(opts.distributed) {
        let (dir, lock) = run_dir::create(&cfg)?;
        (dir, Some(lock))
    } else {
        (cfg.train.out.clone(), None)
    };
    session::run(cfg, &dir, None, opts)
}

/// Continues the run in `dir` from its last checkpoint, with its saved configuration.
pub fn resume(dir: &Path, opts: TrainOptions) -> Result<TrainSummary> {
    resume_with(dir, &ResumeOverrides::default(), opts)
}

/// What a resumed run may change: how long it goes on, how fast, and where its data now is.
/// Everything else (model, batch size, learning rate, seed) is the run's and cannot change.
#[derive(Clone, Debug, Default)]
pub struct ResumeOverrides {
    /// A new total of epochs (at least the epochs done); the schedule stretches to it.
    pub epochs: Option<f64>,
    pub time_limit_minutes: Option<f64>,
    pub threads: Option<usize>,
    /// The same data at a new path.
    pub data: Option<String>,
}

/// [`resume`], changing what `overrides` sets: each change is printed and saved in the run's
/// `config.toml`.
pub fn resume_with(
    dir: &Path,
    overrides: &ResumeOverrides,
    opts: TrainOptions,
) -> Result<TrainSummary> {
    let leader = leads(opts.distributed);
    let (mut cfg, _lock) = if leader {
        let (cfg, lock) = run_dir::open(dir)?;
        (cfg, Some(lock))
    } else {
        (run_dir::read_config(dir)?, None)
    };
    let (file, path) = run_dir::newest_valid_checkpoint(dir)?;
    let done = file.position()?;
    let mut changes = Vec::new();
    if let Some(e) = overrides.epochs {
        let completed = done.epoch as f64;
        let mid_epoch = done.step_in_epoch > 0;
        if e < completed || (mid_epoch && e <= completed) {
            bail!(
                "--epochs {e}: the run in {} has completed {completed} epochs{}; give more than that",
                dir.display(),
                if mid_epoch {
                    " and is inside the next"
                } else {
                    ""
                }
            );
        }
        changes.push(format!("train.epochs {} -> {e}", cfg.train.epochs));
        cfg.train.epochs = e;
    }
    if let Some(m) = overrides.time_limit_minutes {
        changes.push(format!(
            "train.time_limit_minutes {:?} -> {m}",
            cfg.train.time_limit_minutes
        ));
        cfg.train.time_limit_minutes = Some(m);
    }
    if let Some(t) = overrides.threads {
        changes.push(format!("train.threads {:?} -> {t}", cfg.train.threads));
        cfg.train.threads = Some(t);
    }
    if let Some(d) = &overrides.data {
        changes.push(format!("data.source {} -> {d}", cfg.data.source));
        cfg.data.source = d.clone();
    }
    if !changes.is_empty() {
        cfg.validate()?;
        if leader {
            run_dir::save_config(dir, &cfg)?;
            crate::say!("resume with changes: {}", changes.join(", "));
        }
    }
    session::run(cfg, dir, Some((file, path)), opts)
}
