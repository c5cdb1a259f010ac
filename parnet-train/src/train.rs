//! The training loop: SGD over the loader's batches, evaluation and a checkpoint every epoch,
//! and a checkpoint on Ctrl-C / SIGTERM or when the time limit is reached, so a run can always
//! be resumed, bit for bit.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parnet_core::models::parnet::Activation;
use parnet_core::models::{Network, NetworkSpec};
use parnet_core::nn::{Ctx, Module};
use parnet_core::ops::loss::{accuracy_topk, cross_entropy};
use parnet_core::optim::{Ema, Sgd, SgdConfig};
use parnet_core::{Buffer, Tensor};

use crate::checkpoint::{self, CheckpointMeta, RunPosition};
use crate::config::TrainConfig;
use crate::data_setup::{self, RunData};
use crate::evaluate::{EvalResult, Evaluation, evaluate, evaluate_with};
use crate::metrics::{EpochRecord, plot_curves, read_log, write_log};

static STOP: AtomicBool = AtomicBool::new(false);
static HANDLER: Once = Once::new();

/// Asks a running training loop to checkpoint and stop after its current step (what Ctrl-C and
/// SIGTERM do).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handler() {
    HANDLER.call_once(|| {
        // Failing to install (another handler exists) only loses the graceful stop; the
        // per-epoch checkpoints still protect the run.
        let _ = ctrlc::set_handler(request_stop);
    });
}

/// How the loop reports.
#[derive(Clone, Copy, Debug)]
pub struct TrainOptions {
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
    /// Print one line per epoch.
    pub verbose: bool,
}

/// What a run ended with.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    pub run_dir: PathBuf,
    pub epochs_done: usize,
    pub final_val: EvalResult,
    /// The final flip-averaged figures (`train.eval_tta = "flip"`).
    pub final_val_flip: Option<EvalResult>,
    pub best_val_top1: f64,
    /// Stopped early by a signal or the time limit (resume to continue).
    pub interrupted: bool,
    pub images_per_sec: f64,
    pub seconds: f64,
}

/// File names inside a run directory.
pub fn last_checkpoint(dir: &Path) -> PathBuf {
    dir.join("last.safetensors")
}
pub fn best_checkpoint(dir: &Path) -> PathBuf {
    dir.join("best.safetensors")
}
fn config_path(dir: &Path) -> PathBuf {
    dir.join("config.toml")
}
fn log_path(dir: &Path) -> PathBuf {
    dir.join("metrics.jsonl")
}

/// The network a config describes, for a data set of `classes` classes.
pub fn network_spec(cfg: &TrainConfig, classes: usize) -> Result<NetworkSpec> {
    let spec = NetworkSpec {
        width_mult: cfg.model.width_mult,
        activation: Activation::parse(&cfg.model.activation)?,
        dropout: cfg.model.dropout,
        ..NetworkSpec::new(&cfg.model.name, classes)
    };
    spec.validate().context("model.name / model.width_mult")?;
    Ok(spec)
}

/// Sizes the one rayon pool (before any parallel work); `None` keeps one thread per core.
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    if threads == Some(0) {
        bail!("the thread count must be at least 1");
    }
    // Build first: asking rayon for its thread count would itself start the global pool.
    if let Some(t) = threads
        && rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .is_err()
        && rayon::current_num_threads() != t
    {
        bail!(
            "cannot set {t} threads: the thread pool was already started with {}",
            rayon::current_num_threads()
        );
    }
    Ok(())
}

/// Starts a new run in `cfg.train.out` (which must not already hold one).
pub fn train(cfg: TrainConfig, opts: TrainOptions) -> Result<TrainSummary> {
    cfg.validate()?;
    let dir = cfg.train.out.clone();
    if last_checkpoint(&dir).exists() {
        bail!(
            "{} already holds a run; continue it with `parnet train --resume {0}` or choose another --out",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    parnet_core::io::write_atomic(&config_path(&dir), cfg.to_toml()?.as_bytes())?;
    run(cfg, &dir, None, opts)
}

/// Continues the run in `dir` from its last checkpoint, with its saved configuration.
pub fn resume(dir: &Path, opts: TrainOptions) -> Result<TrainSummary> {
    let cfg = TrainConfig::load(Some(&config_path(dir)))?;
    cfg.validate()?;
    let ck = last_checkpoint(dir);
    if !ck.exists() {
        bail!("{} has no checkpoint to resume from", dir.display());
    }
    let file = checkpoint::read(&ck)?;
    run(cfg, dir, Some(file), opts)
}

struct State {
    cfg: TrainConfig,
    dir: PathBuf,
    data: RunData,
    spec: NetworkSpec,
    model: Box<dyn Network>,
    sgd: Sgd,
    ema: Option<Ema>,
    pos: RunPosition,
    records: Vec<EpochRecord>,
    seconds_before: f64,
    started: Instant,
}

impl State {
    fn save(&self, path: &Path) -> Result<()> {
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
            &self.sgd,
            self.ema.as_ref(),
            &meta,
        )
    }

    fn seconds(&self) -> f64 {
        self.seconds_before + self.started.elapsed().as_secs_f64()
    }

    fn out_of_time(&self) -> bool {
        self.cfg
            .train
            .time_limit_minutes
            .is_some_and(|m| self.seconds() >= m * 60.0)
    }
}

/// Seed of the random choices of one optimiser step (dropout masks).
fn step_seed(seed: u64, global_step: u64) -> u64 {
    (seed ^ 0xD1B5_4A32_D192_ED03)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(global_step)
}

fn run(
    cfg: TrainConfig,
    dir: &Path,
    resume_from: Option<checkpoint::CheckpointFile>,
    opts: TrainOptions,
) -> Result<TrainSummary> {
    set_threads(cfg.train.threads)?;
    install_signal_handler();
    STOP.store(false, Ordering::SeqCst);
    let data = data_setup::build(&cfg)?;
    let spec = network_spec(&cfg, data.num_classes)?;
    let model = spec.build(cfg.train.seed)?;
    if data.image_size % model.input_multiple() != 0 {
        bail!(
            "{} needs images whose size is a multiple of {}; the data gives {}",
            spec.name,
            model.input_multiple(),
            data.image_size
        );
    }
    let o = &cfg.optim;
    let mut sgd = Sgd::new(
        model.params(),
        SgdConfig {
            momentum: o.momentum,
            dampening: 0.0,
            nesterov: o.nesterov,
            weight_decay: o.weight_decay,
        },
    )?;
    let mut ema = o.ema_decay.map(|d| Ema::new(model.as_ref(), d));
    let mut pos = RunPosition {
        epoch: 0,
        step_in_epoch: 0,
        global_step: 0,
        best_val_top1: 0.0,
    };
    let mut records = Vec::new();
    if let Some(file) = &resume_from {
        file.load_model(model.as_ref(), &last_checkpoint(dir))?;
        sgd.load_state(&file.optim)?;
        if let Some(ema) = ema.as_mut() {
            ema.load(&file.ema)?;
        }
        pos = file.position()?;
        records = read_log(&log_path(dir))?;
        records.retain(|r| r.epoch <= pos.epoch);
    }
    let seconds_before = records.last().map_or(0.0, |r| r.seconds);
    if opts.verbose {
        println!("data: {}", data.description);
        println!(
            "model: {} ({} parameters), {} threads, run directory {}",
            spec.name,
            model.num_params(),
            rayon::current_num_threads(),
            dir.display()
        );
    }
    let mut st = State {
        cfg,
        dir: dir.to_path_buf(),
        data,
        spec,
        model,
        sgd,
        ema,
        pos,
        records,
        seconds_before,
        started: Instant::now(),
    };
    let total_epochs = st.cfg.schedule.total_epochs(st.cfg.train.epochs);
    let mut last_val = Evaluation::default();
    let mut last_rate = 0.0;
    while (st.pos.epoch as f64) < total_epochs {
        let outcome = train_epoch(&mut st, total_epochs, opts)?;
        last_rate = outcome.images_per_sec;
        if outcome.interrupted {
            st.save(&last_checkpoint(&st.dir))?;
            if opts.verbose {
                println!(
                    "stopped at epoch {} step {}; checkpoint saved; continue with `parnet train --resume {}`",
                    st.pos.epoch,
                    st.pos.step_in_epoch,
                    st.dir.display()
                );
            }
            return Ok(summary(&st, last_val, true, last_rate));
        }
        if let Some(val) = end_epoch(&mut st, &outcome, total_epochs, opts)? {
            last_val = val;
        }
        if st.out_of_time() && (st.pos.epoch as f64) < total_epochs {
            if opts.verbose {
                println!(
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
        final_val: final_val.plain,
        final_val_flip: final_val.flip,
        best_val_top1: st.pos.best_val_top1,
        interrupted,
        images_per_sec,
        seconds: st.seconds(),
    }
}

struct EpochOutcome {
    interrupted: bool,
    loss_sum: f64,
    correct: usize,
    correct_top5: usize,
    images: usize,
    images_per_sec: f64,
    lr: f64,
}

fn progress_bar(opts: TrainOptions, steps: usize, epoch: usize) -> ProgressBar {
    let pb = if opts.progress {
        ProgressBar::new(steps as u64)
    } else {
        ProgressBar::hidden()
    };
    if opts.progress {
        pb.set_draw_target(ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        pb.set_prefix(epoch.to_string());
    }
    pb
}

/// Batches to run in epoch `epoch` of a run of `total_epochs` (fractional: the last epoch may
/// be partial) when a full epoch has `steps`.
pub fn steps_in_epoch(epoch: usize, total_epochs: f64, steps: usize) -> usize {
    let left = (total_epochs - epoch as f64).clamp(0.0, 1.0);
    ((left * steps as f64).ceil() as usize).clamp(1, steps)
}

fn train_epoch(st: &mut State, total_epochs: f64, opts: TrainOptions) -> Result<EpochOutcome> {
    let epoch = st.pos.epoch;
    let full_steps = st.data.train.num_batches();
    if full_steps == 0 {
        bail!(
            "the training set has fewer images than one batch ({})",
            st.cfg.train.batch_size
        );
    }
    let steps = steps_in_epoch(epoch, total_epochs, full_steps);
    let start = st.pos.step_in_epoch;
    let classes = st.model.num_classes();
    let (base_lr, epochs) = (st.cfg.optim.lr, st.cfg.train.epochs);
    let smoothing = st.cfg.optim.label_smoothing;
    let pb = progress_bar(opts, steps, epoch);
    pb.set_position(start as u64);
    let mut out = EpochOutcome {
        interrupted: false,
        loss_sum: 0.0,
        correct: 0,
        correct_top5: 0,
        images: 0,
        images_per_sec: 0.0,
        lr: 0.0,
    };
    let t0 = Instant::now();
    let mut batches = st.data.train.epoch_from(epoch as u64, start);
    let mut index = start;
    while let Some(batch) = batches.next() {
        let batch = batch?;
        let lr = st.cfg.schedule.lr(
            base_lr,
            epoch as f64 + index as f64 / full_steps as f64,
            epochs,
        );
        let x = Tensor::new(Buffer::from_slice(&batch.images), batch.shape().to_vec())?;
        let ctx = Ctx {
            parallel_streams: !st.cfg.train.sequential_streams,
            ..Ctx::train(step_seed(st.cfg.train.seed, st.pos.global_step))
        };
        let logits = st.model.forward(&x, ctx)?;
        let loss = cross_entropy(&logits, &batch.labels, smoothing)?;
        let loss_value = loss.item()?;
        if !loss_value.is_finite() {
            bail!(
                "the loss became {loss_value} at epoch {epoch}, step {index}: training stopped; the last good checkpoint is {} (try a lower learning rate)",
                last_checkpoint(&st.dir).display()
            );
        }
        loss.backward()?;
        if let Some(max_norm) = st.cfg.optim.grad_clip {
            clip_grad_norm(st.model.as_ref(), max_norm);
        }
        st.sgd.step(lr as f32);
        st.sgd.zero_grad();
        if let Some(ema) = st.ema.as_mut() {
            ema.update(st.model.as_ref());
        }
        out.loss_sum += loss_value as f64 * batch.len() as f64;
        out.correct += accuracy_topk(logits.data(), classes, &batch.labels, 1);
        out.correct_top5 += accuracy_topk(logits.data(), classes, &batch.labels, 5.min(classes));
        out.images += batch.len();
        out.lr = lr;
        st.pos.global_step += 1;
        index += 1;
        st.pos.step_in_epoch = index;
        batches.recycle(batch);
        let rate = out.images as f64 / t0.elapsed().as_secs_f64();
        pb.set_position(index as u64);
        pb.set_message(format!(
            "loss {:.3} acc {:.1}% lr {:.4} {rate:.0} img/s",
            out.loss_sum / out.images as f64,
            100.0 * out.correct as f64 / out.images as f64,
            lr
        ));
        if STOP.load(Ordering::SeqCst) || (index < steps && st.out_of_time()) {
            out.interrupted = index < steps;
            if out.interrupted {
                break;
            }
        }
        if index >= steps {
            break;
        }
    }
    drop(batches);
    pb.finish_and_clear();
    out.images_per_sec = out.images as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    Ok(out)
}

/// Scales all gradients so that their global L2 norm is at most `max_norm`.
pub fn clip_grad_norm(model: &dyn Module, max_norm: f32) {
    let mut sq = 0.0f64;
    model.visit_params(&mut |p| {
        if let Some(g) = p.grad() {
            sq += g.iter().map(|&v| v as f64 * v as f64).sum::<f64>();
        }
    });
    let norm = sq.sqrt() as f32;
    if norm > max_norm {
        let f = max_norm / (norm + 1e-6);
        model.visit_params(&mut |p| p.update_grad(|g| g.iter_mut().for_each(|v| *v *= f)));
    }
}

/// Evaluates (when due: every `train.eval_every` epochs, at the last epoch and when the time
/// limit has passed), logs and checkpoints the epoch just trained.
fn end_epoch(
    st: &mut State,
    out: &EpochOutcome,
    total_epochs: f64,
    opts: TrainOptions,
) -> Result<Option<Evaluation>> {
    let done = st.pos.epoch + 1;
    let due = done.is_multiple_of(st.cfg.train.eval_every)
        || done as f64 >= total_epochs
        || st.out_of_time();
    let val = if due {
        Some(evaluate_with(
            st.model.as_ref(),
            &st.data.val,
            st.cfg.train.eval_tta,
        )?)
    } else {
        None
    };
    let ema_val = match (&st.ema, due) {
        (Some(ema), true) => {
            let shadow = st.spec.build(0)?;
            ema.copy_to(shadow.as_ref());
            Some(evaluate(shadow.as_ref(), &st.data.val)?)
        }
        _ => None,
    };
    st.pos.epoch += 1;
    st.pos.step_in_epoch = 0;
    let plain = val.map(|v| v.plain);
    let score = plain.map(|v| ema_val.map_or(v.top1, |e| e.top1.max(v.top1)));
    let improved = score.is_some_and(|s| s > st.pos.best_val_top1);
    if let (true, Some(score)) = (improved, score) {
        st.pos.best_val_top1 = score;
    }
    let record = EpochRecord {
        epoch: st.pos.epoch,
        step: st.pos.global_step,
        lr: out.lr,
        train_loss: out.loss_sum / out.images.max(1) as f64,
        train_top1: out.correct as f64 / out.images.max(1) as f64,
        train_top5: Some(out.correct_top5 as f64 / out.images.max(1) as f64),
        val_loss: plain.map(|v| v.loss),
        val_top1: plain.map(|v| v.top1),
        val_top5: plain.map(|v| v.top5),
        val_flip_top1: val.and_then(|v| v.flip).map(|f| f.top1),
        ema_val_top1: ema_val.map(|e| e.top1),
        images_per_sec: out.images_per_sec,
        seconds: st.seconds(),
    };
    if opts.verbose {
        let val_text = match (plain, record.val_flip_top1) {
            (None, _) => "val not evaluated".to_string(),
            (Some(v), flip) => format!(
                "val loss {:.4} top-1 {:5.1}% top-5 {:5.1}%{}",
                v.loss,
                100.0 * v.top1,
                100.0 * v.top5,
                flip.map_or(String::new(), |f| format!(" (flip TTA {:.2}%)", 100.0 * f))
            ),
        };
        println!(
            "epoch {:>3}: train loss {:.4} top-1 {:5.1}% | {val_text}{} | lr {:.5} | {:.0} img/s | {:.0} s",
            record.epoch,
            record.train_loss,
            100.0 * record.train_top1,
            ema_val.map_or(String::new(), |e| format!(" (EMA {:.1}%)", 100.0 * e.top1)),
            record.lr,
            record.images_per_sec,
            record.seconds
        );
    }
    st.records.push(record);
    write_log(&log_path(&st.dir), &st.records)?;
    plot_curves(&st.dir.join("curves.svg"), &st.records)?;
    st.save(&last_checkpoint(&st.dir))?;
    if improved {
        st.save(&best_checkpoint(&st.dir))?;
    }
    Ok(val)
}

#[cfg(test)]
mod tests {
    use super::{clip_grad_norm, steps_in_epoch};
    use parnet_core::Tensor;
    use parnet_core::nn::{Init, Linear, Module};
    use parnet_core::ops::reduce::sum;

    /// A 2 -> 1 linear layer whose gradients after `sum(layer([[2, 2]]))` are dW = [2, 2],
    /// db = [1]: global norm 3.
    fn layer_with_gradients() -> Linear {
        let layer = Linear::new("fc", 2, 1, Init::new(0)).unwrap();
        let x = Tensor::from_vec(vec![2.0, 2.0], [1, 2]).unwrap();
        sum(&layer.forward(&x, true).unwrap()).backward().unwrap();
        layer
    }

    fn grads(layer: &Linear) -> Vec<f32> {
        let mut out = Vec::new();
        layer.visit_params(&mut |p| out.extend(p.grad().unwrap().iter().copied()));
        out
    }

    #[test]
    fn gradient_clipping_scales_to_the_max_norm_and_leaves_small_gradients() {
        let layer = layer_with_gradients();
        assert_eq!(grads(&layer), [2.0, 2.0, 1.0]);
        clip_grad_norm(&layer, 10.0);
        assert_eq!(grads(&layer), [2.0, 2.0, 1.0]);
        // Norm 3 clipped to 1.5: every gradient halves (up to the 1e-6 guard).
        clip_grad_norm(&layer, 1.5);
        let clipped = grads(&layer);
        for (got, want) in clipped.iter().zip([1.0f32, 1.0, 0.5]) {
            assert!((got - want).abs() < 1e-6, "{clipped:?}");
        }
    }

    #[test]
    fn a_fractional_run_ends_with_a_partial_epoch() {
        assert_eq!(steps_in_epoch(0, 2.5, 100), 100);
        assert_eq!(steps_in_epoch(1, 2.5, 100), 100);
        assert_eq!(steps_in_epoch(2, 2.5, 100), 50);
        assert_eq!(steps_in_epoch(0, 0.01, 100), 1);
        assert_eq!(steps_in_epoch(0, 0.333, 10), 4);
    }
}
