//! `batch_norm2d_train_gap`: the global average pool of a training-mode batch norm,
//! `GAP(BN(x))`, `[N, C, H, W] -> [N, C, 1, 1]`, without writing the normalised tensor.
//!
//! The pool of an affine map is the affine map of the plane means: with `m[n, c]` the mean of
//! plane `(n, c)`, `gap[n, c] = (m[n, c] - mean_c) * invstd_c * gamma_c + beta_c`. One pass per
//! channel gives the batch statistics and the plane means together, and the statistics are
//! returned so that the other consumers of the same normalisation (the SSE gate of a ParNet block
//! and its fused merge, [`crate::ops::rep_merge`]) share them.
//!
//! Backward, with `M = N * H * W`, `xhat = (x - mean) * invstd`, `A_c = sum_n dgap[n, c]` and
//! `B_c = sum_n dgap[n, c] * (m[n, c] - mean_c) * invstd_c` (the BN backward of an upstream
//! gradient `dgap[n, c] / (H * W)` spread over each plane):
//! - `dx[n, c, p] = gamma_c * invstd_c / M * (M / (H * W) * dgap[n, c] - A_c - xhat[n, c, p] * B_c)`;
//! - `dgamma_c = B_c`, `dbeta_c = A_c`.

use rayon::prelude::*;

use super::forward::moments_and_plane_means;
use super::{BatchMoments, check_training_shapes, plane, planes_by_channel};
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::Result;
use crate::kernels::batch_norm::affine_plane;
use crate::replicas::{BatchSync, sum_f64};
use crate::tensor::{Buffer, Tensor};

const OP: &str = "batch_norm2d_train_gap";

/// `GAP(batch_norm2d_train(x, gamma, beta, eps))` as `[N, C, 1, 1]`, and the batch moments.
/// Gradients flow to `x` (through the batch statistics), `gamma` and `beta`.
///
/// Rejects `N * H * W < 2`, like [`super::batch_norm2d_train`].
pub fn batch_norm2d_train_gap(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
) -> Result<(Tensor, BatchMoments)> {
    batch_norm2d_train_gap_synced(x, gamma, beta, eps, None)
}

/// [`batch_norm2d_train_gap`] with the statistics of the global batch of every replica of `sync`
/// (see [`super::batch_norm2d_train_synced`]).
pub fn batch_norm2d_train_gap_synced(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    sync: BatchSync,
) -> Result<(Tensor, BatchMoments)> {
    let (n, c, h, w) = check_training_shapes(OP, x, gamma, beta, eps)?;
    let hw = h * w;
    let data = x.data();
    // Plane means laid out [C, N] (one contiguous run per channel task).
    let mut plane_means = vec![0.0f64; c * n];
    let mut channels: Vec<_> = plane_means
        .par_chunks_mut(n)
        .enumerate()
        .map(|(ch, means)| {
            let planes = (0..n).map(|i| plane(data, c, hw, i, ch));
            moments_and_plane_means(planes, hw, eps, means)
        })
        .collect();
    let m = super::synchronise(&mut channels, n * hw, eps, sync);
    let (gamma_v, beta_v) = (gamma.data(), beta.data());
    let gap = Buffer::from_fn(n * c, |k| {
        let (i, ch) = (k / c, k % c);
        let s = &channels[ch];
        let scale = gamma_v[ch] as f64 * s.invstd as f64;
        ((plane_means[ch * n + i] - s.mean) * scale + beta_v[ch] as f64) as f32
    });
    let moments = BatchMoments::new(channels, m);
    let kept = moments.channels.clone();
    let out = Tensor::from_op(gap, [n, c, 1, 1], &[x, gamma, beta], || {
        BatchNormGapBackward {
            moments: kept,
            plane_means,
            count: m as f64,
            sync,
        }
    });
    Ok((out, moments))
}

struct BatchNormGapBackward {
    moments: Vec<super::ChannelMoments>,
    /// `[C, N]`.
    plane_means: Vec<f64>,
    /// `M`: the values per channel the moments are over (every replica's, when synced).
    count: f64,
    sync: BatchSync,
}

impl BackwardOp for BatchNormGapBackward {
    fn name(&self) -> &'static str {
        OP
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let x_t = &ctx.inputs[0];
        let (n, c, h, w) = x_t
            .shape()
            .nchw()
            .expect("batch_norm2d_train_gap: x is NCHW");
        let hw = h * w;
        let m = self.count;
        let (x, gamma, dgap) = (x_t.data(), ctx.inputs[1].data(), ctx.grad_output);
        // (A_c, B_c) per channel: this replica's (for dgamma, dbeta), and every replica's (dx).
        let local: Vec<(f64, f64)> = (0..c)
            .map(|ch| {
                let s = &self.moments[ch];
                (0..n).fold((0.0, 0.0), |(a, b), i| {
                    let g = dgap[i * c + ch] as f64;
                    let centred = (self.plane_means[ch * n + i] - s.mean) * s.invstd as f64;
                    (a + g, b + g * centred)
                })
            })
            .collect();
        let sums = match self.sync {
            None => local.clone(),
            Some(replicas) => {
                let mut all: Vec<f64> = local.iter().flat_map(|&(a, b)| [a, b]).collect();
                sum_f64(replicas, &mut all);
                all.chunks(2).map(|p| (p[0], p[1])).collect()
            }
        };
        let dx = ctx.needs_grad(0).then(|| {
            let mut dx = Buffer::for_overwrite(x.len());
            planes_by_channel(&mut dx, c, hw)
                .into_par_iter()
                .enumerate()
                .for_each(|(ch, dx_planes)| {
                    let s = &self.moments[ch];
                    let (a, b) = sums[ch];
                    let invstd = s.invstd as f64;
                    let coef = gamma[ch] as f64 * invstd / m;
                    // dx = shift - ((x - mean_hi) - mean_lo) * slope, per plane.
                    let slope = (coef * invstd * b) as f32;
                    for (i, dxp) in dx_planes.into_iter().enumerate() {
                        let g = dgap[i * c + ch] as f64;
                        let shift = (coef * (m / hw as f64 * g - a)) as f32;
                        affine_plane(
                            plane(x, c, hw, i, ch),
                            s.mean_hi,
                            s.mean_lo,
                            -slope,
                            shift,
                            dxp,
                        );
                    }
                });
            dx
        });
        let dgamma = ctx
            .needs_grad(1)
            .then(|| Buffer::from_fn(c, |ch| local[ch].1 as f32));
        let dbeta = ctx
            .needs_grad(2)
            .then(|| Buffer::from_fn(c, |ch| local[ch].0 as f32));
        vec![dx, dgamma, dbeta]
    }
}

/// Plain reference: the f64 training batch norm of `x`, averaged over each plane.
pub fn batch_norm2d_train_gap_reference<T: num_traits::Float>(
    x: &[T],
    dims: [usize; 4],
    gamma: &[T],
    beta: &[T],
    eps: T,
) -> Vec<T> {
    let y = super::batch_norm2d_train_reference(x, dims, gamma, beta, eps);
    let hw = dims[2] * dims[3];
    y.chunks(hw.max(1))
        .map(|p| p.iter().fold(T::zero(), |a, &v| a + v) / T::from(hw).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::batch_norm::batch_norm2d_train;
    use crate::ops::pool::global_avg_pool;
    use crate::testing::*;
    use proptest::prelude::*;

    const EPS: f32 = 1e-5;

    fn tensor(values: &[f64], dims: &[usize]) -> Tensor {
        Tensor::from_vec(to_f32(values), dims.to_vec()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The pool and the moments against the f64 reference and the unfused ops, off-centre
        /// data.
        #[test]
        fn forward_matches_reference_and_the_unfused_ops(
            n in 1usize..5, c in 1usize..5, h in 1usize..7, w in 2usize..7,
            offset in -4.0f64..4.0, seed in any::<u64>(),
        ) {
            let dims = [n, c, h, w];
            let x = shifted_values(n * c * h * w, 2.0, offset, seed);
            let gamma = random_values(c, 1.5, seed + 1);
            let beta = random_values(c, 1.0, seed + 2);
            let (xt, gt, bt) = (tensor(&x, &dims), tensor(&gamma, &[c]), tensor(&beta, &[c]));
            let (gap, moments) = batch_norm2d_train_gap(&xt, &gt, &bt, EPS).unwrap();
            prop_assert_eq!(gap.dims(), &[n, c, 1, 1]);
            let reference = batch_norm2d_train_gap_reference(&x, dims, &gamma, &beta, EPS as f64);
            assert_close("gap of bn", gap.data(), &reference, 1e-5, 1e-5);
            let (y, stats) = batch_norm2d_train(&xt, &gt, &bt, EPS).unwrap();
            prop_assert_eq!(&moments.stats, &stats);
            let unfused = global_avg_pool(&y).unwrap();
            let unfused: Vec<f64> = unfused.data().iter().map(|&v| v as f64).collect();
            assert_close("gap vs unfused", gap.data(), &unfused, 1e-5, 1e-5);
        }

        /// Gradients to x (through the statistics), gamma and beta against finite differences
        /// of the f64 reference.
        #[test]
        fn backward_matches_finite_differences(
            n in 1usize..4, c in 1usize..3, h in 1usize..4, w in 2usize..4,
            offset in -2.0f64..2.0, seed in any::<u64>(),
        ) {
            let dims = [n, c, h, w];
            let x = shifted_values(n * c * h * w, 2.0, offset, seed);
            let gamma = random_values(c, 1.5, seed + 1);
            let beta = random_values(c, 1.0, seed + 2);
            check_gradients(
                OP,
                &[GradInput::new(x, &dims), GradInput::new(gamma, &[c]), GradInput::new(beta, &[c])],
                |t| batch_norm2d_train_gap(&t[0], &t[1], &t[2], EPS).unwrap().0,
                |v| batch_norm2d_train_gap_reference(&v[0], dims, &v[1], &v[2], EPS as f64),
                GradTolerance::default(),
                seed,
            );
        }
    }

    #[test]
    fn rejects_a_single_value_per_channel() {
        let x = Tensor::zeros([1, 2, 1, 1]);
        let g = Tensor::from_vec(vec![1.0; 2], [2]).unwrap();
        let b = Tensor::zeros([2]);
        let err = batch_norm2d_train_gap(&x, &g, &b, EPS)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(OP) && err.contains("more than 1 value"),
            "{err}"
        );
    }
}
