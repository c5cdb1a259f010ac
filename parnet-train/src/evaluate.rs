//! Evaluation: loss, top-1 and top-5 of a network over a loader, optionally with a
//! horizontal-flip test-time augmentation measured beside the plain figures.

use anyhow::Result;
use parnet_core::models::Network;
use parnet_core::nn::Ctx;
use parnet_core::ops::loss::{accuracy_topk, cross_entropy};
use parnet_core::{Buffer, Tensor};
use parnet_data::Loader;
use serde::{Deserialize, Serialize};

use crate::distributed::Distributed;

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

/// Test-time augmentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Tta {
    /// The images as they are.
    #[default]
    None,
    /// Also the mirrored images; the prediction is the mean of the two softmax outputs.
    Flip,
}

/// The plain metrics and, with [`Tta::Flip`], those of the flip-averaged prediction over the
/// same images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Evaluation {
    #[serde(flatten)]
    pub plain: EvalResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flip: Option<EvalResult>,
}

/// Running sums of the metrics over batches.
#[derive(Default)]
pub(crate) struct Tally {
    loss_sum: f64,
    top1: usize,
    top5: usize,
    images: usize,
}

impl Tally {
    /// Adds one batch of logits `[n, classes]` (any per-row shift of the logits gives the same
    /// figures, so log-probabilities count as logits).
    fn add(&mut self, logits: &Tensor, labels: &[usize], classes: usize) -> Result<()> {
        let n = labels.len();
        self.loss_sum += cross_entropy(logits, labels, 0.0)?.item()? as f64 * n as f64;
        self.top1 += accuracy_topk(logits.data(), classes, labels, 1);
        self.top5 += accuracy_topk(logits.data(), classes, labels, 5.min(classes));
        self.images += n;
        Ok(())
    }

    /// The sums of every rank of a distributed evaluation (each over its share of the images).
    fn sum_over(&mut self, d: Distributed) {
        let mut sums = [
            self.loss_sum,
            self.top1 as f64,
            self.top5 as f64,
            self.images as f64,
        ];
        d.sum(&mut sums);
        self.loss_sum = sums[0];
        (self.top1, self.top5, self.images) =
            (sums[1] as usize, sums[2] as usize, sums[3] as usize);
    }

    fn result(&self) -> EvalResult {
        let n = self.images.max(1) as f64;
        EvalResult {
            images: self.images,
            loss: self.loss_sum / n,
            top1: self.top1 as f64 / n,
            top5: self.top5 as f64 / n,
        }
    }
}

/// Runs `model` in inference mode over every batch of `loader` (epoch 0 order).
pub fn evaluate(model: &dyn Network, loader: &Loader) -> Result<EvalResult> {
    Ok(evaluate_with(model, loader, Tta::None)?.plain)
}

/// [`evaluate`], plus the flip-averaged figures when `tta` is [`Tta::Flip`] (one more forward
/// pass per batch).
pub fn evaluate_with(model: &dyn Network, loader: &Loader, tta: Tta) -> Result<Evaluation> {
    let mut forward = |x: &Tensor| -> Result<Tensor> { Ok(model.forward(x, Ctx::eval())?) };
    evaluate_by(&mut forward, model.num_classes(), loader, tta)
}

/// [`evaluate_with`] through any forward (images `[N, 3, H, W]` to logits `[N, classes]`).
pub fn evaluate_by(
    forward: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
    classes: usize,
    loader: &Loader,
    tta: Tta,
) -> Result<Evaluation> {
    evaluate_shared(forward, classes, loader, tta, None)
}

/// [`evaluate_with`] by the ranks of a distributed run, each over its shard of `loader`'s
/// batches (`None`: this process over all of them): the figures of the whole set on every rank.
pub fn evaluate_distributed(
    model: &dyn Network,
    loader: &Loader,
    tta: Tta,
    distributed: Option<Distributed>,
) -> Result<Evaluation> {
    let mut forward = |x: &Tensor| -> Result<Tensor> { Ok(model.forward(x, Ctx::eval())?) };
    evaluate_shared(&mut forward, model.num_classes(), loader, tta, distributed)
}

fn evaluate_shared(
    forward: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
    classes: usize,
    loader: &Loader,
    tta: Tta,
    distributed: Option<Distributed>,
) -> Result<Evaluation> {
    let (mut plain, mut flip) = (Tally::default(), Tally::default());
    let mut batches = loader.epoch(0);
    while let Some(batch) = batches.next() {
        let batch = batch?;
        if batch.is_empty() {
            // A rank's share of a last batch smaller than the ranks.
            continue;
        }
        let shape = batch.shape().to_vec();
        let x = Tensor::new(Buffer::from_slice(&batch.images), shape.clone())?;
        let logits = forward(&x)?;
        plain.add(&logits, &batch.labels, classes)?;
        if tta == Tta::Flip {
            let mut mirrored = batch.images.clone();
            mirror_rows(&mut mirrored, shape[3]);
            let x = Tensor::new(Buffer::from_slice(&mirrored), shape)?;
            let logits_mirrored = forward(&x)?;
            let mean = mean_softmax_log(logits.data(), logits_mirrored.data(), classes);
            let mean = Tensor::new(Buffer::from_slice(&mean), vec![batch.len(), classes])?;
            flip.add(&mean, &batch.labels, classes)?;
        }
        batches.recycle(batch);
    }
    if let Some(d) = distributed {
        plain.sum_over(d);
        flip.sum_over(d);
    }
    Ok(Evaluation {
        plain: plain.result(),
        flip: (tta == Tta::Flip).then(|| flip.result()),
    })
}

/// Reverses every row of `width` values in place (a horizontal flip of NCHW images).
fn mirror_rows(images: &mut [f32], width: usize) {
    images.chunks_exact_mut(width).for_each(|row| row.reverse());
}

/// `log((softmax(a) + softmax(b)) / 2)` row by row, for rows of `classes` logits.
fn mean_softmax_log(a: &[f32], b: &[f32], classes: usize) -> Vec<f32> {
    let softmax = |row: &[f32]| -> Vec<f64> {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        let exp: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
        let sum: f64 = exp.iter().sum();
        exp.into_iter().map(|e| e / sum).collect()
    };
    a.chunks_exact(classes)
        .zip(b.chunks_exact(classes))
        .flat_map(|(ra, rb)| {
            let (pa, pb) = (softmax(ra), softmax(rb));
            pa.into_iter()
                .zip(pb)
                .map(|(x, y)| (0.5 * (x + y)).max(f64::MIN_POSITIVE).ln() as f32)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_reverses_each_row_only() {
        let mut v: Vec<f32> = (0..8).map(|i| i as f32).collect();
        mirror_rows(&mut v, 4);
        assert_eq!(v, [3.0, 2.0, 1.0, 0.0, 7.0, 6.0, 5.0, 4.0]);
    }

    #[test]
    fn mean_softmax_is_the_log_of_the_averaged_probabilities() {
        // Row 1: softmax([0, ln 3]) = [1/4, 3/4]; softmax([ln 3, 0]) = [3/4, 1/4]; mean [1/2, 1/2].
        let l3 = 3f32.ln();
        let out = mean_softmax_log(&[0.0, l3, 5.0, 5.0], &[l3, 0.0, 1.0, 1.0], 2);
        for (got, want) in out
            .iter()
            .zip([0.5f32.ln(), 0.5f32.ln(), 0.5f32.ln(), 0.5f32.ln()])
        {
            assert!((got - want).abs() < 1e-6, "{out:?}");
        }
        // Unequal: softmax([0, 0]) = [1/2, 1/2] and softmax([0, ln 3]) = [1/4, 3/4] -> [3/8, 5/8].
        let out = mean_softmax_log(&[0.0, 0.0], &[0.0, l3], 2);
        assert!((out[0] - (3.0f32 / 8.0).ln()).abs() < 1e-6);
        assert!((out[1] - (5.0f32 / 8.0).ln()).abs() < 1e-6);
    }
}
