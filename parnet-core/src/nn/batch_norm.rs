//! `BatchNorm2d`: PyTorch semantics (eps 1e-5, momentum 0.1, unbiased running variance).

use super::{Ctx, Module, StateBuffer, join_name};
use crate::Param;
use crate::error::Result;
use crate::ops::batch_norm::{
    BatchStats, batch_norm2d_eval, batch_norm2d_train_synced, update_running_stats,
};
use crate::tensor::{Buffer, Tensor};

/// Keys: `<prefix>.weight`, `.bias` (γ, β), `.running_mean`, `.running_var`,
/// `.num_batches_tracked`.
pub struct BatchNorm2d {
    pub weight: Param,
    pub bias: Param,
    pub running_mean: StateBuffer,
    pub running_var: StateBuffer,
    pub num_batches_tracked: StateBuffer,
    pub prefix: String,
    pub eps: f32,
    pub momentum: f32,
}

impl BatchNorm2d {
    /// γ = 1, β = 0, running mean 0, running variance 1.
    pub fn new(prefix: &str, channels: usize) -> Result<BatchNorm2d> {
        Ok(BatchNorm2d {
            weight: Param::new(
                join_name(prefix, "weight"),
                Buffer::filled(channels, 1.0),
                [channels],
            )?,
            bias: Param::new(
                join_name(prefix, "bias"),
                Buffer::zeros(channels),
                [channels],
            )?,
            running_mean: StateBuffer::new(join_name(prefix, "running_mean"), vec![0.0; channels]),
            running_var: StateBuffer::new(join_name(prefix, "running_var"), vec![1.0; channels]),
            num_batches_tracked: StateBuffer::counter(join_name(prefix, "num_batches_tracked")),
            prefix: prefix.to_string(),
            eps: 1e-5,
            momentum: 0.1,
        })
    }

    pub fn channels(&self) -> usize {
        self.weight.numel()
    }

    /// Training: normalise with batch statistics and update the running ones. Eval: running
    /// statistics.
    pub fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        let gamma = self.weight.get(ctx.track_grad);
        let beta = self.bias.get(ctx.track_grad);
        if ctx.train {
            let (y, stats) = batch_norm2d_train_synced(x, &gamma, &beta, self.eps, ctx.batch_sync)?;
            self.record_batch(&stats);
            Ok(y)
        } else {
            let mean = self.running_mean.get();
            let var = self.running_var.get();
            batch_norm2d_eval(x, &gamma, &beta, &mean, &var, self.eps)
        }
    }

    /// Folds a training batch's statistics into the running ones (PyTorch's update) and counts
    /// the batch; for ops that normalise with this layer's parameters themselves (the fused block
    /// merge).
    pub fn record_batch(&self, stats: &BatchStats) {
        let mut mean = self
            .running_mean
            .data
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut var = self
            .running_var
            .data
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        update_running_stats(&mut mean, &mut var, stats, self.momentum);
        self.num_batches_tracked
            .data
            .lock()
            .unwrap_or_else(|e| e.into_inner())[0] += 1.0;
    }

    /// `(gamma, beta)` as tensors: leaves when `track_grad`, constants otherwise.
    pub fn affine_params(&self, track_grad: bool) -> (Tensor, Tensor) {
        (self.weight.get(track_grad), self.bias.get(track_grad))
    }

    /// The eval-mode affine `y = a·x + c` per channel: `a = γ/sqrt(var+eps)`,
    /// `c = β − mean·a` (computed in f64).
    pub fn eval_affine(&self) -> (Vec<f64>, Vec<f64>) {
        let gamma = self.weight.to_vec();
        let beta = self.bias.to_vec();
        let mean = self.running_mean.get();
        let var = self.running_var.get();
        let a: Vec<f64> = gamma
            .iter()
            .zip(&var)
            .map(|(&g, &v)| g as f64 / (v as f64 + self.eps as f64).sqrt())
            .collect();
        let c = beta
            .iter()
            .zip(&mean)
            .zip(&a)
            .map(|((&b, &m), &a)| b as f64 - m as f64 * a)
            .collect();
        (a, c)
    }
}

impl Module for BatchNorm2d {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        f(&self.weight);
        f(&self.bias);
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&StateBuffer)) {
        f(&self.running_mean);
        f(&self.running_var);
        f(&self.num_batches_tracked);
    }
}

impl BatchNorm2d {
    /// An independent copy (parameters and running statistics).
    pub fn deep_clone(&self) -> BatchNorm2d {
        let copy = |b: &StateBuffer| StateBuffer {
            data: std::sync::Arc::new(std::sync::Mutex::new(b.get())),
            ..b.clone()
        };
        BatchNorm2d {
            weight: super::copy_param(&self.weight),
            bias: super::copy_param(&self.bias),
            running_mean: copy(&self.running_mean),
            running_var: copy(&self.running_var),
            num_batches_tracked: copy(&self.num_batches_tracked),
            prefix: self.prefix.clone(),
            eps: self.eps,
            momentum: self.momentum,
        }
    }
}
