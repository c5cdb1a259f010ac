//! Backward kernels: input gradient (a transposed convolution, or `col2im(W^T dY)`), weight
//! gradient (`dY im2col(x)^T` summed over fixed groups of bands) and bias gradient.
//!
//! All three overwrite their output and partition the work by shape only, so they are
//! bit-identical for any thread count.

use std::ops::Range;

use rayon::prelude::*;

use super::forward::{
    CHUNK_TASKS_MIN_CHUNKS, MIN_TASKS, Tiling, blocks, forward_unchecked, tile_columns,
};
use super::{Conv2dGeometry, Conv2dParams};
use crate::error::Result;
use crate::kernels::im2col::{PatchGeometry, col2im_add};
use crate::kernels::{MatMut, MatRef, gemm};
use crate::tensor::Buffer;

/// At most this many per-task partial weight gradients are summed.
const MAX_WEIGHT_PARTIALS: usize = 16;
/// ... and together they hold at most this many floats (32 MiB).
const WEIGHT_PARTIALS_BUDGET: usize = 8 << 20;
/// With fewer image chunks than [`CHUNK_TASKS_MIN_CHUNKS`], the col2im input gradient splits
/// each group's input channels into blocks until there are about this many tasks.
const INPUT_GRAD_MIN_TASKS: usize = 8;

/// Graph-free input gradient: `grad_x` (`x_dims`, overwritten) from `grad_out`
/// (`[N, Cout, Ho, Wo]`) and `w` (`w_dims`).
pub fn conv2d_backward_input(
    grad_out: &[f32],
    w: &[f32],
    w_dims: [usize; 4],
    x_dims: [usize; 4],
    params: Conv2dParams,
    grad_x: &mut [f32],
) -> Result<()> {
    let geo = Conv2dGeometry::new(x_dims, w_dims, params)?;
    Conv2dGeometry::check_len("output gradient", grad_out.len(), &geo.out_dims())?;
    Conv2dGeometry::check_len("weight", w.len(), &w_dims)?;
    Conv2dGeometry::check_len("input gradient", grad_x.len(), &x_dims)?;
    backward_input_unchecked(&geo, grad_out, w, grad_x);
    Ok(())
}

/// Graph-free weight gradient: `grad_w` (`w_dims`, overwritten) from `x` (`x_dims`) and
/// `grad_out` (`[N, Cout, Ho, Wo]`).
pub fn conv2d_backward_weight(
    x: &[f32],
    x_dims: [usize; 4],
    grad_out: &[f32],
    w_dims: [usize; 4],
    params: Conv2dParams,
    grad_w: &mut [f32],
) -> Result<()> {
    let geo = Conv2dGeometry::new(x_dims, w_dims, params)?;
    Conv2dGeometry::check_len("input", x.len(), &x_dims)?;
    Conv2dGeometry::check_len("output gradient", grad_out.len(), &geo.out_dims())?;
    Conv2dGeometry::check_len("weight gradient", grad_w.len(), &w_dims)?;
    backward_weight_unchecked(&geo, x, grad_out, grad_w);
    Ok(())
}

/// Graph-free bias gradient: `grad_b[c]` (overwritten) = sum of `grad_out[:, c, :, :]` over
/// `out_dims = [N, Cout, Ho, Wo]`, accumulated in f64 in a fixed order.
pub fn conv2d_backward_bias(
    grad_out: &[f32],
    out_dims: [usize; 4],
    grad_b: &mut [f32],
) -> Result<()> {
    Conv2dGeometry::check_len("output gradient", grad_out.len(), &out_dims)?;
    Conv2dGeometry::check_len("bias gradient", grad_b.len(), &out_dims[1..2])?;
    bias_grad(grad_out, out_dims, grad_b);
    Ok(())
}

pub(super) fn backward_bias_unchecked(geo: &Conv2dGeometry, dy: &[f32], db: &mut [f32]) {
    bias_grad(dy, geo.out_dims(), db);
}

fn bias_grad(dy: &[f32], [batch, channels, h, w]: [usize; 4], db: &mut [f32]) {
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

/// Whether the input gradient is a stride-1 convolution of `dY` with the flipped, transposed
/// weights (padding `K - 1 - p`), which reuses the forward kernel and needs no col2im.
fn input_grad_is_transposed_conv(geo: &Conv2dGeometry) -> bool {
    geo.params.stride == 1 && geo.kernel_h == geo.kernel_w && geo.params.padding < geo.kernel_h
}

pub(super) fn backward_input_unchecked(
    geo: &Conv2dGeometry,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
) {
    if geo.batch == 0 {
        return;
    }
    if input_grad_is_transposed_conv(geo) {
        let (k, p) = (geo.kernel_h, geo.params.padding);
        let (cin_g, cout_g, kk) = (geo.in_per_group(), geo.out_per_group(), k * k);
        // flipped[g*cin_g + ci][co][i][j] = w[g*cout_g + co][ci][k-1-i][k-1-j]
        let mut flipped = Buffer::for_overwrite(w.len());
        flipped
            .par_chunks_mut(cout_g * kk)
            .enumerate()
            .for_each(|(c_in, dst)| {
                let (g, ci) = (c_in / cin_g, c_in % cin_g);
                for (co, dst) in dst.chunks_mut(kk).enumerate() {
                    let src = &w[((g * cout_g + co) * cin_g + ci) * kk..][..kk];
                    dst.iter_mut()
                        .zip(src.iter().rev())
                        .for_each(|(d, &s)| *d = s);
                }
            });
        let transposed = Conv2dGeometry {
            batch: geo.batch,
            in_channels: geo.out_channels,
            height: geo.out_h,
            width: geo.out_w,
            out_channels: geo.in_channels,
            kernel_h: k,
            kernel_w: k,
            params: Conv2dParams::new(1, k - 1 - p, geo.params.groups),
            out_h: geo.height,
            out_w: geo.width,
        };
        forward_unchecked(&transposed, dy, &flipped, None, dx);
    } else {
        input_grad_col2im(geo, dy, w, dx);
    }
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
fn input_grad_col2im(geo: &Conv2dGeometry, dy: &[f32], w: &[f32], dx: &mut [f32]) {
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

/// How a weight gradient over `units` pieces of work (tiles or images) is cut into runs, each
/// summed into its own partial gradient of `weight_len` floats: at most [`MAX_WEIGHT_PARTIALS`]
/// runs holding at most [`WEIGHT_PARTIALS_BUDGET`] floats together, contiguous and of sizes that
/// differ by at most one. Depends only on the two counts, so the partials (added in run order)
/// give the same bits for any thread count.
pub(super) fn weight_partial_runs(weight_len: usize, units: usize) -> Vec<Range<usize>> {
    let runs = MAX_WEIGHT_PARTIALS
        .min(WEIGHT_PARTIALS_BUDGET / weight_len.max(1))
        .clamp(1, units.max(1));
    (0..runs)
        .map(|r| r * units / runs..(r + 1) * units / runs)
        .collect()
}

/// `dW_g = sum over tiles of dY_tile im2col(x)_tile^T`.
///
/// The tiles (image chunk, band) are cut into at most [`MAX_WEIGHT_PARTIALS`] fixed runs; each
/// task takes one run, one group and one block of that group's input channels (so no im2col is
/// done twice) and sums its tiles into its own `[Cout/g, block taps]` buffer. The buffers are
/// then added in run order.
pub(super) fn backward_weight_unchecked(
    geo: &Conv2dGeometry,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
) {
    if geo.batch == 0 {
        dw.fill(0.0);
        return;
    }
    if super::direct::applies(geo) {
        return super::direct::weight::backward_weight(geo, x, dy, dw);
    }
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
