//! The one GEMM interface of the engine, and its `matrixmultiply` implementation.
//!
//! `matrixmultiply` is used without its `threading` feature: parallelism comes only from the rayon
//! tasks that call it, so there is one thread pool and no oversubscription.

/// A read-only strided matrix view: element (i, j) is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

/// A mutable strided matrix view.
#[derive(Debug)]
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

impl<'a> MatMut<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

/// `C = alpha * A * B + beta * C` on f32 matrices. (With `beta == 0`, C's old contents are
/// ignored, NaNs included.)
pub trait Gemm: Sync {
    fn gemm(&self, alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>);
}

/// The `matrixmultiply` crate's packed, runtime-dispatched (AVX2/FMA, AVX-512) kernel.
#[derive(Clone, Copy, Debug, Default)]
pub struct MatrixMultiply;

impl Gemm for MatrixMultiply {
    fn gemm(&self, alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) {
        assert_eq!(a.cols, b.rows, "gemm: inner dimensions differ");
        assert_eq!((a.rows, b.cols), (c.rows, c.cols), "gemm: output shape");
        assert!(
            a.fits() && b.fits() && c.fits(),
            "gemm: a view exceeds its slice"
        );
        if c.rows == 0 || c.cols == 0 {
            return;
        }
        // SAFETY: the views were checked to lie inside their slices; `c` is borrowed mutably and
        // so cannot alias `a` or `b`.
        unsafe {
            matrixmultiply::sgemm(
                a.rows,
                a.cols,
                b.cols,
                alpha,
                a.data.as_ptr(),
                a.row_stride as isize,
                a.col_stride as isize,
                b.data.as_ptr(),
                b.row_stride as isize,
                b.col_stride as isize,
                beta,
                c.data.as_mut_ptr(),
                c.row_stride as isize,
                c.col_stride as isize,
            );
        }
    }
}

/// `C = alpha * A * B + beta * C` through the engine's GEMM backend.
pub fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) {
    MatrixMultiply.gemm(alpha, a, b, beta, c)
}

/// Naive triple loop: the reference the fast path is tested against.
pub fn gemm_reference(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) {
    for i in 0..c.rows {
        for j in 0..c.cols {
            let mut acc = 0.0f64;
            for p in 0..a.cols {
                acc += a.data[i * a.row_stride + p * a.col_stride] as f64
                    * b.data[p * b.row_stride + j * b.col_stride] as f64;
            }
            let ci = i * c.row_stride + j * c.col_stride;
            let old = if beta == 0.0 {
                0.0
            } else {
                beta as f64 * c.data[ci] as f64
            };
            c.data[ci] = (alpha as f64 * acc + old) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn matches_reference(m in 1usize..40, k in 1usize..40, n in 1usize..40,
                             ta in any::<bool>(), tb in any::<bool>(), beta in prop::sample::select(vec![0.0f32, 1.0, 0.5]),
                             seed in any::<u64>()) {
            let mut s = seed;
            let mut rnd = move || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5 };
            let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rnd()).collect();
            let c0: Vec<f32> = (0..m * n).map(|_| rnd()).collect();
            let av = if ta { MatRef::row_major(&a, k, m).t() } else { MatRef::row_major(&a, m, k) };
            let bv = if tb { MatRef::row_major(&b, n, k).t() } else { MatRef::row_major(&b, k, n) };
            let mut fast = c0.clone();
            let mut slow = c0.clone();
            gemm(1.5, av, bv, beta, MatMut::row_major(&mut fast, m, n));
            gemm_reference(1.5, av, bv, beta, MatMut::row_major(&mut slow, m, n));
            for (x, y) in fast.iter().zip(&slow) {
                prop_assert!((x - y).abs() <= 1e-5 * (k as f32).sqrt() + 1e-5 * y.abs(), "{x} vs {y}");
            }
        }
    }
}
