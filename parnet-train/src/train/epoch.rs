//! One epoch of training steps (the core's [`TrainStep`](parnet_core::training::TrainStep)),
//! with a progress bar, the running loss and accuracy, and a check for a stop after every step.

use std::time::Instant;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parnet_core::ops::loss::accuracy_topk;
use parnet_core::{Buffer, CoreError, Tensor};

use super::run_dir::last_checkpoint;
use super::session::{State, step_seed};
use super::{TrainOptions, stop};

/// What one epoch's training steps add up to.
pub(super) struct EpochOutcome {
    pub(super) interrupted: bool,
    pub(super) loss_sum: f64,
    pub(super) correct: usize,
    pub(super) correct_top5: usize,
    pub(super) images: usize,
    pub(super) images_per_sec: f64,
    pub(super) lr: f64,
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

/// Runs the training steps of epoch `st.pos.epoch` from `st.pos.step_in_epoch` on.
pub(super) fn train_epoch(
    st: &mut State,
    total_epochs: f64,
    opts: TrainOptions,
) -> Result<EpochOutcome> {
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
        let seed = step_seed(st.cfg.train.seed, st.pos.global_step);
        let outcome = match st
            .step
            .run(st.model.as_ref(), &x, &batch.labels, lr as f32, seed)
        {
            Err(CoreError::NonFiniteLoss(loss)) => {
                let last = last_checkpoint(&st.dir);
                let saved = if last.exists() {
                    format!("the last good checkpoint is {}", last.display())
                } else {
                    "no checkpoint was written yet".to_string()
                };
                bail!(
                    "the loss became {loss} at epoch {}, step {}: training stopped; {saved} (try a lower learning rate)",
                    epoch + 1,
                    index + 1
                )
            }
            other => other?,
        };
        let (loss_value, logits) = (outcome.loss, outcome.logits);
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
        let stop_here = stop::requested() || (index < steps && st.out_of_time());
        // The ranks of a distributed run stop after the same step, or none does.
        let stop_here = st.distributed.map_or(stop_here, |d| d.any(stop_here));
        if stop_here {
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
    if let Some(d) = st.distributed {
        // Every rank's share of the epoch: the loss sums are of the global mean loss times the
        // rank's images, so their sum is the epoch's.
        let mut sums = [
            out.loss_sum,
            out.correct as f64,
            out.correct_top5 as f64,
            out.images as f64,
        ];
        d.sum(&mut sums);
        out.loss_sum = sums[0];
        (out.correct, out.correct_top5, out.images) =
            (sums[1] as usize, sums[2] as usize, sums[3] as usize);
    }
    out.images_per_sec = out.images as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::steps_in_epoch;

    #[test]
    fn a_fractional_run_ends_with_a_partial_epoch() {
        assert_eq!(steps_in_epoch(0, 2.5, 100), 100);
        assert_eq!(steps_in_epoch(1, 2.5, 100), 100);
        assert_eq!(steps_in_epoch(2, 2.5, 100), 50);
        assert_eq!(steps_in_epoch(0, 0.01, 100), 1);
        assert_eq!(steps_in_epoch(0, 0.333, 10), 4);
    }
}
