//! parnet-train: the training loop, schedules, checkpoints, metrics, timing, the depth study,
//! and the `parnet` command line (whose subcommands are thin wrappers over the functions here).
//!
//! Map (models come from `parnet_core::models::NetworkSpec`, the one door to every network; the
//! training step is `parnet_core::training`):
//! - [`config`]: the TOML run configuration, overrides and validation.
//! - [`schedule`]: learning-rate schedules (cosine with warmup and cooldown, step, one-cycle).
//! - [`data_setup`]: loaders from the `[data]` section.
//! - [`train`]: the loop, with checkpoints every epoch and on Ctrl-C, and resume.
//! - [`distributed`]: data-parallel training and stream-parallel inference across `mpirun`
//!   ranks (MPI behind the `mpi` feature).
//! - [`evaluate`]: loss, top-1, top-5 over a loader, with optional flip TTA.
//! - [`deploy`]: deploy-form networks on the executor, planned per input shape.
//! - [`checkpoint`]: weight files and checkpoints (model description, form, optimiser, EMA).
//! - [`metrics`]: the per-epoch log and its curves.
//! - [`plot`]: charts with error bars as SVG and PNG.
//! - [`bench`]: forward latency and training-step throughput of any network.
//! - [`study`]: `parnet study depth`, latency and accuracy against depth.
//! - [`threads`]: the size of the one rayon pool; [`limits`]: sizes refused up front.
//! - [`cli`]: the `parnet` subcommands, one module each; [`say!`] prints their lines.

pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data_setup;
pub mod deploy;
pub mod distributed;
pub mod evaluate;
pub mod limits;
pub mod metrics;
pub mod plot;
pub mod schedule;
pub mod study;
pub mod threads;
pub mod train;

/// `println!` that never panics: a line for a closed or full stdout (`parnet ... | head`) is
/// dropped and the command goes on, so a training run piped into `head` keeps training.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
