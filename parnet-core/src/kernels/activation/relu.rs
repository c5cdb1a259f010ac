//! relu on slices: the scalar function, its gradient, and the single-threaded slice kernels
//! (compiled for AVX2 and portable where the body vectorises; both give the same bits).

#[inline(always)]
pub(crate) fn relu_scalar(x: f32) -> f32 {
    // `x < 0` is false for NaN, so NaN passes through (`f32::max` would turn it into 0).
    if x < 0.0 { 0.0 } else { x }
}

/// `grad_out` where `x > 0`, else 0.
#[inline(always)]
pub(crate) fn relu_grad_scalar(x: f32, grad_out: f32) -> f32 {
    if x > 0.0 { grad_out } else { 0.0 }
}

/// `out[i] = relu(x[i])` (single-threaded slice kernel).
pub fn relu_forward(x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "relu_forward: length mismatch");
    out.iter_mut()
        .zip(x)
        .for_each(|(o, &x)| *o = relu_scalar(x));
}

/// `x[i] = relu(x[i])` in place.
pub fn relu_in_place(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = relu_scalar(*v));
}

/// `grad_in[i] = grad_out[i]` where `x[i] > 0`, else 0. `x` is the forward input (the output
/// works as well).
pub fn relu_backward(x: &[f32], grad_out: &[f32], grad_in: &mut [f32]) {
    assert!(
        x.len() == grad_out.len() && x.len() == grad_in.len(),
        "relu_backward: length mismatch"
    );
    grad_in
        .iter_mut()
        .zip(x.iter().zip(grad_out))
        .for_each(|(gi, (&x, &go))| *gi = relu_grad_scalar(x, go));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn in_place_matches_forward() {
        let x = to_f32(&random_values(1000, 3.0, 7));
        let mut a = vec![0.0; x.len()];
        relu_forward(&x, &mut a);
        let mut b = x.clone();
        relu_in_place(&mut b);
        assert_eq!(a, b);
    }
}
