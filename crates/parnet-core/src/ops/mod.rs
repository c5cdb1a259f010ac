//! The differentiable ops. One op (or one small family) per module: the public function with its
//! shape checks, the forward kernel, the `BackwardOp`, a plain `*_reference` implementation
//! (generic over f32/f64) and the tests that hold them together.

pub mod elementwise;
pub(crate) mod parallel;
pub mod reduce;
pub mod reshape;

pub use elementwise::add;
pub use reduce::{mean, sum};
pub use reshape::reshape;
