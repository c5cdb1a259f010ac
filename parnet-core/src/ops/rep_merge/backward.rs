//! The backward of [`rep_merge_train`](super::rep_merge_train), per channel: one pass computes
//! `dz = dy * act'(z)` (`z` recomputed) into scratch with the per-plane sums, from which follow
//! the gate gradients, `dgamma` and `dbeta` of the three normalisations and their input-gradient
//! coefficients; a second pass writes `du`, `dv` and `dx`.

use rayon::prelude::*;

use super::{OP, Params, RepMergeBackward};
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::kernels::batch_norm::gradient_sums;
use crate::kernels::rep_merge::{InputGradient, PlaneMerge, input_grad_plane, output_grad_plane};
use crate::ops::batch_norm::{ChannelMoments, planes_by_channel};
use crate::replicas::sum_f64;
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

/// What the first pass over one channel gives: the planes' constants, `dgate[i]` for every
/// image `i`, and the six sums `(g_u, g_uu, g_v, g_vv, g_x, g_xx)` of the normalisations'
/// backward.
struct ChannelSums {
    merges: Vec<PlaneMerge>,
    gate: Vec<f32>,
    totals: [f64; 6],
}

impl BackwardOp for RepMergeBackward {
    fn name(&self) -> &'static str {
        OP
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let inputs = ctx.inputs;
        let (n, c, h, w) = inputs[0].shape().nchw().expect("rep_merge_train: NCHW");
        let hw = h * w;
        let params = Params::from_inputs(inputs);
        let (u, v) = (inputs[0].data(), inputs[3].data());
        let has_identity = inputs.len() == 10;
        let x = if has_identity {
            inputs[7].data()
        } else {
            &[][..]
        };
        let data = (u, v, x, ctx.grad_output);
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
        let planes = du_c.into_par_iter().zip(dv_c).zip(dx_c).enumerate();
        // Per channel: the gate gradients and this replica's sums (for dgamma and dbeta).
        let per_channel: Vec<(Vec<f32>, [f64; 6])> = match self.sync {
            None => planes
                .map_init(
                    || Buffer::for_overwrite(n * hw),
                    |dz, (ch, ((du_p, dv_p), dx_p))| {
                        let sums = self.channel_sums(&params, data, (n, c, hw), ch, dz);
                        self.channel_write(
                            &params,
                            data,
                            c,
                            ch,
                            dz,
                            &sums,
                            sums.totals,
                            [du_p, dv_p, dx_p],
                        );
                        (sums.gate, sums.totals)
                    },
                )
                .collect(),
            Some(replicas) => {
                // Every channel's sums first, their sum over the replicas, then the writes.
                let first: Vec<(Buffer, ChannelSums)> = (0..c)
                    .into_par_iter()
                    .map(|ch| {
                        let mut dz = Buffer::for_overwrite(n * hw);
                        let sums = self.channel_sums(&params, data, (n, c, hw), ch, &mut dz);
                        (dz, sums)
                    })
                    .collect();
                let mut global: Vec<f64> = first.iter().flat_map(|(_, s)| s.totals).collect();
                sum_f64(replicas, &mut global);
                planes
                    .map(|(ch, ((du_p, dv_p), dx_p))| {
                        let (dz, sums) = &first[ch];
                        let totals: [f64; 6] = global[6 * ch..][..6].try_into().expect("6 sums");
                        self.channel_write(
                            &params,
                            data,
                            c,
                            ch,
                            dz,
                            sums,
                            totals,
                            [du_p, dv_p, dx_p],
                        );
                        (sums.gate.clone(), sums.totals)
                    })
                    .collect()
            }
        };
        let mut grads: Vec<Option<Buffer>> = (0..inputs.len()).map(|_| None).collect();
        grads[0] = du;
        grads[3] = dv;
        if has_identity {
            grads[7] = dx;
        }
        let bn: Vec<[(f32, f32); 3]> = (0..c)
            .map(|ch| self.bn_grads(ch, per_channel[ch].1))
            .collect();
        for (b, (gamma_at, beta_at)) in [(0, (1, 2)), (1, (4, 5)), (2, (8, 9))] {
            if b == 2 && !has_identity {
                continue;
            }
            if ctx.needs_grad(gamma_at) {
                grads[gamma_at] = Some(Buffer::from_fn(c, |ch| bn[ch][b].0));
            }
            if ctx.needs_grad(beta_at) {
                grads[beta_at] = Some(Buffer::from_fn(c, |ch| bn[ch][b].1));
            }
        }
        if ctx.needs_grad(6) {
            grads[6] = Some(Buffer::from_fn(n * c, |k| per_channel[k % c].0[k / c]));
        }
        grads
    }
}

impl RepMergeBackward {
    /// The first pass over channel `ch`: `dz` into `scratch` with the per-plane sums, from which
    /// the gate gradients and the normalisations' sums.
    fn channel_sums(
        &self,
        params: &Params<'_>,
        (u, v, x, dy): (&[f32], &[f32], &[f32], &[f32]),
        (n, c, hw): (usize, usize, usize),
        ch: usize,
        scratch: &mut [f32],
    ) -> ChannelSums {
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
        let mut gate = Vec::with_capacity(n);
        let (mut g_u, mut g_uu, mut g_v, mut g_vv, mut g_x, mut g_xx) =
            (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0);
        for (s, mg) in sums.iter().zip(&merges) {
            let k = if case_a { 1.0 } else { mg.gate as f64 };
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
        ChannelSums {
            merges,
            gate,
            totals: [g_u, g_uu, g_v, g_vv, g_x, g_xx],
        }
    }

    /// The second pass over channel `ch`: `du`, `dv` and `dx` from `dz` (in `scratch`) and the
    /// sums `totals` over the values the statistics are of (this replica's, or every replica's).
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn channel_write(
        &self,
        params: &Params<'_>,
        (u, v, x, _): (&[f32], &[f32], &[f32], &[f32]),
        c: usize,
        ch: usize,
        scratch: &[f32],
        sums: &ChannelSums,
        [g_u, g_uu, g_v, g_vv, g_x, g_xx]: [f64; 6],
        [du, dv, dx]: [Option<Vec<&mut [f32]>>; 3],
    ) {
        let m = self.count;
        let hw = scratch.len() / sums.merges.len().max(1);
        let (sd, so) = (&self.dense[ch], &self.one[ch]);
        let sx = self.identity.as_ref().map(|s| &s[ch]);
        let merges = &sums.merges;
        let case_a = sx.is_some();
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
        let conv_scale = |i: usize| if case_a { 1.0 } else { merges[i].gate };
        let (gd, go) = (params.dense.0[ch], params.one.0[ch]);
        write(du, sd, coefficients(sd, gd, g_u, g_uu), u, &conv_scale);
        write(dv, so, coefficients(so, go, g_v, g_vv), v, &conv_scale);
        if let (Some(sx), Some((gamma_x, _))) = (sx, params.identity) {
            let gate_of = |i: usize| merges[i].gate;
            write(
                dx,
                sx,
                coefficients(sx, gamma_x[ch], g_x, g_xx),
                x,
                &gate_of,
            );
        }
    }

    /// `(dgamma, dbeta)` of the dense, 1x1 and identity normalisations of channel `ch` from this
    /// replica's sums.
    fn bn_grads(&self, ch: usize, [g_u, g_uu, g_v, g_vv, g_x, g_xx]: [f64; 6]) -> [(f32, f32); 3] {
        let identity = self.identity.as_ref().map_or((0.0, 0.0), |sx| {
            ((g_xx * sx[ch].invstd as f64) as f32, g_x as f32)
        });
        [
            ((g_uu * self.dense[ch].invstd as f64) as f32, g_u as f32),
            ((g_vv * self.one[ch].invstd as f64) as f32, g_v as f32),
            identity,
        ]
    }
}
