//! Structural reparameterization (spec section 5): fold each BN that follows a conv into it, and
//! merge the 1x1 branch into the 3x3 kernel. What is not linear stays: the gated identity BN, the
//! SE gates, the fusion BNs, the permutations and the head.
//!
//! All arithmetic is in f64 and rounded to f32 once at the end.

use crate::error::Result;
use crate::models::parnet::block::{Branches, RepBlock};
use crate::nn::{Conv2d, join_name};
use crate::ops::conv2d::Conv2dParams;

/// A folded 1x1 kernel `[cout, cin_g, 1, 1]` placed at the centre of a 3x3 kernel (stride-1
/// branch, spec 5.2).
pub fn embed_1x1_center(w1: &[f64]) -> Vec<f64> {
    let mut k = vec![0.0; w1.len() * 9];
    for (i, &v) in w1.iter().enumerate() {
        k[i * 9 + 4] = v;
    }
    k
}

/// A folded 1x1 kernel that follows a 2x2/stride-2 average pool, as a 3x3 stride-2 pad-1 kernel:
/// `w/4` in the bottom-right 2x2 (rows and columns 1..2), zeros in row 0 and column 0 (spec 5.3).
/// Exact for even input sizes.
pub fn embed_pooled_1x1(w1: &[f64]) -> Vec<f64> {
    let mut k = vec![0.0; w1.len() * 9];
    for (i, &v) in w1.iter().enumerate() {
        for (r, c) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
            k[i * 9 + r * 3 + c] = v / 4.0;
        }
    }
    k
}

/// The deploy form of a block: `rbr_reparam` (3x3 conv with bias) replaces `rbr_dense` and
/// `rbr_1x1`; identity BN and SE are copied. A fused block is returned as a copy.
pub fn fuse_block(block: &RepBlock) -> Result<RepBlock> {
    let spec = &block.spec;
    let branches = match &block.branches {
        Branches::Fused { conv } => Branches::Fused {
            conv: conv.deep_clone(),
        },
        Branches::Train { dense, one_by_one } => {
            let (w3, b3) = dense.folded();
            let (w1, b1) = one_by_one.folded();
            let k1 = if spec.stride == 1 {
                embed_1x1_center(&w1)
            } else {
                embed_pooled_1x1(&w1)
            };
            let weight = w3.iter().zip(&k1).map(|(a, b)| (a + b) as f32).collect();
            let bias = b3.iter().zip(&b1).map(|(a, b)| (a + b) as f32).collect();
            Branches::Fused {
                conv: Conv2d::from_values(
                    &join_name(&spec.prefix, "rbr_reparam"),
                    weight,
                    Some(bias),
                    spec.cin,
                    spec.cout,
                    3,
                    Conv2dParams::new(spec.stride, 1, spec.groups),
                )?,
            }
        }
    };
    Ok(RepBlock {
        spec: spec.clone(),
        branches,
        identity: block.identity.as_ref().map(|bn| bn.deep_clone()),
        se: block.se.deep_clone(),
        activation: block.activation,
        gate_factor: block.gate_factor,
    })
}

#[cfg(test)]
mod tests;
