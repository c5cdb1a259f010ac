//! `dropout(x, p, seed)`: training-mode inverted dropout.
//!
//! The mask is counter-based: element `i` is kept when the SplitMix64 hash of `(seed, i)` clears a
//! threshold, so the mask is a pure function of `(seed, i, p)` and depends neither on the number of
//! threads nor on how the work is split. The backward regenerates it instead of storing it.

use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, invalid};
use crate::kernels::parallel::ELEMENTWISE_CHUNK;
use crate::tensor::{Buffer, Tensor};
use rayon::prelude::*;

/// Training dropout: zero each element with probability `p` and scale survivors by `1 / (1 - p)`.
/// The mask is a pure function of `(seed, element index)`, so it does not depend on thread count.
/// `p == 0` returns `x` unchanged (same tensor handle); `p` must be in `[0, 1)`.
pub fn dropout(x: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    dropout_from(x, p, seed, 0)
}

/// [`dropout`] of a tensor that is the part of a larger one starting at element `first`: element
/// `i` takes the larger tensor's mask at `first + i` (a data-parallel replica's share of a global
/// batch gets the masks the whole batch would).
pub fn dropout_from(x: &Tensor, p: f32, seed: u64, first: usize) -> Result<Tensor> {
    if !(0.0..1.0).contains(&p) {
        return Err(invalid("dropout", format!("p must be in [0, 1), got {p}")));
    }
    if p == 0.0 {
        return Ok(x.clone());
    }
    let mask = DropoutMask {
        first,
        ..DropoutMask::new(p, seed)
    };
    let mut out = Buffer::for_overwrite(x.numel());
    mask.apply(&mut out, x.data());
    Ok(Tensor::from_op(out, x.shape().clone(), &[x], || {
        DropoutBackward { mask }
    }))
}

/// Whether element `index` survives dropout with probability `p` and `seed` (the mask of
/// [`dropout`], exposed for tests and references).
pub fn dropout_keeps(seed: u64, index: usize, p: f32) -> bool {
    DropoutMask::new(p, seed).keeps(index)
}

/// The mask and scale of one dropout call.
#[derive(Clone, Copy)]
struct DropoutMask {
    seed: u64,
    /// An element is kept when the top 32 bits of its hash are `>= threshold = round(p * 2^32)`.
    threshold: u64,
    /// `1 / (1 - p)` in f32.
    scale: f32,
    /// The mask index of element 0.
    first: usize,
}

impl DropoutMask {
    fn new(p: f32, seed: u64) -> Self {
        DropoutMask {
            seed,
            threshold: (p as f64 * 4_294_967_296.0).round() as u64,
            scale: 1.0 / (1.0 - p),
            first: 0,
        }
    }

    /// SplitMix64 output number `index` of the stream seeded with `seed`, top 32 bits compared
    /// with the threshold.
    #[inline]
    fn keeps(&self, index: usize) -> bool {
        let mut z = self.seed.wrapping_add(
            (index as u64)
                .wrapping_add(1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 32) >= self.threshold
    }

    /// `out[i] = src[i] * scale` where element `i` is kept, `0` elsewhere.
    fn apply(&self, out: &mut [f32], src: &[f32]) {
        debug_assert_eq!(out.len(), src.len());
        out.par_chunks_mut(ELEMENTWISE_CHUNK)
            .zip(src.par_chunks(ELEMENTWISE_CHUNK))
            .enumerate()
            .for_each(|(c, (o, s))| {
                let base = self.first + c * ELEMENTWISE_CHUNK;
                for (i, (o, &v)) in o.iter_mut().zip(s).enumerate() {
                    *o = if self.keeps(base + i) {
                        v * self.scale
                    } else {
                        0.0
                    };
                }
            });
    }
}

/// `dx = dy * mask * scale`, the mask regenerated from the seed.
struct DropoutBackward {
    mask: DropoutMask,
}

impl BackwardOp for DropoutBackward {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let mut dx = Buffer::for_overwrite(ctx.grad_output.len());
        self.mask.apply(&mut dx, ctx.grad_output);
        vec![Some(dx)]
    }
}

/// Plain reference: `x[i] * keep(i) / (1 - p)`, with the scale rounded to f32 like the op.
pub fn dropout_reference<T: num_traits::Float>(x: &[T], p: f32, seed: u64) -> Vec<T> {
    let scale = T::from(1.0 / (1.0 - p)).unwrap();
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            if dropout_keeps(seed, i, p) {
                v * scale
            } else {
                T::zero()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
