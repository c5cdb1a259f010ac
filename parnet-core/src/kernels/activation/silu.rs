//! silu on slices: the scalar function, its gradient, and the single-threaded slice kernels
//! (compiled for AVX2 and portable where the body vectorises; both give the same bits).

use super::exp_f32;
use crate::kernels::simd::avx2_kernel;

/// `x / (1 + e^-x)`; for `x < -88.4`, `e^-x = inf` and the result is `-0`.
#[inline(always)]
pub fn silu_scalar(x: f32) -> f32 {
    x / (1.0 + exp_f32(-x))
}

/// `grad_out * silu'(x)` = `grad_out * s * (1 + x (1 - s))` with `s = sigmoid(x)`.
#[inline(always)]
pub(crate) fn silu_grad_scalar(x: f32, grad_out: f32) -> f32 {
    let s = 1.0 / (1.0 + exp_f32(-x));
    grad_out * (s * (1.0 + x * (1.0 - s)))
}

avx2_kernel! {
/// `out[i] = silu(x[i])` (single-threaded slice kernel).
pub fn silu_forward / silu_forward_portable(x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "silu_forward: length mismatch");
    out.iter_mut()
        .zip(x)
        .for_each(|(o, &x)| *o = silu_scalar(x));
}
}

avx2_kernel! {
/// `x[i] = silu(x[i])` in place.
pub fn silu_in_place / silu_in_place_portable(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = silu_scalar(*v));
}
}

avx2_kernel! {
/// `grad_in[i] = grad_out[i] * s * (1 + x (1 - s))` with `s = sigmoid(x[i])`, from the forward
/// input `x` (the sigmoid is recomputed rather than stored).
pub fn silu_backward / silu_backward_portable(x: &[f32], grad_out: &[f32], grad_in: &mut [f32]) {
    assert!(
        x.len() == grad_out.len() && x.len() == grad_in.len(),
        "silu_backward: length mismatch"
    );
    grad_in
        .iter_mut()
        .zip(x.iter().zip(grad_out))
        .for_each(|(gi, (&x, &go))| *gi = silu_grad_scalar(x, go));
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn in_place_matches_forward() {
        let x = to_f32(&random_values(1000, 10.0, 7));
        let mut a = vec![0.0; x.len()];
        silu_forward(&x, &mut a);
        let mut b = x.clone();
        silu_in_place(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn dispatched_and_portable_kernels_agree_bitwise() {
        // On an AVX2 machine the public kernels run the AVX2 compilation; it must give the same
        // bits as the portable one (4099: not a multiple of any vector width).
        let mut x = to_f32(&random_values(4099, 30.0, 11));
        x[..6].copy_from_slice(&[-100.0, 100.0, -88.5, 88.5, 0.0, -0.0]);
        let g = to_f32(&random_values(x.len(), 1.0, 12));
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let (mut a, mut b) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        silu_forward(&x, &mut a);
        silu_forward_portable(&x, &mut b);
        assert_eq!(bits(&a), bits(&b));
        let (mut c, mut d) = (x.clone(), x.clone());
        silu_in_place(&mut c);
        silu_in_place_portable(&mut d);
        assert_eq!(bits(&c), bits(&d));
        assert_eq!(bits(&a), bits(&c));
        silu_backward(&x, &g, &mut a);
        silu_backward_portable(&x, &g, &mut b);
        assert_eq!(bits(&a), bits(&b));
    }
}
