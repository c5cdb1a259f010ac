//! sigmoid on slices: the scalar function, its gradient, and the single-threaded slice kernels
//! (compiled for AVX2 and portable where the body vectorises; both give the same bits).

use super::exp_f32;
use crate::kernels::simd::avx2_kernel;

/// `1 / (1 + e^-x)`; `e^-x = inf` for `x < -88.4` gives exactly 0, never NaN. Relative error
/// a few ulp.
#[inline(always)]
pub fn sigmoid_scalar(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

avx2_kernel! {
/// `out[i] = sigmoid(x[i])` (single-threaded slice kernel).
pub fn sigmoid_forward / sigmoid_forward_portable(x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "sigmoid_forward: length mismatch");
    out.iter_mut()
        .zip(x)
        .for_each(|(o, &x)| *o = sigmoid_scalar(x));
}
}

avx2_kernel! {
/// `x[i] = sigmoid(x[i])` in place.
pub fn sigmoid_in_place / sigmoid_in_place_portable(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = sigmoid_scalar(*v));
}
}

avx2_kernel! {
/// `grad_in[i] = grad_out[i] * y[i] * (1 - y[i])`, from the forward output `y`.
pub fn sigmoid_backward / sigmoid_backward_portable(y: &[f32], grad_out: &[f32], grad_in: &mut [f32]) {
    assert!(
        y.len() == grad_out.len() && y.len() == grad_in.len(),
        "sigmoid_backward: length mismatch"
    );
    grad_in
        .iter_mut()
        .zip(y.iter().zip(grad_out))
        .for_each(|(gi, (&y, &go))| *gi = go * (y * (1.0 - y)));
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
        sigmoid_forward(&x, &mut a);
        let mut b = x.clone();
        sigmoid_in_place(&mut b);
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
        sigmoid_forward(&x, &mut a);
        sigmoid_forward_portable(&x, &mut b);
        assert_eq!(bits(&a), bits(&b));
        let (mut c, mut d) = (x.clone(), x.clone());
        sigmoid_in_place(&mut c);
        sigmoid_in_place_portable(&mut d);
        assert_eq!(bits(&c), bits(&d));
        assert_eq!(bits(&a), bits(&c));
        sigmoid_backward(&x, &g, &mut a);
        sigmoid_backward_portable(&x, &g, &mut b);
        assert_eq!(bits(&a), bits(&b));
    }
}
