//! parnet-core: tensors, reverse-mode autograd, the ops and kernels ParNet needs, and the models.
//!
//! Map:
//! - [`tensor`]: [`Tensor`] (shared immutable f32 data + shape + graph link), [`Shape`], the
//!   pooled [`Buffer`].
//! - [`autograd`]: the graph, the backward walk (parallel over independent branches), [`Param`].
//! - [`ops`]: one module per differentiable op, each with its reference implementation and tests.
//! - [`kernels`]: the GEMM interface and other compute kernels the ops share.
//! - [`error`]: [`CoreError`], the one error type.

pub mod autograd;
pub mod error;
pub mod kernels;
pub mod ops;
pub mod tensor;
#[doc(hidden)]
pub mod testing;

pub use autograd::{BackwardOptions, Param};
pub use error::{CoreError, Result};
pub use tensor::{Buffer, Shape, Tensor};
