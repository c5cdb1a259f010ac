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
//! Backward, per channel: one pass computes `dz = dy * act'(z)` (`z` recomputed) into scratch
//! and, per plane, `sum(dz)` and `sum(dz * (t - mean_t))` for `t` in `u, v, x`; from those follow
//! the gate gradient of each plane, `dgamma` and `dbeta` of the three normalisations and their
//! input-gradient coefficients; a second pass writes `du`, `dv` and `dx`.
//!
//! [`batch_norm2d_train_gap`]: crate::ops::batch_norm::batch_norm2d_train_gap

mod kernels;
mod reference;
#[cfg(test)]
mod tests;

pub use reference::rep_merge_train_reference;

use rayon::prelude::*;

use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, invalid, shape_error};
use crate::ops::activation::Activation;
use crate::ops::batch_norm::{
    BatchMoments, BatchStats, ChannelMoments, channel_moments, gradient_sums, plane,
    planes_by_channel, shifted_moments,
};
use crate::tensor::{Buffer, Tensor};
use kernels::{
    Affine, InputGradient, PlaneMerge, forward_plane, input_grad_plane, output_grad_plane,
};

const OP: &str = "rep_merge_train";

/// A batch norm's parameters `(gamma, beta)`, `[C]` each.
#[derive(Clone, Copy)]
pub struct BnParams<'a> {
    pub gamma: &'a Tensor,
    pub beta: &'a Tensor,
}

/// The identity branch of case A: its input, its batch norm and that norm's batch moments (from
/// [`crate::ops::batch_norm::batch_norm2d_train_gap`] on the same `x`).
#[derive(Clone, Copy)]
pub struct IdentityBranch<'a> {
    pub x: &'a Tensor,
    pub bn: BnParams<'a>,
    pub moments: &'a BatchMoments,
}

/// The merge of a block (see the module doc): `dense` and `one` `[N, C, H, W]`, `gate`
/// `[N, C, 1, 1]`, `identity` present for case A. Returns `y` and the batch statistics of the
/// dense and 1x1 normalisations (for their running statistics). Gradients flow to every tensor.
#[allow(clippy::too_many_arguments)]
pub fn rep_merge_train(
    dense: &Tensor,
    dense_bn: BnParams<'_>,
    one: &Tensor,
    one_bn: BnParams<'_>,
    gate: &Tensor,
    identity: Option<IdentityBranch<'_>>,
    activation: Activation,
    eps: f32,
) -> Result<(Tensor, [BatchStats; 2])> {
    let (n, c, h, w) = check(dense, dense_bn, one, one_bn, gate, identity.as_ref(), eps)?;
    let hw = h * w;
    let m = n * hw;
    // Statistics of the two conv outputs, one task per (branch, channel).
    let moments: Vec<ChannelMoments> = (0..2 * c)
        .into_par_iter()
        .map(|k| {
            let (t, ch) = (if k < c { dense } else { one }, k % c);
            let planes = (0..n).map(|i| plane(t.data(), c, hw, i, ch));
            let (mean, sq_dev_sum) = shifted_moments(planes, m);
            channel_moments(mean, sq_dev_sum, m as f64, eps)
        })
        .collect();
    let (dense_m, one_m) = moments.split_at(c);
    let state = RepMergeBackward {
        dense: dense_m.to_vec(),
        one: one_m.to_vec(),
        identity: identity.map(|id| id.moments.channels.clone()),
        activation,
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
        BatchMoments::new(state.dense.clone(), m).stats,
        BatchMoments::new(state.one.clone(), m).stats,
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

/// Checks the shapes; returns `(N, C, H, W)`.
fn check(
    dense: &Tensor,
    dense_bn: BnParams<'_>,
    one: &Tensor,
    one_bn: BnParams<'_>,
    gate: &Tensor,
    identity: Option<&IdentityBranch<'_>>,
    eps: f32,
) -> Result<(usize, usize, usize, usize)> {
    let Some((n, c, h, w)) = dense.shape().nchw() else {
        return Err(shape_error(
            OP,
            "dense must be [N, C, H, W]",
            &[dense.dims()],
        ));
    };
    if one.dims() != dense.dims() {
        return Err(shape_error(
            OP,
            "the 1x1 branch must have the dense branch's shape",
            &[dense.dims(), one.dims()],
        ));
    }
    if gate.dims() != [n, c, 1, 1] {
        return Err(shape_error(
            OP,
            format!("gate must be [N, C, 1, 1] = [{n}, {c}, 1, 1]"),
            &[dense.dims(), gate.dims()],
        ));
    }
    let mut bns = vec![dense_bn, one_bn];
    if let Some(id) = identity {
        if id.x.dims() != dense.dims() {
            return Err(shape_error(
                OP,
                "the identity input must have the dense branch's shape",
                &[dense.dims(), id.x.dims()],
            ));
        }
        if id.moments.channels() != c {
            return Err(invalid(
                OP,
                format!(
                    "identity moments for {} channels, not {c}",
                    id.moments.channels()
                ),
            ));
        }
        bns.push(id.bn);
    }
    for bn in bns {
        if bn.gamma.dims() != [c] || bn.beta.dims() != [c] {
            return Err(shape_error(
                OP,
                format!("gamma and beta must be [C] = [{c}]"),
                &[dense.dims(), bn.gamma.dims(), bn.beta.dims()],
            ));
        }
    }
    if !eps.is_finite() || eps < 0.0 {
        return Err(invalid(
            OP,
            format!("eps must be finite and >= 0, got {eps}"),
        ));
    }
    if n * h * w < 2 {
        return Err(invalid(
            OP,
            format!(
                "expected more than 1 value per channel when training, got input {:?}",
                dense.dims()
            ),
        ));
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

/// The planes of `buffer` (if any) grouped by channel, or `None` for every channel.
fn channel_planes(
    buffer: &mut Option<Buffer>,
    c: usize,
    hw: usize,
) -> Vec<Option<Vec<&mut [f32]>>> {
    match buffer.as_deref_mut() {
        Some(buf) => planes_by_channel(buf, c, hw)
            .into_iter()
            .map(Some)
            .collect(),
        None => (0..c).map(|_| None).collect(),
    }
}

/// Per-plane sums of one channel: `(sum(dz), sum(dz * (t - mean_t)))` for `t = u, v, x`.
#[derive(Clone, Copy, Default)]
struct PlaneSums {
    dz: f64,
    dz_u: f64,
    dz_v: f64,
    dz_x: f64,
}

/// What one channel's backward produces besides the input gradients.
struct ChannelGrads {
    /// `dgate[i]` for every image `i`.
    gate: Vec<f32>,
    /// `(dgamma, dbeta)` of the dense, 1x1 and identity normalisations.
    bn: [(f32, f32); 3],
}

impl BackwardOp for RepMergeBackward {
    fn name(&self) -> &'static str {
        OP
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let inputs = ctx.inputs;
        let (n, c, h, w) = inputs[0].shape().nchw().expect("rep_merge_train: NCHW");
        let hw = h * w;
        let m = (n * hw) as f64;
        let params = Params::from_inputs(inputs);
        let (u, v) = (inputs[0].data(), inputs[3].data());
        let has_identity = inputs.len() == 10;
        let x = if has_identity {
            inputs[7].data()
        } else {
            &[][..]
        };
        let dy = ctx.grad_output;
        let alloc = |i: usize| {
            ctx.needs_grad(i)
                .then(|| Buffer::for_overwrite(inputs[i].numel()))
        };
        let (mut du, mut dv) = (alloc(0), alloc(3));
        let mut dx = if has_identity { alloc(7) } else { None };
        let (du_c, dv_c, dx_c) = (
            channel_planes(&mut du, c, hw),
            channel_planes(&mut dv, c, hw),
            channel_planes(&mut dx, c, hw),
        );
        let per_channel: Vec<ChannelGrads> = du_c
            .into_par_iter()
            .zip(dv_c)
            .zip(dx_c)
            .enumerate()
            .map_init(
                || Buffer::for_overwrite(n * hw),
                |dz, (ch, ((du_p, dv_p), dx_p))| {
                    self.channel_backward(
                        &params,
                        (u, v, x, dy),
                        (n, c, hw, m),
                        ch,
                        dz,
                        [du_p, dv_p, dx_p],
                    )
                },
            )
            .collect();
        let mut grads: Vec<Option<Buffer>> = (0..inputs.len()).map(|_| None).collect();
        grads[0] = du;
        grads[3] = dv;
        if has_identity {
            grads[7] = dx;
        }
        for (b, (gamma_at, beta_at)) in [(0, (1, 2)), (1, (4, 5)), (2, (8, 9))] {
            if b == 2 && !has_identity {
                continue;
            }
            if ctx.needs_grad(gamma_at) {
                grads[gamma_at] = Some(Buffer::from_fn(c, |ch| per_channel[ch].bn[b].0));
            }
            if ctx.needs_grad(beta_at) {
                grads[beta_at] = Some(Buffer::from_fn(c, |ch| per_channel[ch].bn[b].1));
            }
        }
        if ctx.needs_grad(6) {
            grads[6] = Some(Buffer::from_fn(n * c, |k| per_channel[k % c].gate[k / c]));
        }
        grads
    }
}

impl RepMergeBackward {
    /// The backward of channel `ch`: `dz` into `scratch` with the per-plane sums, then the
    /// gate, normalisation-parameter and input gradients.
    #[allow(clippy::type_complexity)]
    fn channel_backward(
        &self,
        params: &Params<'_>,
        (u, v, x, dy): (&[f32], &[f32], &[f32], &[f32]),
        (n, c, hw, m): (usize, usize, usize, f64),
        ch: usize,
        scratch: &mut [f32],
        [du, dv, dx]: [Option<Vec<&mut [f32]>>; 3],
    ) -> ChannelGrads {
        let (sd, so) = (&self.dense[ch], &self.one[ch]);
        let sx = self.identity.as_ref().map(|s| &s[ch]);
        let mut sums = vec![PlaneSums::default(); n];
        let mut merges = Vec::with_capacity(n);
        for (i, sums) in sums.iter_mut().enumerate() {
            let merge = self.plane(params, i, ch, c);
            let at = (i * c + ch) * hw;
            let x_plane = if x.is_empty() { x } else { &x[at..][..hw] };
            let dz = &mut scratch[i * hw..][..hw];
            output_grad_plane(
                &merge,
                self.activation,
                &u[at..][..hw],
                &v[at..][..hw],
                x_plane,
                &dy[at..][..hw],
                dz,
            );
            let (s, s_u) = gradient_sums(dz, &u[at..][..hw], sd.mean_hi, sd.mean_lo);
            let (_, s_v) = gradient_sums(dz, &v[at..][..hw], so.mean_hi, so.mean_lo);
            let s_x = sx.map_or(0.0, |sx| {
                gradient_sums(dz, x_plane, sx.mean_hi, sx.mean_lo).1
            });
            *sums = PlaneSums {
                dz: s,
                dz_u: s_u,
                dz_v: s_v,
                dz_x: s_x,
            };
            merges.push(merge);
        }
        // Gradients into each branch's normalised output: dz (case A convs), gate * dz (case B
        // convs and case A identity).
        let case_a = sx.is_some();
        let conv_scale = |i: usize| if case_a { 1.0 } else { merges[i].gate as f64 };
        let mut gate = Vec::with_capacity(n);
        let (mut g_u, mut g_uu, mut g_v, mut g_vv, mut g_x, mut g_xx) =
            (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0);
        for (i, s) in sums.iter().enumerate() {
            let mg = &merges[i];
            let k = conv_scale(i);
            g_u += k * s.dz;
            g_uu += k * s.dz_u;
            g_v += k * s.dz;
            g_vv += k * s.dz_v;
            let dgate = match mg.identity {
                // sum(dz * BN_id(x)) = scale * sum(dz * (x - mean)) + shift * sum(dz).
                Some(id) => {
                    g_x += mg.gate as f64 * s.dz;
                    g_xx += mg.gate as f64 * s.dz_x;
                    id.scale as f64 * s.dz_x + id.shift as f64 * s.dz
                }
                // sum(dz * (BN_d(u) + BN_1(v))).
                None => {
                    mg.dense.scale as f64 * s.dz_u
                        + mg.one.scale as f64 * s.dz_v
                        + (mg.dense.shift as f64 + mg.one.shift as f64) * s.dz
                }
            };
            gate.push(dgate as f32);
        }
        let coefficients = |s: &ChannelMoments, gamma: f32, sum: f64, sum_centred: f64| {
            let invstd = s.invstd as f64;
            let a = (gamma as f64 * invstd) as f32;
            let b = (sum / m) as f32;
            let k = (invstd * invstd * sum_centred / m) as f32;
            (a, b, k)
        };
        let write = |planes: Option<Vec<&mut [f32]>>,
                     s: &ChannelMoments,
                     (a, b, k): (f32, f32, f32),
                     src: &[f32],
                     scale_of: &dyn Fn(usize) -> f32| {
            let Some(planes) = planes else { return };
            for (i, dst) in planes.into_iter().enumerate() {
                let at = (i * c + ch) * hw;
                let coef = InputGradient {
                    mean_hi: s.mean_hi,
                    mean_lo: s.mean_lo,
                    a,
                    s: scale_of(i),
                    b,
                    k,
                };
                input_grad_plane(coef, &scratch[i * hw..][..hw], &src[at..][..hw], dst);
            }
        };
        let conv_scale_f32 = |i: usize| conv_scale(i) as f32;
        let (gd, go) = (params.dense.0[ch], params.one.0[ch]);
        write(du, sd, coefficients(sd, gd, g_u, g_uu), u, &conv_scale_f32);
        write(dv, so, coefficients(so, go, g_v, g_vv), v, &conv_scale_f32);
        let mut identity_bn = (0.0, 0.0);
        if let (Some(sx), Some((gamma_x, _))) = (sx, params.identity) {
            let gate_of = |i: usize| merges[i].gate;
            write(
                dx,
                sx,
                coefficients(sx, gamma_x[ch], g_x, g_xx),
                x,
                &gate_of,
            );
            identity_bn = ((g_xx * sx.invstd as f64) as f32, g_x as f32);
        }
        ChannelGrads {
            gate,
            bn: [
                ((g_uu * sd.invstd as f64) as f32, g_u as f32),
                ((g_vv * so.invstd as f64) as f32, g_v as f32),
                identity_bn,
            ],
        }
    }
}
