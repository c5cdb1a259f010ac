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
pub mod pool;
pub mod reduce;
pub mod rep_merge;
pub mod reshape;

pub use activation::{relu, sigmoid, silu};
pub use batch_norm::{batch_norm2d_eval, batch_norm2d_train, batch_norm2d_train_synced};
pub use channel::{channel_shuffle, interleave_channels};
pub use conv2d::{Conv2dParams, conv2d};
pub use dropout::dropout;
pub use elementwise::{add, mul_channel, scale};
pub use linear::linear;
pub use loss::{cross_entropy, log_softmax};
pub use pool::{avg_pool2d_2x2, global_avg_pool};
pub use reduce::{mean, sum};
pub use reshape::reshape;
