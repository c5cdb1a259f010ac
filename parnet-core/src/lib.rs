//! parnet-core: tensors, reverse-mode autograd, the ops and kernels ParNet needs, the models, and
//! the training step.
//!
//! Map, from the bottom up (each module uses only those above it in this list; checked by
//! `tests/layering.rs`):
//! - [`error`]: [`CoreError`], the one error type.
//! - [`replicas`]: data-parallel replicas of a training step ([`replicas::Replicas`]: an
//!   all-gather and a sum in replica order), implemented over threads here and over MPI in
//!   parnet-train.
//! - [`tensor`]: [`Tensor`] (shared immutable f32 data + shape + graph link), [`Shape`], the
//!   pooled [`Buffer`].
//! - [`testing`] (hidden): seeded values, closeness and finite-difference checks for tests.
//! - [`kernels`]: everything non-differentiable that computes: the convolution kernels (direct
//!   and GEMM, and the choice between them), GEMM, im2col, activation, batch-norm and block-merge
//!   kernels, the rayon chunking helpers, and all SIMD code with its runtime dispatch.
//! - [`autograd`]: the backward walk (parallel over independent branches), [`Param`], the
//!   per-op profiler.
//! - [`ops`]: one module per differentiable op: the op, its backward, a plain reference and
//!   the tests that hold them together.
//! - [`nn`]: layers holding named parameters (conv, BN, conv+BN, linear), the forward
//!   [`nn::Ctx`], a module's state as named tensors.
//! - [`reparam`]: structural reparameterization as algebra on layers (BN folding, 1x1 merging).
//! - [`optim`]: SGD (momentum, Nesterov, weight-decay mask), the weight EMA, gradient clipping.
//! - [`io`]: safetensors files, written atomically, loaded by name with full error lists.
//! - [`exec`]: the inference executor: a deploy-form network planned once for an input shape
//!   (channels-last layouts, fused epilogues, Winograd, planned buffers), run without autograd.
//! - [`models`]: the [`models::Network`] interface, the registry that builds every network by
//!   name ([`models::NetworkSpec`]), ParNet, its sequential twin, the depth sweep, the ResNets.
//! - [`training`]: the one training step.
//! - [`onnx`]: the ONNX export of a network's deploy form (prost messages of `onnx.proto`).

pub mod autograd;
pub mod error;
pub mod exec;
pub mod io;
pub mod kernels;
pub mod models;
pub mod nn;
pub mod onnx;
pub mod ops;
pub mod optim;
pub mod reparam;
pub mod replicas;
pub mod tensor;
#[doc(hidden)]
pub mod testing;
pub mod training;

pub use autograd::{BackwardOptions, Param};
pub use error::{CoreError, Result};
pub use models::parnet::{ParNet, ParNetConfig};
pub use tensor::{Buffer, Shape, Tensor};
