//! `global_avg_pool(x)`: the mean of every `(n, c)` plane, `[N, C, H, W] -> [N, C, 1, 1]`.
//! Plane sums are accumulated in f64 (exact for f32 inputs up to 2^29 elements of equal sign).

use rayon::prelude::*;

use super::nchw;
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, shape_error};
use crate::kernels::parallel::planes_per_task;
use crate::tensor::{Buffer, Tensor};

/// Global average pool, `[N, C, H, W] -> [N, C, 1, 1]`. Errors unless rank 4 with `H, W >= 1`.
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = nchw("global_avg_pool", x)?;
    if h == 0 || w == 0 {
        return Err(shape_error(
            "global_avg_pool",
            "H and W must be at least 1",
            &[x.dims()],
        ));
    }
    let plane = h * w;
    let mut out = Buffer::for_overwrite(n * c);
    let ppt = planes_per_task(plane);
    out.par_chunks_mut(ppt)
        .zip(x.data().par_chunks(ppt * plane))
        .for_each(|(o, x)| global_avg_pool_forward(x, plane, o));
    Ok(Tensor::from_op(out, [n, c, 1, 1], &[x], || {
        GlobalAvgPoolBackward
    }))
}

/// Sum of a slice in f64, over 8 interleaved partial sums combined in a fixed order (vectorises;
/// deterministic).
pub fn plane_sum_f64(x: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = x.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k] as f64;
        }
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// `out[p] = mean(x[p * plane_len .. (p + 1) * plane_len])` for every plane `p`
/// (single-threaded slice kernel; `x.len() == out.len() * plane_len`).
pub fn global_avg_pool_forward(x: &[f32], plane_len: usize, out: &mut [f32]) {
    assert_eq!(
        x.len(),
        out.len() * plane_len,
        "global_avg_pool_forward: length mismatch"
    );
    let inv = 1.0 / plane_len as f64;
    out.iter_mut()
        .zip(x.chunks_exact(plane_len))
        .for_each(|(o, p)| *o = (plane_sum_f64(p) * inv) as f32);
}

/// `grad_in[p, i] = grad_out[p] / plane_len` (single-threaded slice kernel).
pub fn global_avg_pool_backward(grad_out: &[f32], plane_len: usize, grad_in: &mut [f32]) {
    assert_eq!(
        grad_in.len(),
        grad_out.len() * plane_len,
        "global_avg_pool_backward: length mismatch"
    );
    let inv = 1.0 / plane_len as f32;
    grad_in
        .chunks_exact_mut(plane_len)
        .zip(grad_out)
        .for_each(|(gi, &go)| gi.fill(go * inv));
}

struct GlobalAvgPoolBackward;

impl BackwardOp for GlobalAvgPoolBackward {
    fn name(&self) -> &'static str {
        "global_avg_pool"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let (_, _, h, w) = ctx.inputs[0].shape().nchw().expect("checked in forward");
        let plane = h * w;
        let ppt = planes_per_task(plane);
        let mut grad_in = Buffer::for_overwrite(ctx.inputs[0].numel());
        grad_in
            .par_chunks_mut(ppt * plane)
            .zip(ctx.grad_output.par_chunks(ppt))
            .for_each(|(gi, go)| global_avg_pool_backward(go, plane, gi));
        vec![Some(grad_in)]
    }
}

/// Plain reference: the mean of each `(n, c)` plane of `x` with `dims = [N, C, H, W]`.
pub fn global_avg_pool_reference<T: num_traits::Float>(x: &[T], dims: &[usize]) -> Vec<T> {
    let [n, c, h, w] = dims[..] else {
        panic!("global_avg_pool_reference: dims must be [N, C, H, W]")
    };
    let mut out = Vec::with_capacity(n * c);
    for p in 0..n * c {
        let mut s = T::zero();
        for i in 0..h * w {
            s = s + x[p * h * w + i];
        }
        out.push(s / T::from(h * w).unwrap());
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn forward_matches_reference(dims in prop::collection::vec(1usize..14, 4), seed in any::<u64>()) {
            let x = random_values(dims.iter().product(), 3.0, seed);
            let t = Tensor::from_vec(to_f32(&x), dims.clone()).unwrap();
            let y = global_avg_pool(&t).unwrap();
            prop_assert_eq!(y.dims(), &[dims[0], dims[1], 1, 1]);
            // f64 accumulation: only the final rounding to f32 remains.
            assert_close("global_avg_pool", y.data(), &global_avg_pool_reference(&x, &dims), 1e-7, 1e-7);
        }

        #[test]
        fn backward_matches_finite_differences(dims in prop::collection::vec(1usize..5, 4), seed in any::<u64>()) {
            let x = random_values(dims.iter().product(), 3.0, seed);
            check_gradients("global_avg_pool", &[GradInput::new(x, &dims)],
                |t| global_avg_pool(&t[0]).unwrap(),
                |v| global_avg_pool_reference(&v[0], &dims), GRAD_TOL, seed);
        }
    }

    #[test]
    fn large_planes_span_several_tasks() {
        // 3 planes of 40000 floats: one plane per task, sums over 5000 chunks of 8 plus none left.
        let dims = [1, 3, 200, 200];
        let x = random_values(120_000, 1.0, 5);
        let t = Tensor::from_vec(to_f32(&x), dims).unwrap();
        let y = global_avg_pool(&t).unwrap();
        assert_close(
            "gap",
            y.data(),
            &global_avg_pool_reference(&x, &dims),
            1e-6,
            1e-9,
        );
    }

    #[test]
    fn rejects_bad_shapes() {
        for dims in [vec![2, 3, 4], vec![1, 2, 0, 3]] {
            let err = global_avg_pool(&Tensor::zeros(dims.clone()))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("global_avg_pool") && err.contains(&format!("{dims:?}")),
                "{err}"
            );
        }
    }
}
