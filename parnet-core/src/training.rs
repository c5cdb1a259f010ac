//! One training step, the only one: the training loop (`parnet train`), `parnet bench train` and
//! the parnet-bench benches all run [`TrainStep::run`], so a fix or a speed-up reaches all three.
//!
//! A step: forward in training mode (batch statistics, dropout, graph) → cross-entropy (with
//! label smoothing) → a non-finite loss stops here with [`CoreError::NonFiniteLoss`], before any
//! weight changes → backward → gradients averaged over the data-parallel replicas (if any) →
//! gradient clipping by global norm (optional) → SGD → gradients cleared → EMA update (optional).
//!
//! Data-parallel: every replica runs this step on its share of one global batch (equal shares)
//! with the same seed; each replica's loss is the mean over its share, so the mean of the
//! replicas' gradients is the gradient of the global batch's mean loss. With synchronised batch
//! norm the statistics are the global batch's too, and the step equals the single-process step on
//! the whole batch up to the order of floating-point sums (`tests/replicas.rs` states the
//! tolerance).

use crate::autograd::BackwardOptions;
use crate::error::{CoreError, Result};
use crate::models::Network;
use crate::nn::Ctx;
use crate::ops::loss::cross_entropy;
use crate::optim::{Ema, Sgd, SgdConfig, average_gradients, clip_grad_norm};
use crate::replicas::Replicas;
use crate::tensor::{Buffer, Tensor};

/// What a step does besides forward, loss, backward and SGD.
#[derive(Clone, Copy, Debug)]
pub struct StepOptions {
    /// Label smoothing of the cross-entropy (0: none).
    pub label_smoothing: f32,
    /// Clip the gradients' global L2 norm to this before the SGD step.
    pub grad_clip: Option<f32>,
    /// Run independent streams of the forward on concurrent rayon tasks.
    pub parallel_streams: bool,
    /// How the backward walks the graph.
    pub backward: BackwardOptions,
    /// The data-parallel replicas this step is one of (`None`: one process). Gradients are
    /// averaged over them after the backward; every replica gets the same update.
    pub replicas: Option<&'static dyn Replicas>,
    /// With `replicas`: batch norms take the statistics of the global batch (synchronised batch
    /// norm; else each replica's own). Streams and the backward then run in order, so that every
    /// replica enters the batch-norm exchanges in the same order.
    pub sync_batch_norm: bool,
    /// With `replicas`: the index of this replica's first image in the global batch (dropout
    /// masks follow the global batch).
    pub first_sample: usize,
}

impl Default for StepOptions {
    /// No smoothing, no clipping, streams and backward in parallel.
    fn default() -> Self {
        StepOptions {
            label_smoothing: 0.0,
            grad_clip: None,
            parallel_streams: true,
            backward: BackwardOptions::default(),
            replicas: None,
            sync_batch_norm: false,
            first_sample: 0,
        }
    }
}

/// The optimiser state of a run and how its steps are taken.
pub struct TrainStep {
    pub sgd: Sgd,
    /// The weight EMA, when the run keeps one.
    pub ema: Option<Ema>,
    pub options: StepOptions,
}

/// What one step returns.
pub struct StepOutcome {
    /// The mean loss of the batch (before the update; of the global batch when data-parallel).
    pub loss: f32,
    /// The batch's logits `[N, classes]` (before the update).
    pub logits: Tensor,
}

impl TrainStep {
    /// SGD over every parameter of `model`, and an EMA of it with `ema_decay` if given.
    pub fn new(
        model: &dyn Network,
        sgd: SgdConfig,
        ema_decay: Option<f32>,
        options: StepOptions,
    ) -> Result<TrainStep> {
        Ok(TrainStep {
            sgd: Sgd::new(model.params(), sgd)?,
            ema: ema_decay.map(|d| Ema::new(model, d)),
            options,
        })
    }

    /// One step on `images` `[N, 3, H, W]` with `labels` (`N` class indices) at learning rate
    /// `lr`; `seed` draws this step's random choices (dropout masks).
    pub fn run(
        &mut self,
        model: &dyn Network,
        images: &Tensor,
        labels: &[usize],
        lr: f32,
        seed: u64,
    ) -> Result<StepOutcome> {
        let o = self.options;
        let batch_sync = o.replicas.filter(|_| o.sync_batch_norm);
        let in_order = batch_sync.is_some();
        let ctx = Ctx {
            parallel_streams: o.parallel_streams && !in_order,
            batch_sync,
            first_sample: o.replicas.map_or(0, |_| o.first_sample),
            ..Ctx::train(seed)
        };
        let logits = model.forward(images, ctx)?;
        let loss = cross_entropy(&logits, labels, o.label_smoothing)?;
        let value = loss.item()?;
        // Every replica stops, or none: the losses are exchanged before any backward.
        let value = match o.replicas {
            None => value,
            Some(r) => {
                let all = r.all_gather_f64(&[value as f64]);
                if let Some(bad) = all.iter().find(|v| !v.is_finite()) {
                    return Err(CoreError::NonFiniteLoss(*bad as f32));
                }
                (all.iter().sum::<f64>() / all.len() as f64) as f32
            }
        };
        if !value.is_finite() {
            return Err(CoreError::NonFiniteLoss(value));
        }
        let backward = BackwardOptions {
            parallel: o.backward.parallel && !in_order,
        };
        loss.backward_with_options(Buffer::filled(1, 1.0), backward)?;
        if let Some(r) = o.replicas {
            average_gradients(model, r);
        }
        if let Some(max_norm) = self.options.grad_clip {
            clip_grad_norm(model, max_norm);
        }
        self.sgd.step(lr);
        self.sgd.zero_grad();
        if let Some(ema) = self.ema.as_mut() {
            ema.update(model);
        }
        Ok(StepOutcome {
            loss: value,
            logits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::NetworkSpec;
    use crate::nn::Init;

    fn images(n: usize) -> Tensor {
        Tensor::new(
            Init::new(1).uniform("x", n * 3 * 16 * 16, 1.0),
            [n, 3, 16, 16],
        )
        .unwrap()
    }

    fn sgd() -> SgdConfig {
        SgdConfig {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: true,
            weight_decay: 5e-4,
        }
    }

    #[test]
    fn a_step_updates_the_weights_and_the_ema_and_clears_the_gradients() {
        let model = NetworkSpec::new("resnet-20", 10).build(0).unwrap();
        let before: Vec<Vec<f32>> = model.params().iter().map(|p| p.to_vec()).collect();
        let mut step =
            TrainStep::new(model.as_ref(), sgd(), Some(0.0), StepOptions::default()).unwrap();
        let out = step
            .run(model.as_ref(), &images(4), &[0, 1, 2, 3], 0.1, 7)
            .unwrap();
        assert!((out.loss - 10f32.ln()).abs() < 1.0, "{}", out.loss);
        assert_eq!(out.logits.dims(), [4, 10]);
        let after: Vec<Vec<f32>> = model.params().iter().map(|p| p.to_vec()).collect();
        assert_ne!(before, after);
        assert!(model.params().iter().all(|p| p.grad().is_none()));
        // An EMA of decay 0 is the weights themselves.
        let ema: Vec<f32> = step.ema.as_ref().unwrap().tensors()[0].data.clone();
        assert_eq!(ema, after[0]);
    }

    #[test]
    fn a_non_finite_loss_stops_before_any_update() {
        let model = NetworkSpec::new("resnet-20", 10).build(0).unwrap();
        let mut step = TrainStep::new(model.as_ref(), sgd(), None, StepOptions::default()).unwrap();
        let before: Vec<Vec<f32>> = model.params().iter().map(|p| p.to_vec()).collect();
        let mut x = images(2).to_vec();
        x[0] = f32::NAN;
        let x = Tensor::from_vec(x, [2, 3, 16, 16]).unwrap();
        let err = step.run(model.as_ref(), &x, &[0, 1], 0.1, 0).err().unwrap();
        assert!(
            matches!(err, CoreError::NonFiniteLoss(v) if v.is_nan()),
            "{err}"
        );
        let after: Vec<Vec<f32>> = model.params().iter().map(|p| p.to_vec()).collect();
        assert_eq!(before, after);
    }
}
