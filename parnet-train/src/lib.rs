//! parnet-train: the training loop, schedules, checkpoints, metrics, and the `parnet` command
//! line (whose subcommands are thin wrappers over the functions here).
//!
//! Map:
//! - [`config`]: the TOML run configuration, overrides and validation.
//! - [`schedule`]: learning-rate schedules (cosine with warmup and cooldown, step, one-cycle).
//! - [`data_setup`]: loaders from the `[data]` section.
//! - [`train`]: the loop, with checkpoints every epoch and on Ctrl-C, and resume.
//! - [`evaluate`]: loss, top-1, top-5 over a loader.
//! - [`checkpoint`], [`metrics`]: what a run directory holds.
//! - [`plot`]: charts with error bars as SVG and PNG.
//! - [`study`]: `parnet study depth`, latency and accuracy against depth.
//! - [`model_io`]: building a named model and moving its weights in and out of files.
//! - [`cli`]: the `parnet` subcommands.

pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data_setup;
pub mod evaluate;
pub mod metrics;
pub mod model_io;
pub mod plot;
pub mod schedule;
pub mod study;
pub mod train;
