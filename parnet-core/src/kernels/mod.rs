//! Low-level compute kernels shared by the ops.

pub mod activation;
pub mod batch_norm;
pub mod conv;
pub mod gemm;
pub mod im2col;
pub mod parallel;
pub mod peak;
pub mod rep_merge;
pub mod simd;

pub use gemm::{Gemm, MatMut, MatRef, MatrixMultiply, gemm};
