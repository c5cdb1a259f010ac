//! Timing of whole networks: forward latency ([`latency`]) and training-step throughput
//! ([`train_step`]), for `parnet bench` and the depth study.

pub mod latency;
pub mod train_step;
