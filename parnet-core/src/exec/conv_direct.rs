//! The direct convolution of the executor: the input read in place from its channels-last,
//! zero-bordered layout through the offset-gather micro-kernel
//! (`kernels::conv::direct::kernel`), weights packed once at plan time, and the epilogue applied
//! to each tile as it is stored into the output's layout.
//!
//! Work is cut into tasks of (run of [`MR`]-pixel tiles, run of output-channel blocks), and a
//! task cuts `k` into chunks whose weights stay in L1 while all its tiles use them; every output
//! element is still one sum over `k` in order from zero (a chunk continues the partial sums of
//! the one before), so the result does not depend on how the work is cut or on the thread count.

use rayon::prelude::*;

use super::epilogue::ConvIo;
use super::layout::Layout;
use std::ops::Range;

use crate::kernels::conv::direct::kernel::{
    MAX_BLOCKS, MR, NR, Offsets, Right, Tile, k_chunks, tile_accumulate, tile_blocks,
};
use crate::kernels::simd::Isa;

/// Pixel tiles of one task.
const TASK_TILES: usize = 8;
/// Pixel tiles of one task at most when the weights outweigh the activations (each task then
/// streams its weights once, so fewer, longer runs of tiles).
const MAX_TASK_TILES: usize = 16;

/// A convolution planned for the direct path.
pub struct DirectConv {
    pub input: Layout,
    pub output: Layout,
    pub kernel: (usize, usize),
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    /// `[groups, blocks, k, NR]`, zero past each group's last output channel.
    packed: Vec<f32>,
    /// Per group: the offsets of `k = (i * KW + j) * Cin/g + c` in the input layout.
    ks: Vec<Offsets>,
    /// Per output pixel (image, row, column order): the input offset of its top-left tap.
    bases: Vec<usize>,
    /// Per output pixel: `(image, row, column)`.
    coords: Vec<(usize, usize, usize)>,
    /// `[Cout]`, zero-padded to the output's channel stride.
    pub bias: Vec<f32>,
}

impl DirectConv {
    /// Plans `weight` (`[Cout, Cin/g, KH, KW]`) between the two layouts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input: Layout,
        output: Layout,
        weight: &[f32],
        bias: Vec<f32>,
        kernel: (usize, usize),
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> DirectConv {
        assert!(
            input.pad >= padding,
            "the input layout lacks the conv's padding"
        );
        let (kh, kw) = kernel;
        let (cin_g, cout_g) = (input.channels / groups, output.channels / groups);
        let blocks = cout_g.div_ceil(NR);
        let taps = kh * kw;
        let k_len = taps * cin_g;
        let mut packed = vec![0.0f32; groups * blocks * k_len * NR];
        for g in 0..groups {
            for co_local in 0..cout_g {
                let co = g * cout_g + co_local;
                let (block, l) = (co_local / NR, co_local % NR);
                let dst = &mut packed[(g * blocks + block) * k_len * NR..][..k_len * NR];
                let filter = &weight[co * cin_g * taps..][..cin_g * taps];
                for c in 0..cin_g {
                    for t in 0..taps {
                        dst[(t * cin_g + c) * NR + l] = filter[c * taps + t];
                    }
                }
            }
        }
        let (pw, cs) = (input.padded_width(), input.stride);
        let ks = (0..groups)
            .map(|g| {
                let mut values = Vec::with_capacity(k_len);
                for i in 0..kh {
                    for j in 0..kw {
                        let tap = (i * pw + j) * cs + g * cin_g;
                        values.extend((0..cin_g).map(|c| tap + c));
                    }
                }
                Offsets::new(values)
            })
            .collect();
        let shift = input.pad - padding;
        let mut bases = Vec::with_capacity(output.batch * output.height * output.width);
        let mut coords = Vec::with_capacity(bases.capacity());
        for n in 0..output.batch {
            for oh in 0..output.height {
                for ow in 0..output.width {
                    bases.push(input.padded_pixel(n, oh * stride + shift, ow * stride + shift));
                    coords.push((n, oh, ow));
                }
            }
        }
        let mut bias = bias;
        bias.resize(output.stride, 0.0);
        DirectConv {
            input,
            output,
            kernel,
            stride,
            padding,
            groups,
            packed,
            ks,
            bases,
            coords,
            bias,
        }
    }

    fn cout_g(&self) -> usize {
        self.output.channels / self.groups
    }

    fn blocks(&self) -> usize {
        self.cout_g().div_ceil(NR)
    }

    fn k_len(&self) -> usize {
        self.kernel.0 * self.kernel.1 * (self.input.channels / self.groups)
    }

    /// Multiply-adds of one run.
    pub fn macs(&self) -> usize {
        self.bases.len() * self.output.channels * self.k_len()
    }

    /// Runs the convolution: `io.output` gets the epilogue of every sum.
    ///
    /// Tasks are (group, run of up to [`MAX_BLOCKS`] output-channel blocks, run of up to
    /// [`TASK_TILES`] or [`MAX_TASK_TILES`] pixel tiles). Rayon hands each thread contiguous ranges of tasks, so the
    /// order decides what a thread keeps in its caches: when the packed weights outweigh the
    /// activations, block-run first (a thread passes over many tiles with the same weights);
    /// otherwise tile-run first (a thread writes whole pixels, every channel, and reads whole
    /// residual pixels, in address order).
    pub fn run(&self, isa: Isa, io: &ConvIo<'_>) {
        let tiles = self.bases.len().div_ceil(MR);
        let blocks = self.blocks();
        let block_runs = blocks.div_ceil(MAX_BLOCKS);
        let activations = self.bases.len() * (self.input.stride + self.output.stride);
        let tile_major = self.packed.len() / self.groups <= activations;
        let most = if tile_major {
            TASK_TILES
        } else {
            MAX_TASK_TILES
        };
        let tile_runs = tiles.div_ceil(most);
        // Runs of near-equal length, the longest `most`.
        let run_len = tiles.div_ceil(tile_runs);
        let tasks = self.groups * block_runs * tile_runs;
        (0..tasks).into_par_iter().for_each_init(
            || Box::new([[[0.0f32; MAX_BLOCKS * NR]; MR]; MAX_TASK_TILES]),
            |partials, task| {
                let (g, rest) = (
                    task / (block_runs * tile_runs),
                    task % (block_runs * tile_runs),
                );
                let (b, t) = if tile_major {
                    (rest % block_runs, rest / block_runs)
                } else {
                    (rest / tile_runs, rest % tile_runs)
                };
                let tile_range = t * run_len..((t + 1) * run_len).min(tiles);
                let block_range = b * MAX_BLOCKS..((b + 1) * MAX_BLOCKS).min(blocks);
                self.run_task(isa, io, g, tile_range, block_range, partials);
            },
        );
    }

    /// One task, `k` cut into [`k_chunks`]: each chunk's packed weights are used by every tile
    /// of the task while they are in L1, the tiles' partial sums kept in `partials` between
    /// chunks (so every element is still one sum over `k` in order).
    fn run_task(
        &self,
        isa: Isa,
        io: &ConvIo<'_>,
        g: usize,
        tiles: Range<usize>,
        blocks: Range<usize>,
        partials: &mut [Tile; MAX_TASK_TILES],
    ) {
        let (k_len, all_blocks, cout_g) = (self.k_len(), self.blocks(), self.cout_g());
        let pixels = self.bases.len();
        let ks = &self.ks[g];
        // Lanes past the group's channels may be padded only in the last group.
        let may_pad = g + 1 == self.groups;
        let mut block = blocks.start;
        while block < blocks.end {
            let nb = tile_blocks(isa, blocks.end - block);
            let weights = Right {
                data: &self.packed[(g * all_blocks + block) * k_len * NR..],
                k_stride: NR,
                block_stride: k_len * NR,
                blocks: nb,
            };
            let co0 = g * cout_g + block * NR;
            let lanes = (nb * NR).min(cout_g - block * NR);
            for (chunk, right) in k_chunks(k_len, weights) {
                let (first, last) = (chunk.start == 0, chunk.end == k_len);
                for (t, partial) in tiles.clone().zip(partials.iter_mut()) {
                    let first_pixel = t * MR;
                    let rows: [usize; MR] =
                        std::array::from_fn(|r| self.bases[(first_pixel + r).min(pixels - 1)]);
                    let valid = MR.min(pixels - first_pixel);
                    let coords = &self.coords[first_pixel..first_pixel + valid];
                    // The last chunk stores through the epilogue, in registers where it can.
                    let stored = last && {
                        io.prefetch(coords, (co0, lanes));
                        let start = (!first).then_some(&*partial);
                        let kernel = (&rows, (ks, chunk.clone()));
                        io.finish_in_registers(
                            isa,
                            kernel,
                            start,
                            right,
                            coords,
                            (co0, lanes),
                            may_pad,
                        )
                    };
                    if stored {
                        continue;
                    }
                    let acc = (&mut *partial, first);
                    tile_accumulate(isa, io.input, &rows, ks, chunk.clone(), right, acc);
                    if last {
                        io.finish(
                            isa,
                            (partial.as_flattened(), MAX_BLOCKS * NR),
                            coords,
                            (co0, lanes),
                            may_pad,
                        );
                    }
                }
            }
            block += nb;
        }
    }
}
