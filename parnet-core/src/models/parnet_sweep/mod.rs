//! The depth sweep at roughly constant multiply-adds (issue 6): ParNet-style networks with 1 to 4
//! parallel streams whose blocks per stream are varied so that depth runs from about 8 to about
//! 30, the base width chosen so that every member costs the same multiply-adds within ±10%.
//!
//! A member (`sweep-s<S>-b<B>-w<w>`, CIFAR-style, input R x R with R a multiple of 4, of 8 when
//! S = 4) has widths `w_i = w·2^i`; stream i runs at R/2^i with width w_i. Keys:
//!
//! | keys | what |
//! |---|---|
//! | `stem.0`, `stem.1` | 3 -> w0, w0 -> w0, stride 1; `stem.1` feeds stream 0 |
//! | `inits.{i}`, i = 1..S | w_{i-1} -> w_i, stride 2, chained; `inits.{i}` feeds stream i |
//! | `streams.{i}.{j}` | B case-A blocks w_i -> w_i per stream |
//! | `down0` (S >= 2) | w0 -> w1, stride 2, on stream 0's output |
//! | `fuse.{i}`, i = 1..S | fusion block (spec 2.5; BNs `fuse.{i}.0.b1/b2`, block `fuse.{i}.2.block`) of stream i with the merged features: 2·w_i -> w_{i+1}, stride 2, except the last: 2·w_i -> w_i, stride 1 |
//! | `tail.{k}` | stride-2 blocks doubling the width until the resolution is R/4 (S = 1: two, S = 2: one) |
//! | `final` | 1x1 conv + BN + activation to twice the last width |
//! | `head.fc` | global average pool, linear |
//!
//! With S = 3 this is ParNet-CIFAR's down0 / fuse1 / fuse2 topology; its third stem block is here
//! the first of stream 0's blocks, so `sweep-s3-b4-w{w}` has exactly the parameters and
//! multiply-adds of `parnet-cifar` with widths (w, 2w, 4w, 8w) (depth 11 instead of 12).
//!
//! Depth (longest path, spec section 4) is read off the same [`SweepPlan`] the model is built
//! from; it comes to B + 6, 7, 7, 8 for S = 1, 2, 3, 4.

pub mod model;
pub mod plan;
pub mod spec;
pub mod sweep;

pub use model::SweepNet;
pub use plan::SweepPlan;
pub use spec::SweepSpec;
pub use sweep::depth_sweep;

#[cfg(test)]
mod tests;
