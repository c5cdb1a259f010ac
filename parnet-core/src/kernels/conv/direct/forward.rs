//! Direct forward: tiles of [`MR`] output pixels x [`NR`] output channels, each the sum over
//! (tap, input channel) of a broadcast input value times a vector of packed weights.
//!
//! Output pixels are numbered over the whole batch, `P = (n * Ho + oh) * Wo + ow`, and cut into
//! fixed chunks of [`CHUNK_PIXELS`]; a rayon task is one chunk and one group's run of up to 4
//! blocks of 16 output channels. Within a task `k` is walked in chunks of packed weights small
//! enough for L1 ([`k_chunks`]), each used by all the chunk's tiles of 6 pixels (partial
//! sums continued, so the bits are those of one whole-`k` sum), which read the channels-last
//! input at `base(P) + (i * Wp + j) * C + g * Cin/g + c`.

use rayon::prelude::*;

use super::kernel::{MAX_BLOCKS, MR, NR, Offsets, Right, k_chunks, tile_accumulate, tile_blocks};
use super::layout::{ChannelSpread, ChannelsLast};
use crate::kernels::conv::Conv2dGeometry;
use crate::kernels::simd::Isa;
use crate::tensor::Buffer;

/// Output pixels per task (a multiple of [`MR`]).
pub(crate) const CHUNK_PIXELS: usize = MR * 40;

/// `out` (`[N, Cout, Ho, Wo]`, overwritten) = conv of `x` with `w` plus `bias`, with the
/// micro-kernel of `isa`.
pub(crate) fn forward(
    isa: Isa,
    geo: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    forward_from(isa, geo, &input_layout(geo, x), w, bias, out);
}

/// The zero-bordered channels-last copy of `x` that the forward and the weight gradient read.
pub(crate) fn input_layout(geo: &Conv2dGeometry, x: &[f32]) -> ChannelsLast {
    ChannelsLast::from_nchw(
        x,
        geo.x_dims(),
        geo.params.padding,
        ChannelSpread::dense(geo.in_channels),
        0,
    )
}

/// [`forward`] from the input's [`input_layout`].
pub(crate) fn forward_from(
    isa: Isa,
    geo: &Conv2dGeometry,
    src: &ChannelsLast,
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let packed = pack_weights(geo, w);
    let ks: Vec<Offsets> = (0..geo.params.groups)
        .map(|g| tap_channel_offsets(geo, src, g))
        .collect();
    let bases = pixel_bases(geo, src);
    let cout_g = geo.out_per_group();
    let blocks = cout_g.div_ceil(NR);
    let k_len = geo.taps_per_group();
    let plane = geo.out_h * geo.out_w;
    let total = bases.len();
    let dst = OutPtr(out.as_mut_ptr(), out.len());
    let lanes = MAX_BLOCKS * NR;
    // Tasks: (pixel chunk, group, run of up to MAX_BLOCKS blocks), chunk first, so that a few
    // chunks of many channels (the deep, small layers) still spread over every thread.
    let block_runs = blocks.div_ceil(MAX_BLOCKS);
    let per_chunk = geo.params.groups * block_runs;
    (0..total.div_ceil(CHUNK_PIXELS) * per_chunk)
        .into_par_iter()
        .for_each_init(
            || {
                (
                    Buffer::for_overwrite(lanes * CHUNK_PIXELS),
                    vec![[[0.0f32; MAX_BLOCKS * NR]; MR]; CHUNK_PIXELS / MR],
                )
            },
            |(lanes_by_pixel, partials), task| {
                let (chunk, g, run) = (
                    task / per_chunk,
                    (task % per_chunk) / block_runs,
                    task % block_runs,
                );
                let pixels = chunk * CHUNK_PIXELS..((chunk + 1) * CHUNK_PIXELS).min(total);
                let run_end = ((run + 1) * MAX_BLOCKS).min(blocks);
                let mut block = run * MAX_BLOCKS;
                while block < run_end {
                    let nb = tile_blocks(isa, run_end - block);
                    let weights = Right {
                        data: &packed[(g * blocks + block) * k_len * NR..],
                        k_stride: NR,
                        block_stride: k_len * NR,
                        blocks: nb,
                    };
                    // `k` in chunks whose weights stay in L1 while every tile uses them.
                    for (range, b) in k_chunks(k_len, weights) {
                        let tiles = pixels.clone().step_by(MR).zip(partials.iter_mut());
                        for (start, partial) in tiles {
                            let rows: [usize; MR] =
                                std::array::from_fn(|r| bases[(start + r).min(pixels.end - 1)]);
                            let acc = (partial, range.start == 0);
                            tile_accumulate(isa, &src.data, &rows, &ks[g], range.clone(), b, acc);
                        }
                    }
                    // The chunk's tiles, transposed to [lane][pixel].
                    for (start, t) in pixels.clone().step_by(MR).zip(partials.iter()) {
                        let at = start - pixels.start;
                        for (r, values) in t.iter().enumerate().take(pixels.end - start) {
                            for (l, &v) in values[..nb * NR].iter().enumerate() {
                                lanes_by_pixel[l * CHUNK_PIXELS + at + r] = v;
                            }
                        }
                    }
                    let first_co = g * cout_g + block * NR;
                    for l in 0..(nb * NR).min(cout_g - block * NR) {
                        let co = first_co + l;
                        let b = bias.map_or(0.0, |b| b[co]);
                        let values = &lanes_by_pixel[l * CHUNK_PIXELS..][..pixels.len()];
                        let mut p = pixels.start;
                        while p < pixels.end {
                            let (n, q) = (p / plane, p % plane);
                            let run = (plane - q).min(pixels.end - p);
                            let at = (n * geo.out_channels + co) * plane + q;
                            // SAFETY: tasks own disjoint (pixel chunk, channel run) pairs, so
                            // no other task touches these elements of `out`.
                            let out_run = unsafe { dst.slice(at, run) };
                            let src_run = &values[p - pixels.start..][..run];
                            out_run
                                .iter_mut()
                                .zip(src_run)
                                .for_each(|(o, &v)| *o = v + b);
                            p += run;
                        }
                    }
                    block += nb;
                }
            },
        );
}

/// A raw pointer to the output, for tasks that write disjoint elements.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub *mut f32, pub usize);

// SAFETY: tasks holding an `OutPtr` write disjoint indices (see each use).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The `len` elements from `start`.
    ///
    /// # Safety
    /// No other thread may access them while the slice lives.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(
            start + len <= self.1,
            "direct conv output index out of bounds"
        );
        // SAFETY: in bounds (checked), exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}

/// The weights as `[groups, ceil(Cout/g / NR), KH * KW * Cin/g, NR]`: block `b` of group `g`
/// holds, for `k = (i * KW + j) * Cin/g + c`, the `NR` output channels `b * NR + l` of that group
/// (zero past the last channel).
pub(crate) fn pack_weights(geo: &Conv2dGeometry, w: &[f32]) -> Buffer {
    let (cout_g, cin_g) = (geo.out_per_group(), geo.in_per_group());
    let taps = geo.kernel_h * geo.kernel_w;
    let blocks = cout_g.div_ceil(NR);
    let k_len = taps * cin_g;
    let mut packed = Buffer::zeros(geo.params.groups * blocks * k_len * NR);
    packed
        .par_chunks_mut(k_len * NR)
        .enumerate()
        .for_each(|(gb, dst)| {
            let (g, block) = (gb / blocks, gb % blocks);
            for l in 0..NR.min(cout_g - block * NR) {
                let co = g * cout_g + block * NR + l;
                let filter = &w[co * cin_g * taps..][..cin_g * taps];
                for c in 0..cin_g {
                    for t in 0..taps {
                        dst[(t * cin_g + c) * NR + l] = filter[c * taps + t];
                    }
                }
            }
        });
    packed
}

/// The `k` offsets of group `g`: `(i * Wp + j) * stride + g * Cin/g + c` for
/// `k = (i * KW + j) * Cin/g + c`.
pub(crate) fn tap_channel_offsets(geo: &Conv2dGeometry, src: &ChannelsLast, g: usize) -> Offsets {
    let cin_g = geo.in_per_group();
    let mut values = Vec::with_capacity(geo.taps_per_group());
    for i in 0..geo.kernel_h {
        for j in 0..geo.kernel_w {
            let tap = (i * src.width + j) * src.stride + g * cin_g;
            values.extend((0..cin_g).map(|c| tap + c));
        }
    }
    Offsets::new(values)
}

/// Offset of the top-left input pixel of every output pixel `P`, in `P` order.
pub(crate) fn pixel_bases(geo: &Conv2dGeometry, src: &ChannelsLast) -> Vec<usize> {
    let s = geo.params.stride;
    let mut bases = Vec::with_capacity(geo.batch * geo.out_h * geo.out_w);
    for n in 0..geo.batch {
        for oh in 0..geo.out_h {
            bases.extend((0..geo.out_w).map(|ow| src.pixel(n, oh * s, ow * s)));
        }
    }
    bases
}
