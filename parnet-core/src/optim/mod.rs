//! Optimisers: pure parameter math on [`Param`](crate::Param)s, in place: SGD (momentum,
//! Nesterov, weight-decay mask), the weight EMA, gradient clipping by global norm, and the
//! averages over data-parallel replicas.

mod clip;
mod ema;
mod replicas;
mod sgd;

pub use clip::clip_grad_norm;
pub use ema::Ema;
pub use replicas::{average_gradients, average_state_buffers};
pub use sgd::{Sgd, SgdConfig, decays};
