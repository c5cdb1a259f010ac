//! Benchmarks of parnet-core's kernels: the machine's FMA peak, the conv2d shapes, and timing
//! helpers shared by the criterion benches (`benches/`) and the summary binaries (`src/bin/`).

pub mod args;
pub mod conv;
pub mod fma;
pub mod models;
pub mod timing;
