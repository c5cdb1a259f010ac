//! `mul_channel(x, s)`: `x [N, C, H, W]` times `s [N, C, 1, 1]` broadcast over `H, W` (the SE
//! gate). Gradients: `dx = dy * s` (broadcast), `ds[n, c] = sum_hw dy * x` (f64 accumulation in
//! a fixed order).

use rayon::prelude::*;

use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, shape_error};
use crate::kernels::parallel::planes_per_task;
use crate::tensor::{Buffer, Tensor};

/// `out[n, c, h, w] = x[n, c, h, w] * s[n, c, 0, 0]`. Errors unless `x` is rank 4 and `s` is
/// `[N, C, 1, 1]` with the same `N, C`.
pub fn mul_channel(x: &Tensor, s: &Tensor) -> Result<Tensor> {
    let fits = match (x.shape().nchw(), s.shape().nchw()) {
        (Some((n, c, _, _)), Some(sd)) => sd == (n, c, 1, 1),
        _ => false,
    };
    if !fits {
        return Err(shape_error(
            "mul_channel",
            "expected x [N, C, H, W] and s [N, C, 1, 1]",
            &[x.dims(), s.dims()],
        ));
    }
    let plane = x.dims()[2] * x.dims()[3];
    let mut out = Buffer::for_overwrite(x.numel());
    par_mul_channel(x.data(), s.data(), plane, &mut out);
    Ok(Tensor::from_op(out, x.shape().clone(), &[x, s], || {
        MulChannelBackward
    }))
}

/// `out[p * plane_len + i] = x[p * plane_len + i] * s[p]` (single-threaded slice kernel;
/// `x.len() == out.len() == s.len() * plane_len`).
pub fn mul_channel_forward(x: &[f32], s: &[f32], plane_len: usize, out: &mut [f32]) {
    assert!(
        x.len() == out.len() && x.len() == s.len() * plane_len,
        "mul_channel_forward: length mismatch"
    );
    if plane_len == 0 {
        return;
    }
    for ((o, x), &s) in out
        .chunks_exact_mut(plane_len)
        .zip(x.chunks_exact(plane_len))
        .zip(s)
    {
        o.iter_mut().zip(x).for_each(|(o, &x)| *o = x * s);
    }
}

/// `grad_s[p] = sum_i grad_out[p, i] * x[p, i]` over each plane (single-threaded slice kernel).
pub fn mul_channel_backward_scale(
    x: &[f32],
    grad_out: &[f32],
    plane_len: usize,
    grad_s: &mut [f32],
) {
    assert!(
        x.len() == grad_out.len() && x.len() == grad_s.len() * plane_len,
        "mul_channel_backward_scale: length mismatch"
    );
    if plane_len == 0 {
        grad_s.fill(0.0);
        return;
    }
    for ((gs, x), g) in grad_s
        .iter_mut()
        .zip(x.chunks_exact(plane_len))
        .zip(grad_out.chunks_exact(plane_len))
    {
        *gs = dot_f64(x, g) as f32;
    }
}

/// Dot product in f64 (f32 products are exact in f64) over 8 interleaved partial sums combined
/// in a fixed order: vectorises and is deterministic.
pub fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "dot_f64: length mismatch");
    let mut acc = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = (ca.remainder().iter().zip(cb.remainder()))
        .map(|(&x, &y)| x as f64 * y as f64)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] as f64 * y[k] as f64;
        }
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// [`mul_channel_forward`] on rayon over groups of planes.
fn par_mul_channel(x: &[f32], s: &[f32], plane: usize, out: &mut [f32]) {
    let ppt = planes_per_task(plane);
    out.par_chunks_mut(ppt * plane.max(1))
        .zip(x.par_chunks(ppt * plane.max(1)))
        .zip(s.par_chunks(ppt))
        .for_each(|((o, x), s)| mul_channel_forward(x, s, plane, o));
}

struct MulChannelBackward;

impl BackwardOp for MulChannelBackward {
    fn name(&self) -> &'static str {
        "mul_channel"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let (x, s) = (&ctx.inputs[0], &ctx.inputs[1]);
        let plane = x.dims()[2] * x.dims()[3];
        let grad_x = ctx.needs_grad(0).then(|| {
            let mut gx = Buffer::for_overwrite(x.numel());
            par_mul_channel(ctx.grad_output, s.data(), plane, &mut gx);
            gx
        });
        let grad_s = ctx.needs_grad(1).then(|| {
            if plane == 0 {
                return Buffer::zeros(s.numel());
            }
            let mut gs = Buffer::for_overwrite(s.numel());
            let ppt = planes_per_task(plane);
            gs.par_chunks_mut(ppt)
                .zip(x.data().par_chunks(ppt * plane))
                .zip(ctx.grad_output.par_chunks(ppt * plane))
                .for_each(|((gs, x), g)| mul_channel_backward_scale(x, g, plane, gs));
            gs
        });
        vec![grad_x, grad_s]
    }
}

/// Plain reference: `x [N, C, H, W] * s [N, C]` broadcast, `dims` the dims of `x`.
pub fn mul_channel_reference<T: num_traits::Float>(x: &[T], s: &[T], dims: &[usize]) -> Vec<T> {
    let [n, c, h, w] = dims[..] else {
        panic!("mul_channel_reference: dims must be [N, C, H, W]")
    };
    (0..n * c * h * w).map(|i| x[i] * s[i / (h * w)]).collect()
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

    fn gate_inputs(dims: &[usize], seed: u64) -> (Vec<f64>, Vec<f64>, Vec<usize>) {
        let s_dims = vec![dims[0], dims[1], 1, 1];
        let x = random_values(dims.iter().product(), 2.0, seed);
        let s = random_values(dims[0] * dims[1], 2.0, seed + 1);
        (x, s, s_dims)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn forward_matches_reference(dims in prop::collection::vec(1usize..14, 4), seed in any::<u64>()) {
            let (x, s, s_dims) = gate_inputs(&dims, seed);
            let tx = Tensor::from_vec(to_f32(&x), dims.clone()).unwrap();
            let ts = Tensor::from_vec(to_f32(&s), s_dims).unwrap();
            // One f32 multiplication: correctly rounded.
            assert_close("mul_channel", mul_channel(&tx, &ts).unwrap().data(),
                &mul_channel_reference(&x, &s, &dims), 6e-8, 0.0);
        }

        #[test]
        fn backward_matches_finite_differences(dims in prop::collection::vec(1usize..5, 4), seed in any::<u64>()) {
            let (x, s, s_dims) = gate_inputs(&dims, seed);
            check_gradients("mul_channel", &[GradInput::new(x, &dims), GradInput::new(s, &s_dims)],
                |t| mul_channel(&t[0], &t[1]).unwrap(),
                |v| mul_channel_reference(&v[0], &v[1], &dims), GRAD_TOL, seed);
        }
    }

    #[test]
    fn gate_gradient_over_large_planes() {
        // 2 planes of 100x100: ds is a 10000-term dot product, checked against f64.
        let dims = [1, 2, 100, 100];
        let x = random_values(20_000, 1.0, 3);
        let g = random_values(20_000, 1.0, 4);
        let tx = Tensor::from_vec(to_f32(&x), dims).unwrap();
        let ts = Tensor::from_vec(vec![0.5, -2.0], [1, 2, 1, 1])
            .unwrap()
            .into_leaf();
        let y = mul_channel(&tx, &ts).unwrap();
        y.backward_with(Buffer::from_vec(to_f32(&g))).unwrap();
        let expected: Vec<f64> = (0..2)
            .map(|p| {
                (0..10_000)
                    .map(|i| x[p * 10_000 + i] * g[p * 10_000 + i])
                    .sum()
            })
            .collect();
        assert_close("ds", &ts.grad().unwrap(), &expected, 1e-6, 1e-9);
    }

    #[test]
    fn rejects_bad_shapes() {
        let x = Tensor::zeros([2, 3, 4, 4]);
        for s_dims in [
            vec![2, 3],
            vec![2, 3, 1, 2],
            vec![3, 2, 1, 1],
            vec![1, 3, 1, 1],
        ] {
            let err = mul_channel(&x, &Tensor::zeros(s_dims.clone()))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("mul_channel") && err.contains(&format!("{s_dims:?}")),
                "{err}"
            );
        }
    }

    #[test]
    fn empty_planes_give_zero_gate_gradient() {
        let x = Tensor::zeros([1, 2, 0, 3]);
        let s = Tensor::from_vec(vec![1.0, 2.0], [1, 2, 1, 1])
            .unwrap()
            .into_leaf();
        let y = mul_channel(&x, &s).unwrap();
        assert_eq!(y.dims(), &[1, 2, 0, 3]);
        y.backward_with(Buffer::from_vec(vec![])).unwrap();
        assert_eq!(&s.grad().unwrap()[..], &[0.0, 0.0]);
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        // 4 x 8 planes of 48x48 (several planes per task, several tasks).
        let dims = [4, 8, 48, 48];
        let len: usize = dims.iter().product();
        let x = to_f32(&random_values(len, 1.0, 8));
        let s = to_f32(&random_values(32, 1.0, 9));
        let g = to_f32(&random_values(len, 1.0, 10));
        let run = |threads: usize| {
            on_threads(threads, || {
                let tx = Tensor::from_vec(x.clone(), dims).unwrap().into_leaf();
                let ts = Tensor::from_vec(s.clone(), [4, 8, 1, 1])
                    .unwrap()
                    .into_leaf();
                let y = mul_channel(&tx, &ts).unwrap();
                y.backward_with(Buffer::from_slice(&g)).unwrap();
                (
                    y.to_vec(),
                    tx.grad().unwrap().to_vec(),
                    ts.grad().unwrap().to_vec(),
                )
            })
        };
        assert_eq!(run(1), run(3));
    }
}
