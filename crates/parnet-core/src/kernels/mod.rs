//! Low-level compute kernels shared by the ops.

pub mod gemm;

pub use gemm::{Gemm, MatMut, MatRef, MatrixMultiply, gemm};
