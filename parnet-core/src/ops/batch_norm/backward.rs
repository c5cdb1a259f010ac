//! Backward of batch norm, one rayon task per channel: a first pass reduces `sum(dy)` and
//! `sum(dy * (x - mean))` (f64, fixed order), a second pass writes `dx`.
//!
//! With `xhat = (x - mean) * invstd` and `M = N * H * W`:
//! - `dbeta = sum(dy)`, `dgamma = sum(dy * xhat)`;
//! - training (batch statistics): `dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat))`;
//! - eval (constant statistics): `dx = gamma * invstd * dy`.

use rayon::prelude::*;

use super::forward::plane;
use super::planes_by_channel;
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::kernels::batch_norm::{gradient_sums, input_gradient_plane};
use crate::replicas::{BatchSync, Replicas, sum_f64};
use crate::tensor::Buffer;

/// Backward state of [`super::batch_norm2d_train`] / [`super::batch_norm2d_eval`]; inputs are
/// `(x, gamma, beta)`.
pub(super) struct BatchNormBackward {
    /// Per-channel mean subtracted in the forward (batch or running), as `mean + mean_lo`: the
    /// kernels form `x - mean` as `(x - mean) - mean_lo` (`mean_lo` is 0 in eval mode).
    pub mean: Vec<f32>,
    pub mean_lo: Vec<f32>,
    /// Per-channel `1 / sqrt(var + eps)` used in the forward.
    pub invstd: Vec<f32>,
    /// Whether the statistics came from the batch (training) and are differentiated through.
    pub through_stats: bool,
    /// `M`: the values per channel the statistics are over (every replica's, when synced).
    pub count: f64,
    /// The replicas whose global batch the statistics are of (synchronised batch norm).
    pub sync: BatchSync,
}

impl BackwardOp for BatchNormBackward {
    fn name(&self) -> &'static str {
        if self.through_stats {
            "batch_norm2d_train"
        } else {
            "batch_norm2d_eval"
        }
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let x_t = &ctx.inputs[0];
        let (n, c, h, w) = x_t.shape().nchw().expect("batch_norm2d: x is [N, C, H, W]");
        let hw = h * w;
        let m = self.count;
        let (x, gamma, dy) = (x_t.data(), ctx.inputs[1].data(), ctx.grad_output);
        if let Some(replicas) = self.sync.filter(|_| self.through_stats) {
            return self.backward_synced(ctx, replicas);
        }

        let mut dx = ctx.needs_grad(0).then(|| Buffer::for_overwrite(x.len()));
        let dx_planes: Vec<Option<Vec<&mut [f32]>>> = match dx.as_deref_mut() {
            Some(buf) => planes_by_channel(buf, c, hw)
                .into_iter()
                .map(Some)
                .collect(),
            None => (0..c).map(|_| None).collect(),
        };

        // Per channel: (sum(dy), sum(dy * (x - mean))); not needed for an eval-mode dx alone.
        let need_sums = self.through_stats || ctx.needs_grad(1) || ctx.needs_grad(2);
        let sums: Vec<(f64, f64)> = dx_planes
            .into_par_iter()
            .enumerate()
            .map(|(ch, dx_planes)| {
                let (mean, mean_lo) = (self.mean[ch], self.mean_lo[ch]);
                let invstd = self.invstd[ch] as f64;
                let xs = (0..n).map(|i| plane(x, c, hw, i, ch));
                let dys = (0..n).map(|i| plane(dy, c, hw, i, ch));
                let mut sum_dy = 0.0f64;
                let mut sum_dy_xmu = 0.0f64;
                for (xp, dyp) in xs.clone().zip(dys.clone()).filter(|_| need_sums) {
                    let (s, s_xmu) = gradient_sums(dyp, xp, mean, mean_lo);
                    sum_dy += s;
                    sum_dy_xmu += s_xmu;
                }
                if let Some(dx_planes) = dx_planes {
                    // dx = a * (dy - b - (x - mean) * k)
                    let a = (gamma[ch] as f64 * invstd) as f32;
                    let (b, k) = if self.through_stats {
                        (
                            (sum_dy / m) as f32,
                            (invstd * invstd * sum_dy_xmu / m) as f32,
                        )
                    } else {
                        (0.0, 0.0)
                    };
                    for ((dxp, xp), dyp) in dx_planes.into_iter().zip(xs).zip(dys) {
                        input_gradient_plane(dyp, xp, (mean, mean_lo), (a, b, k), dxp);
                    }
                }
                (sum_dy, sum_dy_xmu)
            })
            .collect();

        let dgamma = ctx
            .needs_grad(1)
            .then(|| Buffer::from_fn(c, |ch| (sums[ch].1 * self.invstd[ch] as f64) as f32));
        let dbeta = ctx
            .needs_grad(2)
            .then(|| Buffer::from_fn(c, |ch| sums[ch].0 as f32));
        vec![dx, dgamma, dbeta]
    }
}

impl BatchNormBackward {
    /// The training backward of a synchronised batch norm: this replica's sums, their sum over
    /// the replicas (for `dx`, whose statistics were the global batch's), then `dx`.
    fn backward_synced(
        &self,
        ctx: &BackwardCtx<'_>,
        replicas: &'static dyn Replicas,
    ) -> Vec<Option<Buffer>> {
        let x_t = &ctx.inputs[0];
        let (n, c, h, w) = x_t.shape().nchw().expect("batch_norm2d: x is [N, C, H, W]");
        let hw = h * w;
        let m = self.count;
        let (x, gamma, dy) = (x_t.data(), ctx.inputs[1].data(), ctx.grad_output);
        let local: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                (0..n).fold((0.0, 0.0), |(s, s_xmu), i| {
                    let (a, b) = gradient_sums(
                        plane(dy, c, hw, i, ch),
                        plane(x, c, hw, i, ch),
                        self.mean[ch],
                        self.mean_lo[ch],
                    );
                    (s + a, s_xmu + b)
                })
            })
            .collect();
        let mut global: Vec<f64> = local.iter().flat_map(|&(a, b)| [a, b]).collect();
        sum_f64(replicas, &mut global);
        let mut dx = ctx.needs_grad(0).then(|| Buffer::for_overwrite(x.len()));
        if let Some(buf) = dx.as_deref_mut() {
            buf.par_chunks_mut(hw).enumerate().for_each(|(k, dxp)| {
                let (i, ch) = (k / c, k % c);
                let invstd = self.invstd[ch] as f64;
                let a = (gamma[ch] as f64 * invstd) as f32;
                let b = (global[2 * ch] / m) as f32;
                let kk = (invstd * invstd * global[2 * ch + 1] / m) as f32;
                input_gradient_plane(
                    plane(dy, c, hw, i, ch),
                    plane(x, c, hw, i, ch),
                    (self.mean[ch], self.mean_lo[ch]),
                    (a, b, kk),
                    dxp,
                );
            });
        }
        let dgamma = ctx
            .needs_grad(1)
            .then(|| Buffer::from_fn(c, |ch| (local[ch].1 * self.invstd[ch] as f64) as f32));
        let dbeta = ctx
            .needs_grad(2)
            .then(|| Buffer::from_fn(c, |ch| local[ch].0 as f32));
        vec![dx, dgamma, dbeta]
    }
}
