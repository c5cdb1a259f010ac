//! parnet-bench: speed measurements of parnet-core, written down in docs/BENCHMARKS.md.
//!
//! Map:
//! - [`conv`]: the conv2d shapes of ParNet and graph-free runners for each pass.
//! - [`models`]: whole-model cases (ParNet against the deep baselines), built through the core's
//!   registry, with runners for an eval forward and the core's training step.
//! - [`timing`]: median of repeated runs after warm-up; [`args`]: the `--name value` flags of
//!   the binaries and examples.
//!
//! The machine's FMA peak, the yardstick of every GFLOP/s figure, is measured by
//! `parnet_core::kernels::peak` (also for `parnet bench latency`). Around it: criterion benches in `benches/` (`conv2d`, `depth_latency`, `depth_sweep`,
//! `streams`), summary binaries in `src/bin/` (`fma_peak`, `conv_table`), and probes in
//! `examples/` (`conv_passes`, `conv_profile`, `elementwise_ops`, `gemm_probe`).

pub mod args;
pub mod conv;
pub mod models;
pub mod timing;
