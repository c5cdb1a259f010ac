//! `rep_merge_train`: the merge of a ParNet block's branches in training mode, as one op.
//!
//! With `u` the dense (3x3) conv output, `v` the 1x1 conv output, each batch-normalised with its
//! batch statistics, and a gate `g [N, C, 1, 1]`:
//!
//! ```text
//! case A (identity branch x):  z = (BN_d(u) + BN_1(v)) + BN_id(x) * g
//! case B:                      z = (BN_d(u) + BN_1(v)) * g
//! y = act(z)
//! ```
//!
//! The unfused ops (three batch norms, two adds, the gate multiply, the activation) write six
//! tensors and read them back; this op reads `u`, `v` (twice: statistics, then the merge) and `x`
//! once, and writes `y`. The identity statistics come from [`batch_norm2d_train_gap`], which the
//! SSE gate computes first. The forward performs the unfused ops' arithmetic in their order, so
//! `y` has their bits.
//!
//! The backward (`backward.rs`) makes two passes per channel: gradient sums, then the input
//! gradients.
//!
//! [`batch_norm2d_train_gap`]: crate::ops::batch_norm::batch_norm2d_train_gap

mod backward;
mod reference;
#[cfg(test)]
mod tests;

pub use reference::rep_merge_train_reference;

use rayon::prelude::*;

use crate::error::{Result, invalid, shape_error};
use crate::kernels::rep_merge::{Affine, PlaneMerge, forward_plane};
use crate::ops::activation::Activation;
use crate::ops::batch_norm::{
    BatchMoments, BatchStats, ChannelMoments, channel_moments, check_shapes, check_training_shapes,
    plane, shifted_moments, synchronise,
};
use crate::replicas::BatchSync;
use crate::tensor::{Buffer, Tensor};

const OP: &str = "rep_merge_train";

/// A batch norm's parameters `(gamma, beta)`, `[C]` each, and its `eps`.
#[derive(Clone, Copy)]
pub struct BnParams<'a> {
    pub gamma: &'a Tensor,
    pub beta: &'a Tensor,
    pub eps: f32,
}

/// The identity branch of case A: its input, its batch norm and that norm's batch moments (from
/// [`crate::ops::batch_norm::batch_norm2d_train_gap`] on the same `x` with the same `eps`).
#[derive(Clone, Copy)]
pub struct IdentityBranch<'a> {
    pub x: &'a Tensor,
    pub bn: BnParams<'a>,
    pub moments: &'a BatchMoments,
}

/// The merge of a block (see the module doc): `dense` and `one` `[N, C, H, W]`, `gate`
/// `[N, C, 1, 1]`, `identity` present for case A. Returns `y` and the batch statistics of the
/// dense and 1x1 normalisations (for their running statistics). Gradients flow to every tensor.
pub fn rep_merge_train(
    dense: &Tensor,
    dense_bn: BnParams<'_>,
    one: &Tensor,
    one_bn: BnParams<'_>,
    gate: &Tensor,
    identity: Option<IdentityBranch<'_>>,
    activation: Activation,
) -> Result<(Tensor, [BatchStats; 2])> {
    rep_merge_train_synced(
        dense, dense_bn, one, one_bn, gate, identity, activation, None,
    )
}

/// [`rep_merge_train`] whose dense and 1x1 normalisations take the statistics of the global batch
/// of every replica of `sync` (synchronised batch norm; the identity branch's moments come
/// synchronised from [`crate::ops::batch_norm::batch_norm2d_train_gap_synced`]); the backward
/// reduces its gradient sums across the replicas for the input gradients.
#[allow(clippy::too_many_arguments)]
pub fn rep_merge_train_synced(
    dense: &Tensor,
    dense_bn: BnParams<'_>,
    one: &Tensor,
    one_bn: BnParams<'_>,
    gate: &Tensor,
    identity: Option<IdentityBranch<'_>>,
    activation: Activation,
    sync: BatchSync,
) -> Result<(Tensor, [BatchStats; 2])> {
    let (n, c, h, w) = check(dense, dense_bn, one, one_bn, gate, identity.as_ref())?;
    let hw = h * w;
    let m = n * hw;
    // Statistics of the two conv outputs, one task per (branch, channel).
    let mut moments: Vec<ChannelMoments> = (0..2 * c)
        .into_par_iter()
        .map(|k| {
            let ((t, eps), ch) = if k < c {
                ((dense, dense_bn.eps), k)
            } else {
                ((one, one_bn.eps), k - c)
            };
            let planes = (0..n).map(|i| plane(t.data(), c, hw, i, ch));
            let (mean, sq_dev_sum) = shifted_moments(planes, m);
            channel_moments(mean, sq_dev_sum, m as f64, eps)
        })
        .collect();
    let (dense_m, one_m) = moments.split_at_mut(c);
    let local_m = m;
    let m = synchronise(dense_m, local_m, dense_bn.eps, sync);
    synchronise(one_m, local_m, one_bn.eps, sync);
    let state = RepMergeBackward {
        dense: dense_m.to_vec(),
        one: one_m.to_vec(),
        identity: identity.map(|id| id.moments.channels.clone()),
        activation,
        count: m as f64,
        sync,
    };
    let params = Params::read(dense_bn, one_bn, identity.map(|id| id.bn), gate);
    let mut y = Buffer::for_overwrite(dense.numel());
    let (u, v) = (dense.data(), one.data());
    let x = identity.map_or(&[][..], |id| id.x.data());
    y.par_chunks_mut(hw).enumerate().for_each(|(k, y_plane)| {
        let merge = state.plane(&params, k / c, k % c, c);
        let x_plane = if x.is_empty() { x } else { &x[k * hw..][..hw] };
        forward_plane(
            &merge,
            activation,
            &u[k * hw..][..hw],
            &v[k * hw..][..hw],
            x_plane,
            y_plane,
        );
    });
    let stats = [
        BatchStats::from_moments(&state.dense, m),
        BatchStats::from_moments(&state.one, m),
    ];
    let mut inputs = vec![
        dense,
        dense_bn.gamma,
        dense_bn.beta,
        one,
        one_bn.gamma,
        one_bn.beta,
        gate,
    ];
    if let Some(id) = identity {
        inputs.extend([id.x, id.bn.gamma, id.bn.beta]);
    }
    let out = Tensor::from_op(y, dense.shape().clone(), &inputs, || state);
    Ok((out, stats))
}

/// Checks the shapes and each normalisation's `eps`; returns `(N, C, H, W)`.
fn check(
    dense: &Tensor,
    dense_bn: BnParams<'_>,
    one: &Tensor,
    one_bn: BnParams<'_>,
    gate: &Tensor,
    identity: Option<&IdentityBranch<'_>>,
) -> Result<(usize, usize, usize, usize)> {
    let (n, c, h, w) =
        check_training_shapes(OP, dense, dense_bn.gamma, dense_bn.beta, dense_bn.eps)?;
    let same_shape = |what: &str, t: &Tensor, bn: BnParams<'_>| {
        if t.dims() != dense.dims() {
            return Err(shape_error(
                OP,
                format!("{what} must have the dense branch's shape"),
                &[dense.dims(), t.dims()],
            ));
        }
        check_shapes(OP, t, bn.gamma, bn.beta, bn.eps).map(|_| ())
    };
    same_shape("the 1x1 branch", one, one_bn)?;
    if gate.dims() != [n, c, 1, 1] {
        return Err(shape_error(
            OP,
            format!("gate must be [N, C, 1, 1] = [{n}, {c}, 1, 1]"),
            &[dense.dims(), gate.dims()],
        ));
    }
    if let Some(id) = identity {
        same_shape("the identity input", id.x, id.bn)?;
        if id.moments.channels() != c {
            return Err(invalid(
                OP,
                format!(
                    "identity moments for {} channels, not {c}",
                    id.moments.channels()
                ),
            ));
        }
    }
    Ok((n, c, h, w))
}

/// The parameter values the kernels read.
struct Params<'a> {
    dense: (&'a [f32], &'a [f32]),
    one: (&'a [f32], &'a [f32]),
    identity: Option<(&'a [f32], &'a [f32])>,
    gate: &'a [f32],
}

impl<'a> Params<'a> {
    fn read(
        dense: BnParams<'a>,
        one: BnParams<'a>,
        identity: Option<BnParams<'a>>,
        gate: &'a Tensor,
    ) -> Self {
        let pair = |bn: BnParams<'a>| (bn.gamma.data(), bn.beta.data());
        Params {
            dense: pair(dense),
            one: pair(one),
            identity: identity.map(pair),
            gate: gate.data(),
        }
    }

    /// `Params` of the op's inputs in [`rep_merge_train`]'s order.
    fn from_inputs(inputs: &'a [Tensor]) -> Self {
        let pair = |i: usize| (inputs[i].data(), inputs[i + 1].data());
        Params {
            dense: pair(1),
            one: pair(4),
            identity: (inputs.len() == 10).then(|| pair(8)),
            gate: inputs[6].data(),
        }
    }
}

fn affine(s: &ChannelMoments, (gamma, beta): (&[f32], &[f32]), ch: usize) -> Affine {
    Affine {
        mean_hi: s.mean_hi,
        mean_lo: s.mean_lo,
        scale: gamma[ch] * s.invstd,
        shift: beta[ch],
    }
}

struct RepMergeBackward {
    dense: Vec<ChannelMoments>,
    one: Vec<ChannelMoments>,
    identity: Option<Vec<ChannelMoments>>,
    activation: Activation,
    /// `M`: the values per channel the moments are over (every replica's, when synced).
    count: f64,
    sync: BatchSync,
}

impl RepMergeBackward {
    /// The constants of plane `(i, ch)`.
    fn plane(&self, p: &Params<'_>, i: usize, ch: usize, c: usize) -> PlaneMerge {
        PlaneMerge {
            dense: affine(&self.dense[ch], p.dense, ch),
            one: affine(&self.one[ch], p.one, ch),
            identity: self
                .identity
                .as_ref()
                .zip(p.identity)
                .map(|(s, bn)| affine(&s[ch], bn, ch)),
            gate: p.gate[i * c + ch],
        }
    }
}
