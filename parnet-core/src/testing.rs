//! Test helpers shared by the op and model tests: seeded random data, closeness checks and the
//! finite-difference gradient check.
//!
//! The gradient check compares the fast f32 backward with central differences of the op's plain
//! reference implementation evaluated in f64, so the numerical side carries no f32 rounding and
//! the tolerance measures only the fast path's error.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::tensor::{Buffer, Tensor};

/// `len` values uniform in `[-scale, scale)`, exactly representable in f32.
pub fn random_values(len: usize, scale: f64, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| (rng.random_range(-scale..scale) as f32) as f64)
        .collect()
}

/// `len` f32-representable values uniform in `[-scale, scale)` shifted by `offset` (off-centre
/// data for the shifted-sum statistics).
pub fn shifted_values(len: usize, scale: f64, offset: f64, seed: u64) -> Vec<f64> {
    random_values(len, scale, seed)
        .into_iter()
        .map(|v| ((v + offset) as f32) as f64)
        .collect()
}

/// Runs `f` on a fresh rayon pool of `threads` threads (for thread-count independence checks).
pub fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
        .install(f)
}

/// f64 values as f32.
pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// Asserts `|fast - reference| <= atol + rtol * |reference|` elementwise, naming the first
/// offending index.
pub fn assert_close(what: &str, fast: &[f32], reference: &[f64], rtol: f64, atol: f64) {
    assert_eq!(fast.len(), reference.len(), "{what}: lengths differ");
    for (i, (&a, &b)) in fast.iter().zip(reference).enumerate() {
        let err = (a as f64 - b).abs();
        assert!(
            err <= atol + rtol * b.abs(),
            "{what}: index {i}: fast {a} vs reference {b} (error {err:e}, atol {atol:e}, rtol {rtol:e})"
        );
    }
}

/// Tolerances of the gradient check: an analytic value `a` passes against the numerical `n` when
/// `|a - n| <= atol * max(1, max|n|) + rtol * |n|`.
#[derive(Clone, Copy, Debug)]
pub struct GradTolerance {
    pub rtol: f64,
    pub atol: f64,
    /// Step of the central difference (f64).
    pub eps: f64,
}

impl Default for GradTolerance {
    fn default() -> Self {
        GradTolerance {
            rtol: 1e-3,
            atol: 1e-4,
            eps: 1e-6,
        }
    }
}

/// One input of a gradient check: f64 values (f32-representable), shape, and whether its gradient
/// is checked (unchecked inputs are passed as constants).
pub struct GradInput {
    pub values: Vec<f64>,
    pub shape: Vec<usize>,
    pub check: bool,
}

impl GradInput {
    pub fn new(values: Vec<f64>, shape: &[usize]) -> Self {
        GradInput {
            values,
            shape: shape.to_vec(),
            check: true,
        }
    }

    pub fn constant(values: Vec<f64>, shape: &[usize]) -> Self {
        GradInput {
            values,
            shape: shape.to_vec(),
            check: false,
        }
    }
}

/// Checks the backward of `fast` against central differences of `reference` (in f64).
///
/// A random upstream gradient `g` is drawn from `seed`; the scalar differentiated is
/// `sum(reference(inputs) * g)`.
pub fn check_gradients(
    what: &str,
    inputs: &[GradInput],
    fast: impl Fn(&[Tensor]) -> Tensor,
    reference: impl Fn(&[Vec<f64>]) -> Vec<f64>,
    tol: GradTolerance,
    seed: u64,
) {
    let tensors: Vec<Tensor> = inputs
        .iter()
        .map(|inp| {
            let t = Tensor::from_vec(to_f32(&inp.values), inp.shape.clone()).expect("input shape");
            if inp.check { t.into_leaf() } else { t }
        })
        .collect();
    let out = fast(&tensors);
    let upstream = random_values(out.numel(), 1.0, seed ^ 0x9e37_79b9);
    out.backward_with(Buffer::from_vec(to_f32(&upstream)))
        .expect("backward");

    let objective = |vals: &[Vec<f64>]| -> f64 {
        let y = reference(vals);
        assert_eq!(y.len(), upstream.len(), "{what}: reference output length");
        y.iter().zip(&upstream).map(|(a, b)| a * b).sum()
    };

    let mut values: Vec<Vec<f64>> = inputs.iter().map(|i| i.values.clone()).collect();
    for (k, inp) in inputs.iter().enumerate() {
        if !inp.check {
            continue;
        }
        let analytic = tensors[k].grad().expect("leaf gradient");
        let mut numeric = vec![0.0; inp.values.len()];
        for j in 0..inp.values.len() {
            let x = values[k][j];
            values[k][j] = x + tol.eps;
            let plus = objective(&values);
            values[k][j] = x - tol.eps;
            let minus = objective(&values);
            values[k][j] = x;
            numeric[j] = (plus - minus) / (2.0 * tol.eps);
        }
        let scale = numeric.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (j, (&a, &n)) in analytic.iter().zip(&numeric).enumerate() {
            let err = (a as f64 - n).abs();
            assert!(
                err <= tol.atol * scale + tol.rtol * n.abs(),
                "{what}: d/d(input {k})[{j}]: analytic {a} vs numerical {n} (error {err:e})"
            );
        }
    }
}
