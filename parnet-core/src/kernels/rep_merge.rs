//! Plane kernels of a ParNet block's training-mode merge (the `rep_merge_train` op): one
//! `(n, c)` plane at a time, with the plane's constants.

use crate::kernels::activation::Activation;
use crate::kernels::activation::relu::{relu_grad_scalar, relu_scalar};
use crate::kernels::activation::silu::{silu_grad_scalar, silu_scalar};
use crate::kernels::simd::avx2_kernel;

/// A training batch norm of one channel as an affine map: `((v - mean_hi) - mean_lo) * scale +
/// shift`, exactly the expression of `crate::ops::batch_norm`, so the merge reproduces its bits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Affine {
    pub mean_hi: f32,
    pub mean_lo: f32,
    pub scale: f32,
    pub shift: f32,
}

impl Affine {
    #[inline(always)]
    fn apply(self, v: f32) -> f32 {
        ((v - self.mean_hi) - self.mean_lo) * self.scale + self.shift
    }
}

/// The constants of one plane: the two conv branches' normalisations, the identity branch's
/// (case A) and the plane's gate value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlaneMerge {
    pub dense: Affine,
    pub one: Affine,
    pub identity: Option<Affine>,
    pub gate: f32,
}

impl PlaneMerge {
    /// The pre-activation: `(BN_d(u) + BN_1(v)) + BN_id(x) * gate` (case A) or
    /// `(BN_d(u) + BN_1(v)) * gate` (case B), in the unfused ops' order.
    #[inline(always)]
    fn z<const IDENTITY: bool>(&self, identity: Affine, u: f32, v: f32, x: f32) -> f32 {
        let convs = self.dense.apply(u) + self.one.apply(v);
        if IDENTITY {
            convs + identity.apply(x) * self.gate
        } else {
            convs * self.gate
        }
    }
}

#[inline(always)]
fn act<const SILU: bool>(z: f32) -> f32 {
    if SILU { silu_scalar(z) } else { relu_scalar(z) }
}

/// `dy * act'(z)`, with the activations' own backward arithmetic.
#[inline(always)]
fn act_grad<const SILU: bool>(z: f32, dy: f32) -> f32 {
    if SILU {
        silu_grad_scalar(z, dy)
    } else {
        relu_grad_scalar(z, dy)
    }
}

#[inline(always)]
fn forward_loop<const IDENTITY: bool, const SILU: bool>(
    m: &PlaneMerge,
    u: &[f32],
    v: &[f32],
    x: &[f32],
    y: &mut [f32],
) {
    let id = m.identity.unwrap_or(m.dense);
    if IDENTITY {
        for (((y, &u), &v), &x) in y.iter_mut().zip(u).zip(v).zip(x) {
            *y = act::<SILU>(m.z::<true>(id, u, v, x));
        }
    } else {
        for ((y, &u), &v) in y.iter_mut().zip(u).zip(v) {
            *y = act::<SILU>(m.z::<false>(id, u, v, 0.0));
        }
    }
}

#[inline(always)]
fn output_grad_loop<const IDENTITY: bool, const SILU: bool>(
    m: &PlaneMerge,
    (u, v, x): (&[f32], &[f32], &[f32]),
    dy: &[f32],
    dz: &mut [f32],
) {
    let id = m.identity.unwrap_or(m.dense);
    if IDENTITY {
        for ((((d, &g), &u), &v), &x) in dz.iter_mut().zip(dy).zip(u).zip(v).zip(x) {
            *d = act_grad::<SILU>(m.z::<true>(id, u, v, x), g);
        }
    } else {
        for (((d, &g), &u), &v) in dz.iter_mut().zip(dy).zip(u).zip(v) {
            *d = act_grad::<SILU>(m.z::<false>(id, u, v, 0.0), g);
        }
    }
}

avx2_kernel! {
/// `y = act(z)` over one plane; `x` is the identity input (case A) or empty.
pub(crate) fn forward_plane / forward_plane_portable(m: &PlaneMerge, activation: Activation, u: &[f32], v: &[f32], x: &[f32], y: &mut [f32]) {
    assert!(u.len() == y.len() && v.len() == y.len(), "rep_merge: plane lengths differ");
    match (m.identity.is_some(), activation) {
        (true, Activation::Silu) => forward_loop::<true, true>(m, u, v, x, y),
        (true, Activation::Relu) => forward_loop::<true, false>(m, u, v, x, y),
        (false, Activation::Silu) => forward_loop::<false, true>(m, u, v, x, y),
        (false, Activation::Relu) => forward_loop::<false, false>(m, u, v, x, y),
    }
}
}

avx2_kernel! {
/// `dz = dy * act'(z)` over one plane, `z` recomputed from the inputs.
pub(crate) fn output_grad_plane / output_grad_plane_portable(m: &PlaneMerge, activation: Activation, u: &[f32], v: &[f32], x: &[f32], dy: &[f32], dz: &mut [f32]) {
    assert!(u.len() == dz.len() && v.len() == dz.len() && dy.len() == dz.len(), "rep_merge: plane lengths differ");
    let inputs = (u, v, x);
    match (m.identity.is_some(), activation) {
        (true, Activation::Silu) => output_grad_loop::<true, true>(m, inputs, dy, dz),
        (true, Activation::Relu) => output_grad_loop::<true, false>(m, inputs, dy, dz),
        (false, Activation::Silu) => output_grad_loop::<false, true>(m, inputs, dy, dz),
        (false, Activation::Relu) => output_grad_loop::<false, false>(m, inputs, dy, dz),
    }
}
}

/// The batch-norm input gradient of one plane, `a * (s * dz - b - ((x - mean_hi) - mean_lo) * k)`
/// (`s` scales the output gradient into this branch: 1 or the plane's gate).
#[derive(Clone, Copy, Debug)]
pub(crate) struct InputGradient {
    pub mean_hi: f32,
    pub mean_lo: f32,
    pub a: f32,
    pub s: f32,
    pub b: f32,
    pub k: f32,
}

avx2_kernel! {
/// `dx[i] = a * (s * dz[i] - b - ((x[i] - mean_hi) - mean_lo) * k)`.
pub(crate) fn input_grad_plane / input_grad_plane_portable(c: InputGradient, dz: &[f32], x: &[f32], dx: &mut [f32]) {
    for ((d, &g), &v) in dx.iter_mut().zip(dz).zip(x) {
        *d = c.a * (c.s * g - c.b - ((v - c.mean_hi) - c.mean_lo) * c.k);
    }
}
}
