//! Models built from the engine's layers.

pub mod parnet;
