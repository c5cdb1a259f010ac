//! `channel_shuffle(x, g)`: `out[:, j*g + i] = in[:, i*(C/g) + j]` for `i < g`, `j < C/g`
//! (PARNET-SPEC 2.5 step 4 with g = 2: the outputs of the two groups are interleaved).

use super::{gather_planes, plane};
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, invalid, shape_error};
use crate::tensor::{Buffer, Tensor};

/// Channel shuffle of `[N, C, H, W]` with `groups` groups. Errors unless rank 4, `groups >= 1` and
/// `groups` divides C.
pub fn channel_shuffle(x: &Tensor, groups: usize) -> Result<Tensor> {
    let Some((_, c, h, w)) = x.shape().nchw() else {
        return Err(shape_error(
            "channel_shuffle",
            "expected a rank-4 [N, C, H, W] tensor",
            &[x.dims()],
        ));
    };
    if groups == 0 {
        return Err(invalid("channel_shuffle", "groups must be at least 1"));
    }
    if !c.is_multiple_of(groups) {
        return Err(shape_error(
            "channel_shuffle",
            format!("groups = {groups} does not divide C = {c}"),
            &[x.dims()],
        ));
    }
    let mut out = Buffer::for_overwrite(x.numel());
    channel_shuffle_forward(x.data(), c, h * w, groups, &mut out);
    Ok(Tensor::from_op(out, x.shape().clone(), &[x], || {
        ChannelShuffleBackward { groups }
    }))
}

/// The input channel that output channel `out_channel` copies: with `out_channel = j*g + i`
/// (`i < g`), it is `i * (C/g) + j`.
pub fn channel_shuffle_source(out_channel: usize, channels: usize, groups: usize) -> usize {
    let (i, j) = (out_channel % groups, out_channel / groups);
    i * (channels / groups) + j
}

/// Shuffles `x` (samples of `channels` planes of `plane_len` floats) into `out` (parallel over
/// planes). `groups` must divide `channels`.
pub fn channel_shuffle_forward(
    x: &[f32],
    channels: usize,
    plane_len: usize,
    groups: usize,
    out: &mut [f32],
) {
    assert!(
        groups > 0 && channels.is_multiple_of(groups) && x.len() == out.len(),
        "channel_shuffle_forward: bad arguments"
    );
    gather_planes(out, plane_len, |p| {
        let (n, co) = (p / channels, p % channels);
        plane(
            x,
            n * channels + channel_shuffle_source(co, channels, groups),
            plane_len,
        )
    });
}

struct ChannelShuffleBackward {
    groups: usize,
}

impl BackwardOp for ChannelShuffleBackward {
    fn name(&self) -> &'static str {
        "channel_shuffle"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let (_, c, h, w) = ctx.inputs[0].shape().nchw().expect("checked in forward");
        let (g, m) = (self.groups, c / self.groups);
        let mut grad_in = Buffer::for_overwrite(ctx.inputs[0].numel());
        // Input channel i*m + j went to output channel j*g + i.
        gather_planes(&mut grad_in, h * w, |p| {
            let (n, ci) = (p / c, p % c);
            let (i, j) = (ci / m, ci % m);
            plane(ctx.grad_output, n * c + j * g + i, h * w)
        });
        vec![Some(grad_in)]
    }
}

/// Plain reference straight from the definition; `dims = [N, C, H, W]`.
pub fn channel_shuffle_reference<T: num_traits::Float>(
    x: &[T],
    dims: &[usize],
    groups: usize,
) -> Vec<T> {
    let [n, c, h, w] = dims[..] else {
        panic!("channel_shuffle_reference: dims must be [N, C, H, W]")
    };
    let (hw, m) = (h * w, c / groups);
    let mut out = vec![T::zero(); x.len()];
    for ni in 0..n {
        for i in 0..groups {
            for j in 0..m {
                for p in 0..hw {
                    out[(ni * c + j * groups + i) * hw + p] = x[(ni * c + i * m + j) * hw + p];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use proptest::prelude::*;

    /// The analytic gradients carry only f32 rounding (relative ~1e-7) and the f64 central
    /// differences of these smooth (or piecewise linear) functions are accurate to ~1e-9, so the
    /// check is 100x tighter than the default (which would let a 0.1% error through).
    const GRAD_TOL: GradTolerance = GradTolerance {
        rtol: 1e-5,
        atol: 1e-6,
        eps: 1e-6,
    };

    /// `[N, C, H, W]` and a divisor `groups` of C.
    fn shuffle_case(max_dim: usize) -> impl Strategy<Value = (Vec<usize>, usize)> {
        (1usize..4, 1usize..5, 1usize..5, 1..max_dim, 1..max_dim)
            .prop_map(|(n, g, m, h, w)| (vec![n, g * m, h, w], g))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn forward_matches_reference((dims, g) in shuffle_case(12), seed in any::<u64>()) {
            let x = random_values(dims.iter().product(), 2.0, seed);
            let t = Tensor::from_vec(to_f32(&x), dims.clone()).unwrap();
            // A permutation: exact.
            assert_close("channel_shuffle", channel_shuffle(&t, g).unwrap().data(),
                &channel_shuffle_reference(&x, &dims, g), 0.0, 0.0);
            // Shuffling with C/g groups undoes it.
            let back = channel_shuffle(&channel_shuffle(&t, g).unwrap(), dims[1] / g).unwrap();
            prop_assert_eq!(back.data(), t.data());
        }

        #[test]
        fn backward_matches_finite_differences((dims, g) in shuffle_case(3), seed in any::<u64>()) {
            let x = random_values(dims.iter().product(), 2.0, seed);
            check_gradients("channel_shuffle", &[GradInput::new(x, &dims)],
                |t| channel_shuffle(&t[0], g).unwrap(),
                |v| channel_shuffle_reference(&v[0], &dims, g), GRAD_TOL, seed);
        }
    }

    #[test]
    fn hand_written_shuffle2() {
        // PARNET-SPEC 12: shuffle2(y)[2j + i] = y[i*C/2 + j]. C = 6: out = y0 y3 y1 y4 y2 y5.
        let y = Tensor::from_vec(vec![0., 1., 2., 3., 4., 5.], [1, 6, 1, 1]).unwrap();
        assert_eq!(
            channel_shuffle(&y, 2).unwrap().data(),
            &[0., 3., 1., 4., 2., 5.]
        );
        // g = 3, C = 6: out[3j + i] = in[2i + j] -> in 0 2 4 1 3 5.
        assert_eq!(
            channel_shuffle(&y, 3).unwrap().data(),
            &[0., 2., 4., 1., 3., 5.]
        );
        // g = 1 and g = C are the identity.
        assert_eq!(channel_shuffle(&y, 1).unwrap().data(), y.data());
        assert_eq!(channel_shuffle(&y, 6).unwrap().data(), y.data());
    }

    #[test]
    fn hand_written_shuffle2_with_planes_and_gradient() {
        // N = 2, C = 4, 1x2 planes; per sample: out channels = in 0 2 1 3.
        let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let t = Tensor::from_vec(x, [2, 4, 1, 2]).unwrap().into_leaf();
        let y = channel_shuffle(&t, 2).unwrap();
        #[rustfmt::skip]
        let expected = [0., 1., 4., 5., 2., 3., 6., 7., 8., 9., 12., 13., 10., 11., 14., 15.];
        assert_eq!(y.data(), &expected);
        // The gradient goes back through the inverse permutation.
        y.backward_with(Buffer::from_vec((100..116).map(|v| v as f32).collect()))
            .unwrap();
        #[rustfmt::skip]
        let grad = [100., 101., 104., 105., 102., 103., 106., 107.,
                    108., 109., 112., 113., 110., 111., 114., 115.];
        assert_eq!(&t.grad().unwrap()[..], &grad);
    }

    #[test]
    fn rejects_bad_arguments() {
        let x = Tensor::zeros([1, 6, 2, 2]);
        let err = channel_shuffle(&x, 4).unwrap_err().to_string();
        assert!(
            err.contains("channel_shuffle") && err.contains("[1, 6, 2, 2]"),
            "{err}"
        );
        assert!(channel_shuffle(&x, 0).is_err());
        assert!(channel_shuffle(&Tensor::zeros([6, 2, 2]), 2).is_err());
    }
}
