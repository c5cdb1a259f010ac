//! The backward of [`rep_merge_train`](super::rep_merge_train), per channel: one pass computes
//! `dz = dy * act'(z)` (`z` recomputed) into scratch with the per-plane sums, from which follow
//! the gate gradients, `dgamma` and `dbeta` of the three normalisations and their input-gradient
//! coefficients; a second pass writes `du`, `dv` and `dx`.

use rayon::prelude::*;

use super::{OP, Params, RepMergeBackward};
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::kernels::batch_norm::gradient_sums;
use crate::kernels::rep_merge::{InputGradient, input_grad_plane, output_grad_plane};
use crate::ops::batch_norm::{ChannelMoments, planes_by_channel};
use crate::tensor::Buffer;

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
