//! ParNet (spec sections 1-6): the generic block, the fusion block, the whole network, its
//! variants, and the plan it is built from.

pub mod block;
pub mod config;
pub mod fusion;
pub mod info;
pub mod model;
pub mod plan;

pub use config::{Activation, Layout, ParNetConfig, VARIANTS};
pub use model::ParNet;
pub use plan::Plan;

#[cfg(test)]
mod reparam_tests;
#[cfg(test)]
mod tests;
