//! Low-level compute kernels shared by the ops.

pub mod gemm;
pub mod im2col;
pub mod simd;

pub use gemm::{Gemm, MatMut, MatRef, MatrixMultiply, gemm};
