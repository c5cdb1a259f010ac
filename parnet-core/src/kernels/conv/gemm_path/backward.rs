//! Backward through GEMM: the input gradient `col2im(W^T dY)`, the weight gradient
//! (`dY im2col(x)^T` summed over fixed groups of bands) and the bias gradient.
//!
//! All three overwrite their output and partition the work by shape only, so they are
//! bit-identical for any thread count.

use std::ops::Range;

use rayon::prelude::*;

use super::forward::{CHUNK_TASKS_MIN_CHUNKS, MIN_TASKS, Tiling, blocks, tile_columns};
use crate::kernels::conv::Conv2dGeometry;
use crate::kernels::conv::partials::weight_partial_runs;
use crate::kernels::im2col::{PatchGeometry, col2im_add};
use crate::kernels::{MatMut, MatRef, gemm};
use crate::tensor::Buffer;

/// With fewer image chunks than [`CHUNK_TASKS_MIN_CHUNKS`], the col2im input gradient splits
/// each group's input channels into blocks until there are about this many tasks.
const INPUT_GRAD_MIN_TASKS: usize = 8;

pub(crate) fn bias_grad(dy: &[f32], [batch, channels, h, w]: [usize; 4], db: &mut [f32]) {
    let plane = h * w;
    db.par_iter_mut().enumerate().for_each(|(c, d)| {
        let total: f64 = (0..batch)
            .map(|n| {
                let start = (n * channels + c) * plane;
                dy[start..start + plane]
                    .iter()
                    .map(|&v| v as f64)
                    .sum::<f64>()
            })
            .sum();
        *d = total as f32;
    });
}

/// The output gradient of one tile, `[Cout/g, images * band pixels]`: a view of `dy` for a
/// single image, else gathered into `scratch`.
fn tile_output_grad<'a>(
    geo: &Conv2dGeometry,
    dy: &'a [f32],
    images: &Range<usize>,
    band: &Range<usize>,
    g: usize,
    scratch: &'a mut [f32],
) -> MatRef<'a> {
    let cout_g = geo.out_per_group();
    let plane_out = geo.out_h * geo.out_w;
    let band_pixels = band.len() * geo.out_w;
    let start = |n: usize, r: usize| {
        (n * geo.out_channels + g * cout_g + r) * plane_out + band.start * geo.out_w
    };
    if images.len() == 1 {
        return MatRef {
            data: &dy[start(images.start, 0)..],
            rows: cout_g,
            cols: band_pixels,
            row_stride: plane_out,
            col_stride: 1,
        };
    }
    let pixels = images.len() * band_pixels;
    for r in 0..cout_g {
        for (k, n) in images.clone().enumerate() {
            scratch[r * pixels + k * band_pixels..][..band_pixels]
                .copy_from_slice(&dy[start(n, r)..][..band_pixels]);
        }
    }
    MatRef::row_major(&scratch[..cout_g * pixels], cout_g, pixels)
}

/// `dx = col2im(W_g^T dY_g)` per image chunk, group and block of input channels: each task owns
/// those channels' planes of `dx` in every image of its chunk and adds its bands in order.
pub(crate) fn input_grad_col2im(geo: &Conv2dGeometry, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let tiling = Tiling::new(geo);
    let chunks = tiling.chunks(geo.batch);
    let (cin_g, groups) = (geo.in_per_group(), geo.params.groups);
    let wanted = if chunks.len() >= CHUNK_TASKS_MIN_CHUNKS {
        1
    } else {
        INPUT_GRAD_MIN_TASKS.div_ceil(chunks.len() * groups)
    };
    let channel_blocks = blocks(cin_g, wanted, 1);
    let plane = geo.height * geo.width;
    // Cut dx into (image, group, channel block) pieces, in memory order, and hand each to the
    // task of its (chunk, group, block).
    let mut tasks: Vec<Vec<&mut [f32]>> = (0..chunks.len() * groups * channel_blocks.len())
        .map(|_| Vec::new())
        .collect();
    let mut rest = dx;
    for n in 0..geo.batch {
        for g in 0..groups {
            for (b, channels) in channel_blocks.iter().enumerate() {
                let (piece, tail) = rest.split_at_mut(channels.len() * plane);
                tasks[((n / tiling.images) * groups + g) * channel_blocks.len() + b].push(piece);
                rest = tail;
            }
        }
    }
    let kk = geo.kernel_h * geo.kernel_w;
    let pixels = tiling.max_pixels(geo);
    let dcol_len = channel_blocks[0].len() * kk * pixels;
    let dy_len = if tiling.images > 1 {
        geo.out_per_group() * pixels
    } else {
        0
    };
    tasks.into_par_iter().enumerate().for_each_init(
        || {
            (
                Buffer::for_overwrite(dcol_len),
                Buffer::for_overwrite(dy_len),
            )
        },
        |(dcol, dy_scratch), (t, mut pieces)| {
            let chunk = &chunks[t / (groups * channel_blocks.len())];
            let g = t / channel_blocks.len() % groups;
            let channels = &channel_blocks[t % channel_blocks.len()];
            for piece in pieces.iter_mut() {
                piece.fill(0.0);
            }
            for band in &tiling.bands {
                let dy_tile = tile_output_grad(geo, dy, chunk, band, g, dy_scratch);
                input_grad_tile(geo, w, g, channels, band, dy_tile, dcol, &mut pieces);
            }
        },
    );
}

/// `pieces[k] += col2im(W_block^T dY_tile)` for the images `k` of one tile, where `W_block` is
/// the weight of input channels `channels` of group `g`.
#[allow(clippy::too_many_arguments)]
fn input_grad_tile(
    geo: &Conv2dGeometry,
    w: &[f32],
    g: usize,
    channels: &Range<usize>,
    band: &Range<usize>,
    dy_tile: MatRef<'_>,
    dcol: &mut [f32],
    pieces: &mut [&mut [f32]],
) {
    let (cout_g, taps) = (geo.out_per_group(), geo.taps_per_group());
    let kk = geo.kernel_h * geo.kernel_w;
    let rows = channels.len() * kk;
    let pixels = dy_tile.cols;
    // W_g^T restricted to these channels' taps: [rows, cout_g], element (r, co) at co * taps + r.
    let w_t = MatRef {
        data: &w[g * cout_g * taps + channels.start * kk..],
        rows,
        cols: cout_g,
        row_stride: 1,
        col_stride: taps,
    };
    let dcol = &mut dcol[..rows * pixels];
    gemm(
        1.0,
        w_t,
        dy_tile,
        0.0,
        MatMut::row_major(dcol, rows, pixels),
    );
    let patches = PatchGeometry {
        channels: channels.len(),
        ..geo.patches()
    };
    let band_pixels = band.len() * geo.out_w;
    for (k, piece) in pieces.iter_mut().enumerate() {
        col2im_add(
            &patches,
            &dcol[k * band_pixels..],
            pixels,
            band.clone(),
            piece,
        );
    }
}

/// `dW_g = sum over tiles of dY_tile im2col(x)_tile^T`.
///
/// The tiles (image chunk, band) are cut into at most [`MAX_WEIGHT_PARTIALS`] fixed runs; each
/// task takes one run, one group and one block of that group's input channels (so no im2col is
/// done twice) and sums its tiles into its own `[Cout/g, block taps]` buffer. The buffers are
/// then added in run order.
pub(crate) fn weight_grad(geo: &Conv2dGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let tiling = Tiling::new(geo);
    let chunks = tiling.chunks(geo.batch);
    let bands = &tiling.bands;
    let run_units = weight_partial_runs(dw.len(), chunks.len() * bands.len());
    let runs = run_units.len();
    let groups = geo.params.groups;
    let (cout_g, kk) = (geo.out_per_group(), geo.kernel_h * geo.kernel_w);
    let channel_blocks = blocks(geo.in_per_group(), MIN_TASKS.div_ceil(runs * groups), 1);
    let col_len = tiling.col_len(geo, channel_blocks[0].len());
    let dy_len = if tiling.images > 1 {
        cout_g * tiling.max_pixels(geo)
    } else {
        0
    };
    let image_in = geo.in_channels * geo.height * geo.width;
    let in_place = tiling.reads_in_place(geo);
    let tasks: Vec<(usize, usize, &Range<usize>)> = (0..runs)
        .flat_map(|r| (0..groups).map(move |g| (r, g)))
        .flat_map(|(r, g)| channel_blocks.iter().map(move |c| (r, g, c)))
        .collect();
    let sums: Vec<Buffer> = tasks
        .par_iter()
        .map_init(
            || {
                (
                    Buffer::for_overwrite(col_len),
                    Buffer::for_overwrite(dy_len),
                )
            },
            |(col, dy_scratch), &(run, g, channels)| {
                let taps = channels.len() * kk;
                let mut acc = Buffer::zeros(cout_g * taps);
                for unit in run_units[run].clone() {
                    let (images, band) = (&chunks[unit / bands.len()], &bands[unit % bands.len()]);
                    let dy_tile = tile_output_grad(geo, dy, images, band, g, dy_scratch);
                    let x_chunk = &x[images.start * image_in..images.end * image_in];
                    let cols = tile_columns(
                        geo,
                        x_chunk,
                        images.len(),
                        band,
                        g,
                        channels.clone(),
                        in_place,
                        col,
                    );
                    gemm(
                        1.0,
                        dy_tile,
                        cols.t(),
                        1.0,
                        MatMut::row_major(&mut acc, cout_g, taps),
                    );
                }
                acc
            },
        )
        .collect();
    // dw row (g, co): for each channel block, the sum over runs of that task's row co.
    let tasks_per_run = groups * channel_blocks.len();
    dw.par_chunks_mut(geo.taps_per_group())
        .enumerate()
        .for_each(|(row, dst)| {
            let (g, co) = (row / cout_g, row % cout_g);
            for (b, channels) in channel_blocks.iter().enumerate() {
                let width = channels.len() * kk;
                let dst = &mut dst[channels.start * kk..channels.end * kk];
                for run in 0..runs {
                    let sum = &sums[run * tasks_per_run + g * channel_blocks.len() + b];
                    let src = &sum[co * width..(co + 1) * width];
                    if run == 0 {
                        dst.copy_from_slice(src);
                    } else {
                        dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
                    }
                }
            }
        });
}
