//! Optimisers: pure parameter math on [`Param`](crate::Param)s, in place: SGD (momentum,
//! Nesterov, weight-decay mask), the weight EMA, gradient clipping by global norm.

mod clip;
mod ema;
mod sgd;

pub use clip::clip_grad_norm;
pub use ema::Ema;
pub use sgd::{Sgd, SgdConfig, decays};
