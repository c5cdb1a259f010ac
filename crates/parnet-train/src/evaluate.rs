//! Evaluation: loss, top-1 and top-5 of a network over a loader.

use anyhow::Result;
use parnet_core::models::Network;
use parnet_core::nn::Ctx;
use parnet_core::ops::loss::{accuracy_topk, cross_entropy};
use parnet_core::{Buffer, Tensor};
use parnet_data::Loader;
use serde::Serialize;

/// Metrics of one pass over a data set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct EvalResult {
    pub images: usize,
    /// Mean cross-entropy (no label smoothing).
    pub loss: f64,
    /// Fractions in [0, 1].
    pub top1: f64,
    pub top5: f64,
}

/// Runs `model` in inference mode over every batch of `loader` (epoch 0 order).
pub fn evaluate(model: &dyn Network, loader: &Loader) -> Result<EvalResult> {
    let classes = model.num_classes();
    let (mut loss_sum, mut top1, mut top5, mut images) = (0.0f64, 0usize, 0usize, 0usize);
    let mut batches = loader.epoch(0);
    while let Some(batch) = batches.next() {
        let batch = batch?;
        let x = Tensor::new(Buffer::from_slice(&batch.images), batch.shape().to_vec())?;
        let logits = model.forward(&x, Ctx::eval())?;
        let n = batch.len();
        loss_sum += cross_entropy(&logits, &batch.labels, 0.0)?.item()? as f64 * n as f64;
        top1 += accuracy_topk(logits.data(), classes, &batch.labels, 1);
        top5 += accuracy_topk(logits.data(), classes, &batch.labels, 5.min(classes));
        images += n;
        batches.recycle(batch);
    }
    let n = images.max(1) as f64;
    Ok(EvalResult {
        images,
        loss: loss_sum / n,
        top1: top1 as f64 / n,
        top5: top5 as f64 / n,
    })
}
