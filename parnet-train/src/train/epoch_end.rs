//! The end of an epoch: evaluation when due (and of the EMA weights), the log line, the metrics
//! log and curves, and the checkpoints.

use anyhow::Result;

use super::TrainOptions;
use super::epoch::EpochOutcome;
use super::run_dir::{best_checkpoint, curves_path, last_checkpoint, log_path};
use super::session::State;
use crate::distributed::BatchNormMode;
use crate::evaluate::{Evaluation, Tta, evaluate_distributed};
use crate::metrics::{EpochRecord, plot_curves, write_log};
use parnet_core::optim::average_state_buffers;

/// Evaluates (when due: every `train.eval_every` epochs, at the last epoch and when the time
/// limit has passed), logs and checkpoints the epoch just trained.
pub(super) fn end_epoch(
    st: &mut State,
    out: &EpochOutcome,
    total_epochs: f64,
    opts: TrainOptions,
) -> Result<Option<Evaluation>> {
    let done = st.pos.epoch + 1;
    let due = done.is_multiple_of(st.cfg.train.eval_every)
        || done as f64 >= total_epochs
        || st.out_of_time();
    let dist = st.distributed;
    if let Some(d) = dist.filter(|d| d.batch_norm == BatchNormMode::Local) {
        // Local batch norms: every rank takes the mean of the ranks' running statistics.
        average_state_buffers(st.model.as_ref(), d.replicas);
    }
    let val = if due {
        Some(evaluate_distributed(
            st.model.as_ref(),
            &st.data.val,
            st.cfg.train.eval_tta,
            dist,
        )?)
    } else {
        None
    };
    let ema_val = match (&st.step.ema, due) {
        (Some(ema), true) => {
            let shadow = st.spec.build(0)?;
            ema.copy_to(shadow.as_ref());
            Some(evaluate_distributed(shadow.as_ref(), &st.data.val, Tta::None, dist)?.plain)
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
        crate::say!(
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
    if st.leads() {
        write_log(&log_path(&st.dir), &st.records)?;
        plot_curves(&curves_path(&st.dir), &st.records)?;
    }
    st.save(&last_checkpoint(&st.dir))?;
    if improved {
        st.save(&best_checkpoint(&st.dir))?;
    }
    Ok(val)
}
