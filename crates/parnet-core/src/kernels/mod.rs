//! Low-level compute kernels shared by the ops.

pub mod gemm;
pub mod im2col;

pub use gemm::{Gemm, MatMut, MatRef, MatrixMultiply, gemm};
