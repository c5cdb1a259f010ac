//! parnet-train: the training loop, schedules, checkpoints, metrics, and the `parnet` command
//! line (whose subcommands are thin wrappers over the functions here).
//!
//! Map:
//! - [`cli`]: the `parnet` subcommands (`info`, `infer`, `fuse`, `bench latency`).
//! - [`model_io`]: building a named model and loading or saving its weights with metadata.

pub mod cli;
pub mod model_io;
