//! parnet-core: tensors, reverse-mode autograd, the ops and kernels ParNet needs, and the models.
//!
//! Map:
//! - [`tensor`]: [`Tensor`] (shared immutable f32 data + shape + graph link), [`Shape`], the
//!   pooled [`Buffer`].
//! - [`autograd`]: the graph, the backward walk (parallel over independent branches), [`Param`].
//! - [`ops`]: one module per differentiable op, each with its reference implementation and tests.
//! - [`kernels`]: the GEMM interface and other compute kernels the ops share.
//! - [`nn`]: layers (conv, BN, linear) holding named parameters, and the forward [`nn::Ctx`].
//! - [`models`]: ParNet (blocks, fusion, variants, plan) and, later, the deep baselines.
//! - [`reparam`]: structural reparameterization (BN folding, 1x1 merging).
//! - [`io`]: safetensors weights, written atomically, loaded by name with full error lists.
//! - [`optim`]: SGD (momentum, Nesterov, weight-decay mask) and the weight EMA.
//! - [`error`]: [`CoreError`], the one error type.

pub mod autograd;
pub mod error;
pub mod io;
pub mod kernels;
pub mod models;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod reparam;
pub mod tensor;
#[doc(hidden)]
pub mod testing;

pub use autograd::{BackwardOptions, Param};
pub use error::{CoreError, Result};
pub use models::parnet::{ParNet, ParNetConfig};
pub use tensor::{Buffer, Shape, Tensor};
