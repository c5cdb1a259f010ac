//! Direct weight gradient: tiles of [`MR`] (tap, input channel) rows x [`NR`] output channels,
//! each the sum over output pixels of a broadcast input value times a vector of the
//! channels-last output gradient:
//!
//! ```text
//! dW[g][k = (i * KW + j) * Cin/g + c][co] = sum over P of x[base(P) + (i * Wp + j) * C + g * Cin/g + c]
//!                                                       * dY[P][g * Cout/g + co]
//! ```
//!
//! The pixels are cut into the fixed runs of [`weight_partial_runs`]; each run is summed into its
//! own partial gradient in sub-runs of [`SUB_RUN_PIXELS`] (so its slice of `x` and `dY` stays in
//! cache while the tiles pass over it), and the partials are added in run order: the result
//! does not depend on the thread count. The threads share out (run, rows, blocks) units, so one
//! run (a large gradient) still uses all of them.

use rayon::prelude::*;

use super::forward::OutPtr;
use super::forward::{input_layout, pixel_bases, tap_channel_offsets};
use super::kernel::{MAX_BLOCKS, MR, NR, Offsets, Right, tile_add, tile_blocks};
use super::layout::{ChannelSpread, ChannelsLast};
use crate::kernels::conv::Conv2dGeometry;
use crate::kernels::conv::partials::weight_partial_runs;
use crate::kernels::simd::Isa;
use crate::tensor::Buffer;

/// Pixels summed by one pass of every tile (the partial's tiles are loaded and stored once per
/// sub-run; 64-256 measured alike on the ParNet shapes).
const SUB_RUN_PIXELS: usize = 256;

/// `dw` (`[Cout, Cin/g, KH, KW]`, overwritten) = the weight gradient of the convolution `geo`
/// of `x` given the output gradient `dy`, with the micro-kernel of `isa`.
pub(crate) fn backward_weight(
    isa: Isa,
    geo: &Conv2dGeometry,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
) {
    backward_weight_from(isa, geo, &input_layout(geo, x), dy, dw);
}

/// [`backward_weight`] from the input's [`input_layout`] (kept from the forward).
pub(crate) fn backward_weight_from(
    isa: Isa,
    geo: &Conv2dGeometry,
    src: &ChannelsLast,
    dy: &[f32],
    dw: &mut [f32],
) {
    let groups = geo.params.groups;
    let (cout_g, cin_g) = (geo.out_per_group(), geo.in_per_group());
    // dY channels-last, each group's channels padded to whole NR-lane blocks.
    let grad = ChannelsLast::from_nchw(
        dy,
        geo.out_dims(),
        0,
        ChannelSpread::aligned(groups, cout_g, NR),
        0,
    );
    let group_stride = grad.stride / groups;
    let blocks = group_stride / NR;
    let k_len = geo.taps_per_group();
    let row_tiles = k_len.div_ceil(MR);
    let pixels = Offsets::new(pixel_bases(geo, src));
    let total = pixels.values.len();
    let rows: Vec<Offsets> = (0..groups)
        .map(|g| tap_channel_offsets(geo, src, g))
        .collect();
    let partial_len = groups * k_len * group_stride;
    let sub_len = SUB_RUN_PIXELS;
    let runs = weight_partial_runs(partial_len, total.div_ceil(sub_len));
    // Work units: (run, group, block run, range of row tiles), each writing its own rows and
    // lanes of its run's partial, so a few runs (a large gradient gets one) still spread over
    // every thread. Each unit walks its run's sub-runs in order, so every element's sum is the
    // same whatever the units.
    let block_runs = blocks.div_ceil(MAX_BLOCKS);
    let want = 8 * rayon::current_num_threads();
    let per_run = groups * block_runs;
    let row_ranges = row_tiles.min(want.div_ceil(runs.len() * per_run)).max(1);
    let mut partials: Vec<Buffer> = (0..runs.len())
        .map(|_| Buffer::zeros(partial_len))
        .collect();
    let outs: Vec<OutPtr> = partials
        .iter_mut()
        .map(|p| OutPtr(p.as_mut_ptr(), p.len()))
        .collect();
    let units = runs.len() * per_run * row_ranges;
    (0..units).into_par_iter().for_each(|unit| {
        let (r, rest) = (unit / (per_run * row_ranges), unit % (per_run * row_ranges));
        let (g, rest) = (
            rest / (block_runs * row_ranges),
            rest % (block_runs * row_ranges),
        );
        let (block_run, range) = (rest / row_ranges, rest % row_ranges);
        let run = &runs[r];
        let tiles = range * row_tiles / row_ranges..(range + 1) * row_tiles / row_ranges;
        let run_end = ((block_run + 1) * MAX_BLOCKS).min(blocks);
        let first = run.start * sub_len;
        let last = (run.end * sub_len).min(total);
        for sub in (first..last).step_by(sub_len) {
            let sub = sub..(sub + sub_len).min(last);
            let mut block = block_run * MAX_BLOCKS;
            while block < run_end {
                let nb = tile_blocks(isa, run_end - block);
                let b_start = sub.start * grad.stride + g * group_stride + block * NR;
                let b = Right {
                    data: &grad.data[b_start..],
                    k_stride: grad.stride,
                    block_stride: NR,
                    blocks: nb,
                };
                for row_tile in tiles.clone() {
                    let k0 = row_tile * MR;
                    let tap_rows: [usize; MR] =
                        std::array::from_fn(|r| rows[g].values[(k0 + r).min(k_len - 1)]);
                    let at = g * k_len * group_stride + k0 * group_stride + block * NR;
                    let len = (MR.min(k_len - k0) - 1) * group_stride + nb * NR;
                    // SAFETY: units own disjoint (row tile, block) regions of their run's
                    // partial: rows k0.. of this tile, lanes block * NR.. of these blocks.
                    let dst = unsafe { outs[r].slice(at, len) };
                    tile_add(
                        isa,
                        &src.data,
                        &tap_rows,
                        &pixels,
                        sub.clone(),
                        b,
                        (dst, group_stride),
                        k_len - k0,
                    );
                }
                block += nb;
            }
        }
    });
    // Sum the partials in run order, then scatter into the weight layout.
    let mut sum = Buffer::for_overwrite(partial_len);
    sum.par_chunks_mut(4096).enumerate().for_each(|(i, dst)| {
        let at = i * 4096;
        dst.copy_from_slice(&partials[0][at..][..dst.len()]);
        for p in &partials[1..] {
            dst.iter_mut().zip(&p[at..]).for_each(|(d, &v)| *d += v);
        }
    });
    let taps = geo.kernel_h * geo.kernel_w;
    dw.par_chunks_mut(cin_g * taps)
        .enumerate()
        .for_each(|(row, filter)| {
            let (g, co) = (row / cout_g, row % cout_g);
            for c in 0..cin_g {
                for t in 0..taps {
                    filter[c * taps + t] = sum[(g * k_len + t * cin_g + c) * group_stride + co];
                }
            }
        });
}
