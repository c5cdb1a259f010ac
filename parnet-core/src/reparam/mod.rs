//! Structural reparameterization (spec section 5), as algebra on layers: fold each BN that
//! follows a conv into it, and merge the 1x1 branch into the 3x3 kernel. What is not linear
//! stays with the models (the gated identity BN, the SE gates, the fusion BNs, the permutations
//! and the head); each model builds its deploy form from these pieces.
//!
//! All arithmetic is in f64 and rounded to f32 once at the end.

use crate::error::Result;
use crate::nn::{Conv2d, ConvBn};
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

/// The conv with the BN folded in (eval statistics): `W' = t·W`, `b = β − μ·t`,
/// `t = γ/sqrt(σ²+ε)` (spec 5.1), in f64: (weight in the conv's layout, bias per output).
pub fn fold_conv_bn(cb: &ConvBn) -> (Vec<f64>, Vec<f64>) {
    let (t, c) = cb.bn.eval_affine();
    let w = cb.conv.weight.to_vec();
    let per_out = w.len() / t.len();
    let weight = w
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f64 * t[i / per_out])
        .collect();
    (weight, c)
}

/// One conv with bias computing `bn(conv(x))` in eval mode: the conv's geometry and key prefix
/// (`<name>.weight` gains a `<name>.bias`).
pub fn fold_into_conv(cb: &ConvBn) -> Result<Conv2d> {
    let (w, b) = fold_conv_bn(cb);
    let c = &cb.conv;
    Conv2d::from_values(
        c.weight.name().trim_end_matches(".weight"),
        w.iter().map(|&v| v as f32).collect(),
        Some(b.iter().map(|&v| v as f32).collect()),
        c.in_channels,
        c.out_channels,
        c.kernel,
        c.params,
    )
}

/// The two conv branches of a ParNet block as one 3x3 conv with bias named `name`
/// (`rbr_reparam`): the 3x3 conv+BN plus the 1x1 conv+BN, which follows a 2x2 average pool when
/// `stride` is 2 (spec 5.2, 5.3).
pub fn merge_branches(
    name: &str,
    dense: &ConvBn,
    one_by_one: &ConvBn,
    stride: usize,
    groups: usize,
) -> Result<Conv2d> {
    let (w3, b3) = fold_conv_bn(dense);
    let (w1, b1) = fold_conv_bn(one_by_one);
    let k1 = if stride == 1 {
        embed_1x1_center(&w1)
    } else {
        embed_pooled_1x1(&w1)
    };
    let weight = w3.iter().zip(&k1).map(|(a, b)| (a + b) as f32).collect();
    let bias = b3.iter().zip(&b1).map(|(a, b)| (a + b) as f32).collect();
    Conv2d::from_values(
        name,
        weight,
        Some(bias),
        dense.conv.in_channels,
        dense.conv.out_channels,
        3,
        Conv2dParams::new(stride, 1, groups),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_embeddings_put_values_where_the_spec_says() {
        let center = embed_1x1_center(&[2.0, 3.0]);
        assert_eq!(&center[..9], &[0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(center[13], 3.0);
        let pooled = embed_pooled_1x1(&[4.0]);
        assert_eq!(pooled, vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
    }
}
