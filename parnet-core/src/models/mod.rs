//! Models built from the engine's layers, the [`Network`] interface every one of them offers, and
//! the [`registry`] that builds any of them by name (the one way the rest of the project gets a
//! model).
//!
//! - [`network`](Network): the interface (forward, counts, deploy form);
//! - [`registry`]: [`NetworkSpec`], names to networks, and the metadata of weight files;
//! - [`info`]: the per-layer table (`parnet info`) and depth as the longest path;
//! - [`parnet`]: ParNet (blocks, fusion, variants, plan); [`sequential_parnet`]: its one-stream
//!   twin; [`parnet_sweep`]: the depth sweep; [`resnet`]: the deep baselines;
//! - [`conv_unit`]: a conv and its BN in training or deploy form.

pub mod conv_unit;
pub mod info;
mod network;
pub mod parnet;
pub mod parnet_sweep;
pub mod registry;
pub mod resnet;
pub mod sequential_parnet;

pub use network::Network;
pub use registry::{
    MODEL_METADATA_KEYS, NetworkSpec, default_num_classes, example_names,
    metadata_describes_network, network_from_metadata,
};
