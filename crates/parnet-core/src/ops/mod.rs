//! The differentiable ops. One op (or one small family) per module: the public function with its
//! shape checks, the forward kernel, the `BackwardOp`, a plain `*_reference` implementation
//! (generic over f32/f64) and the tests that hold them together.

pub mod activation;
pub mod batch_norm;
pub mod channel;
pub mod conv2d;
pub mod dropout;
pub mod elementwise;
pub mod linear;
pub mod loss;
pub(crate) mod parallel;
pub mod pool;
pub mod reduce;
pub mod reshape;

pub use elementwise::add;
pub use reduce::{mean, sum};
pub use reshape::reshape;
