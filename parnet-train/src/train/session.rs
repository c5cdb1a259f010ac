//! A run from start (or resume) to end: building the data, the model and the optimiser (or
//! loading them from a checkpoint), then epochs until the run is done, stopped or out of time.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use parnet_core::models::{Network, NetworkSpec};
use parnet_core::optim::SgdConfig;
use parnet_core::training::{StepOptions, TrainStep};

use super::run_dir::{last_checkpoint, log_path};
use super::{TrainOptions, TrainSummary, epoch, epoch_end, network_spec, stop};
use crate::checkpoint::{self, CheckpointMeta, RunPosition};
use crate::config::TrainConfig;
use crate::data_setup::{self, RunData};
use crate::distributed::{BatchNormMode, Distributed, leads};
use crate::evaluate::Evaluation;
use crate::metrics::{EpochRecord, read_log};
use crate::threads::set_threads;

/// A run in progress: its configuration, data, model, optimiser and position.
pub(super) struct State {
    pub(super) cfg: TrainConfig,
    pub(super) dir: PathBuf,
    pub(super) data: RunData,
    pub(super) spec: NetworkSpec,
    pub(super) model: Box<dyn Network>,
    /// SGD and the EMA, and how steps are taken.
    pub(super) step: TrainStep,
    pub(super) pos: RunPosition,
    pub(super) records: Vec<EpochRecord>,
    pub(super) seconds_before: f64,
    pub(super) started: Instant,
    /// The ranks of a distributed run (`None`: one process).
    pub(super) distributed: Option<Distributed>,
}

impl State {
    /// Writes a checkpoint to `path` (atomically); only the process that writes does (rank 0 of
    /// a distributed run, whose model every rank shares).
    pub(super) fn save(&self, path: &Path) -> Result<()> {
        if !self.leads() {
            return Ok(());
        }
        let meta = CheckpointMeta {
            position: self.pos,
            mean: self.data.mean,
            std: self.data.std,
            image_size: self.data.image_size,
            config_toml: self.cfg.to_toml()?,
            data_images: self.data.train.len() + self.data.val.len(),
        };
        let model_md = self.spec.to_metadata()?;
        checkpoint::save(
            path,
            self.model.as_ref(),
            &model_md,
            &self.step.sgd,
            self.step.ema.as_ref(),
            &meta,
        )
    }

    /// Whether this process prints and writes.
    pub(super) fn leads(&self) -> bool {
        leads(self.distributed)
    }

    pub(super) fn seconds(&self) -> f64 {
        self.seconds_before + self.started.elapsed().as_secs_f64()
    }

    pub(super) fn out_of_time(&self) -> bool {
        self.cfg
            .train
            .time_limit_minutes
            .is_some_and(|m| self.seconds() >= m * 60.0)
    }
}

/// Seed of the random choices of one optimiser step (dropout masks).
pub(super) fn step_seed(seed: u64, global_step: u64) -> u64 {
    (seed ^ 0xD1B5_4A32_D192_ED03)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(global_step)
}

/// Trains the run in `dir` (resuming from `resume_from`) until its epochs are done, a stop is
/// asked for, or the time limit passes.
pub(super) fn run(
    cfg: TrainConfig,
    dir: &Path,
    resume_from: Option<(checkpoint::CheckpointFile, PathBuf)>,
    opts: TrainOptions,
) -> Result<TrainSummary> {
    set_threads(cfg.train.threads)?;
    stop::arm();
    let distributed = opts.distributed;
    let opts = TrainOptions {
        progress: opts.progress && leads(distributed),
        verbose: opts.verbose && leads(distributed),
        ..opts
    };
    let mut data = data_setup::build(&cfg)?;
    if let Some(d) = distributed {
        let (batch, ranks) = (cfg.train.batch_size, d.ranks());
        if !batch.is_multiple_of(ranks) {
            bail!(
                "train.batch_size = {batch} does not split into {ranks} equal shares; give a batch size that is a multiple of the number of ranks"
            );
        }
        data.train = data.train.with_shard(d.rank(), ranks)?;
        if ranks <= cfg.train.eval_batch_size {
            data.val = data.val.with_shard(d.rank(), ranks)?;
        } else {
            bail!(
                "train.eval_batch_size = {} is smaller than the {ranks} ranks that share every evaluation batch",
                cfg.train.eval_batch_size
            );
        }
    }
    let spec = network_spec(&cfg, data.num_classes)?;
    crate::limits::check_network_fits(&spec)?;
    let model = spec.build(cfg.train.seed)?;
    if data.image_size % model.input_multiple() != 0 {
        bail!(
            "{} needs images whose size is a multiple of {}; the data gives {}",
            spec.name,
            model.input_multiple(),
            data.image_size
        );
    }
    crate::limits::check_activations_fit(
        model.as_ref(),
        cfg.train.batch_size,
        (data.image_size, data.image_size),
        crate::limits::Pass::Training,
    )?;
    let o = &cfg.optim;
    let sgd = SgdConfig {
        momentum: o.momentum,
        dampening: 0.0,
        nesterov: o.nesterov,
        weight_decay: o.weight_decay,
    };
    let options = StepOptions {
        label_smoothing: o.label_smoothing,
        grad_clip: o.grad_clip,
        parallel_streams: !cfg.train.sequential_streams,
        replicas: distributed.map(|d| d.replicas),
        sync_batch_norm: distributed.is_some_and(|d| d.batch_norm == BatchNormMode::Sync),
        first_sample: distributed.map_or(0, |d| d.rank() * cfg.train.batch_size / d.ranks()),
        ..StepOptions::default()
    };
    let mut step = TrainStep::new(model.as_ref(), sgd, o.ema_decay, options)?;
    let mut pos = RunPosition {
        epoch: 0,
        step_in_epoch: 0,
        global_step: 0,
        best_val_top1: 0.0,
    };
    let mut records = Vec::new();
    if let Some((file, path)) = &resume_from {
        file.load_model(model.as_ref(), path)?;
        step.sgd.load_state(&file.optim)?;
        if let Some(ema) = step.ema.as_mut() {
            ema.load(&file.ema)?;
        }
        pos = file.position()?;
        records = read_log(&log_path(dir))?;
        records.retain(|r| r.epoch <= pos.epoch);
    }
    let seconds_before = records.last().map_or(0.0, |r| r.seconds);
    if opts.verbose {
        crate::say!("data: {}", data.description);
        crate::say!(
            "model: {} ({} parameters), {} threads, run directory {}",
            spec.name,
            model.num_params(),
            rayon::current_num_threads(),
            dir.display()
        );
        if let Some(d) = distributed {
            crate::say!(
                "distributed: {} ranks x {} images per step, batch norm {:?}",
                d.ranks(),
                cfg.train.batch_size / d.ranks(),
                d.batch_norm
            );
        }
    }
    let mut st = State {
        cfg,
        dir: dir.to_path_buf(),
        data,
        spec,
        model,
        step,
        pos,
        records,
        seconds_before,
        started: Instant::now(),
        distributed,
    };
    let total_epochs = st.cfg.schedule.total_epochs(st.cfg.train.epochs);
    let mut last_val = Evaluation::default();
    let mut last_rate = 0.0;
    while (st.pos.epoch as f64) < total_epochs {
        let outcome = epoch::train_epoch(&mut st, total_epochs, opts)?;
        last_rate = outcome.images_per_sec;
        if outcome.interrupted {
            st.save(&last_checkpoint(&st.dir))?;
            if opts.verbose {
                crate::say!(
                    "stopped at epoch {} step {}; checkpoint saved; continue with `parnet train --resume {}`",
                    st.pos.epoch + 1,
                    st.pos.step_in_epoch,
                    st.dir.display()
                );
            }
            return Ok(summary(&st, last_val, true, last_rate));
        }
        if let Some(val) = epoch_end::end_epoch(&mut st, &outcome, total_epochs, opts)? {
            last_val = val;
        }
        if st.out_of_time() && (st.pos.epoch as f64) < total_epochs {
            if opts.verbose {
                crate::say!(
                    "time limit reached after epoch {}; checkpoint saved",
                    st.pos.epoch
                );
            }
            return Ok(summary(&st, last_val, true, last_rate));
        }
    }
    Ok(summary(&st, last_val, false, last_rate))
}

fn summary(
    st: &State,
    final_val: Evaluation,
    interrupted: bool,
    images_per_sec: f64,
) -> TrainSummary {
    TrainSummary {
        run_dir: st.dir.clone(),
        epochs_done: st.pos.epoch,
        epochs: st.cfg.train.epochs,
        final_val: final_val.plain,
        final_val_flip: final_val.flip,
        best_val_top1: st.pos.best_val_top1,
        interrupted,
        images_per_sec,
        seconds: st.seconds(),
    }
}
