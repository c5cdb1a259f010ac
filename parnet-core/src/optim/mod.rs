//! Optimisers: pure parameter math on [`Param`](crate::Param)s, in place.

mod ema;
mod sgd;

pub use ema::Ema;
pub use sgd::{Sgd, SgdConfig, decays};
