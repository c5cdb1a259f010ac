//! Backward kernels: input gradient (a transposed convolution, or `col2im(W^T dY)`), weight
//! gradient (`dY im2col(x)^T` summed over fixed groups of bands) and bias gradient.
//!
//! All three overwrite their output and partition the work by shape only, so they are
//! bit-identical for any thread count.

use std::ops::Range;

use rayon::prelude::*;

use super::forward::{
    MIN_TASKS, PER_IMAGE_MIN_BATCH, bands, blocks, col_scratch_len, forward_unchecked,
};
use super::{Conv2dGeometry, Conv2dParams};
use crate::error::Result;
use crate::kernels::im2col::{PatchGeometry, col2im_add, im2col};
use crate::kernels::{MatMut, MatRef, gemm};
use crate::tensor::Buffer;

/// At most this many per-task partial weight gradients are summed.
const MAX_WEIGHT_PARTIALS: usize = 8;
/// ... and together they hold at most this many floats (32 MiB).
const WEIGHT_PARTIALS_BUDGET: usize = 8 << 20;
/// With fewer images than [`PER_IMAGE_MIN_BATCH`], the col2im input gradient splits each group's
/// input channels into blocks until there are about this many tasks.
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

/// `dx = col2im(W_g^T dY_g)` per image, group and block of input channels (each task owns a
/// contiguous block of `dx` and adds its bands in order).
fn input_grad_col2im(geo: &Conv2dGeometry, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let bands = bands(geo);
    let (cin_g, groups) = (geo.in_per_group(), geo.params.groups);
    let blocks_per_group = if geo.batch >= PER_IMAGE_MIN_BATCH {
        1
    } else {
        INPUT_GRAD_MIN_TASKS
            .div_ceil(geo.batch * groups)
            .clamp(1, cin_g)
    };
    let block = cin_g.div_ceil(blocks_per_group);
    let plane = geo.height * geo.width;
    // Cut dx into (image, group, channel block) pieces, in memory order.
    let mut pieces: Vec<(usize, usize, Range<usize>, &mut [f32])> = Vec::new();
    let mut rest = dx;
    for n in 0..geo.batch {
        for g in 0..groups {
            for c0 in (0..cin_g).step_by(block) {
                let c1 = (c0 + block).min(cin_g);
                let (piece, tail) = rest.split_at_mut((c1 - c0) * plane);
                pieces.push((n, g, c0..c1, piece));
                rest = tail;
            }
        }
    }
    let scratch = block
        * geo.kernel_h
        * geo.kernel_w
        * bands.iter().map(|b| b.len()).max().unwrap_or(0)
        * geo.out_w;
    pieces.into_par_iter().for_each_init(
        || Buffer::for_overwrite(scratch),
        |col, (n, g, channels, piece)| {
            input_grad_block(geo, dy, w, &bands, n, g, channels, col, piece);
        },
    );
}

/// The input gradient of input channels `channels` of group `g` of image `n` into `dx_block`.
#[allow(clippy::too_many_arguments)]
fn input_grad_block(
    geo: &Conv2dGeometry,
    dy: &[f32],
    w: &[f32],
    bands: &[Range<usize>],
    n: usize,
    g: usize,
    channels: Range<usize>,
    col: &mut [f32],
    dx_block: &mut [f32],
) {
    let (cout_g, taps) = (geo.out_per_group(), geo.taps_per_group());
    let kk = geo.kernel_h * geo.kernel_w;
    let plane_out = geo.out_h * geo.out_w;
    let patches = PatchGeometry {
        channels: channels.len(),
        ..geo.patches()
    };
    let rows = channels.len() * kk;
    // W_g^T restricted to these channels' taps: [rows, cout_g], element (r, co) at co * taps + r.
    let w_t = MatRef {
        data: &w[g * cout_g * taps + channels.start * kk..],
        rows,
        cols: cout_g,
        row_stride: 1,
        col_stride: taps,
    };
    let dy_group = &dy[(n * geo.out_channels + g * cout_g) * plane_out..];
    dx_block.fill(0.0);
    for band in bands {
        let pixels = band.len() * geo.out_w;
        let dy_band = MatRef {
            data: &dy_group[band.start * geo.out_w..],
            rows: cout_g,
            cols: pixels,
            row_stride: plane_out,
            col_stride: 1,
        };
        let dcol = &mut col[..rows * pixels];
        gemm(
            1.0,
            w_t,
            dy_band,
            0.0,
            MatMut::row_major(dcol, rows, pixels),
        );
        col2im_add(&patches, dcol, band.clone(), dx_block);
    }
}

/// `dW_g = sum over images and bands of dY_band im2col(x)_band^T`.
///
/// The (image, band) units are cut into at most [`MAX_WEIGHT_PARTIALS`] fixed runs; each task
/// takes one run, one group and one block of that group's input channels (so no im2col is done
/// twice) and sums its units into its own `[Cout/g, block taps]` buffer. The buffers are then
/// added in run order.
pub(super) fn backward_weight_unchecked(
    geo: &Conv2dGeometry,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
) {
    let bands = bands(geo);
    let units = geo.batch * bands.len();
    let runs = MAX_WEIGHT_PARTIALS
        .min(WEIGHT_PARTIALS_BUDGET / dw.len().max(1))
        .clamp(1, units);
    let per_run = units.div_ceil(runs);
    let runs = units.div_ceil(per_run);
    let groups = geo.params.groups;
    let (cin_g, cout_g, kk) = (
        geo.in_per_group(),
        geo.out_per_group(),
        geo.kernel_h * geo.kernel_w,
    );
    let channel_blocks = blocks(cin_g, MIN_TASKS.div_ceil(runs * groups), 1);
    let scratch = col_scratch_len(geo, &bands, channel_blocks[0].len());
    let tasks: Vec<(usize, usize, &Range<usize>)> = (0..runs)
        .flat_map(|r| (0..groups).map(move |g| (r, g)))
        .flat_map(|(r, g)| channel_blocks.iter().map(move |c| (r, g, c)))
        .collect();
    let sums: Vec<Buffer> = tasks
        .par_iter()
        .map_init(
            || Buffer::for_overwrite(scratch),
            |col, &(run, g, channels)| {
                let mut acc = Buffer::zeros(cout_g * channels.len() * kk);
                for unit in run * per_run..((run + 1) * per_run).min(units) {
                    let (n, band) = (unit / bands.len(), &bands[unit % bands.len()]);
                    weight_grad_tile(geo, x, dy, n, band, g, channels, col, &mut acc);
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

/// `acc += dY_band im2col(x)_band^T` for image `n`, group `g` and its input channels `channels`:
/// `acc` is `[Cout/g, channels.len() * KH * KW]`.
#[allow(clippy::too_many_arguments)]
fn weight_grad_tile(
    geo: &Conv2dGeometry,
    x: &[f32],
    dy: &[f32],
    n: usize,
    band: &Range<usize>,
    g: usize,
    channels: &Range<usize>,
    col: &mut [f32],
    acc: &mut [f32],
) {
    let (cin_g, cout_g) = (geo.in_per_group(), geo.out_per_group());
    let taps = channels.len() * geo.kernel_h * geo.kernel_w;
    let pixels = band.len() * geo.out_w;
    let plane_in = geo.height * geo.width;
    let plane_out = geo.out_h * geo.out_w;
    let x_block = &x[(n * geo.in_channels + g * cin_g + channels.start) * plane_in..]
        [..channels.len() * plane_in];
    let dy_band = MatRef {
        data: &dy[(n * geo.out_channels + g * cout_g) * plane_out + band.start * geo.out_w..],
        rows: cout_g,
        cols: pixels,
        row_stride: plane_out,
        col_stride: 1,
    };
    let cols_t = if geo.is_pointwise() {
        MatRef {
            data: &x_block[band.start * geo.out_w..],
            rows: channels.len(),
            cols: pixels,
            row_stride: plane_in,
            col_stride: 1,
        }
        .t()
    } else {
        let patches = PatchGeometry {
            channels: channels.len(),
            ..geo.patches()
        };
        im2col(&patches, x_block, band.clone(), col);
        MatRef::row_major(&col[..taps * pixels], taps, pixels).t()
    };
    gemm(
        1.0,
        dy_band,
        cols_t,
        1.0,
        MatMut::row_major(acc, cout_g, taps),
    );
}
