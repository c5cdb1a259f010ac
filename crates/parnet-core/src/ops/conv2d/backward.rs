//! Backward kernels: input gradient (a transposed convolution, or `col2im(W^T dY)`), weight
//! gradient (`dY im2col(x)^T` summed over fixed groups of bands) and bias gradient.
//!
//! All three overwrite their output and partition the work by shape only, so they are
//! bit-identical for any thread count.

use std::ops::Range;

use rayon::prelude::*;

use super::forward::{PER_IMAGE_MIN_BATCH, bands, col_scratch_len, forward_unchecked};
use super::{Conv2dGeometry, Conv2dParams};
use crate::error::Result;
use crate::kernels::im2col::{PatchGeometry, col2im_add, im2col};
use crate::kernels::{MatMut, MatRef, gemm};
use crate::tensor::Buffer;

/// At most this many per-task partial weight gradients are summed.
const MAX_WEIGHT_PARTIALS: usize = 8;
/// ... and together they hold at most this many floats (32 MiB).
const WEIGHT_PARTIALS_BUDGET: usize = 8 << 20;
/// Elements per task when summing the partial weight gradients.
const REDUCE_CHUNK: usize = 1 << 14;
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
        for (dst_index, dst) in flipped.chunks_mut(kk).enumerate() {
            let (c_in, co) = (dst_index / cout_g, dst_index % cout_g);
            let (g, ci) = (c_in / cin_g, c_in % cin_g);
            let src = &w[((g * cout_g + co) * cin_g + ci) * kk..][..kk];
            dst.iter_mut()
                .zip(src.iter().rev())
                .for_each(|(d, &s)| *d = s);
        }
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

/// `dW_g = sum over images and bands of dY_band im2col(x)_band^T`, accumulated per fixed run of
/// (image, band) units into partial sums that are added in run order.
pub(super) fn backward_weight_unchecked(
    geo: &Conv2dGeometry,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
) {
    let bands = bands(geo);
    let units = geo.batch * bands.len();
    let partials = MAX_WEIGHT_PARTIALS
        .min(WEIGHT_PARTIALS_BUDGET / dw.len().max(1))
        .clamp(1, units);
    let per_partial = units.div_ceil(partials);
    let partials = units.div_ceil(per_partial);
    let scratch = col_scratch_len(geo, &bands);
    let accumulate = |col: &mut [f32], run: Range<usize>, acc: &mut [f32]| {
        for unit in run {
            let (n, band) = (unit / bands.len(), &bands[unit % bands.len()]);
            weight_grad_band(geo, x, dy, n, band, col, acc);
        }
    };
    if partials == 1 {
        dw.fill(0.0);
        let mut col = Buffer::for_overwrite(scratch);
        accumulate(&mut col, 0..units, dw);
        return;
    }
    let sums: Vec<Buffer> = (0..partials)
        .into_par_iter()
        .map_init(
            || Buffer::for_overwrite(scratch),
            |col, p| {
                let mut acc = Buffer::zeros(dw.len());
                accumulate(
                    col,
                    p * per_partial..((p + 1) * per_partial).min(units),
                    &mut acc,
                );
                acc
            },
        )
        .collect();
    dw.par_chunks_mut(REDUCE_CHUNK)
        .enumerate()
        .for_each(|(k, out)| {
            let span = k * REDUCE_CHUNK..k * REDUCE_CHUNK + out.len();
            out.copy_from_slice(&sums[0][span.clone()]);
            for s in &sums[1..] {
                out.iter_mut()
                    .zip(&s[span.clone()])
                    .for_each(|(o, &v)| *o += v);
            }
        });
}

/// `acc += dY_band im2col(x)_band^T` for every group of image `n`.
fn weight_grad_band(
    geo: &Conv2dGeometry,
    x: &[f32],
    dy: &[f32],
    n: usize,
    band: &Range<usize>,
    col: &mut [f32],
    acc: &mut [f32],
) {
    let (cin_g, cout_g, taps) = (
        geo.in_per_group(),
        geo.out_per_group(),
        geo.taps_per_group(),
    );
    let pixels = band.len() * geo.out_w;
    let plane_in = geo.height * geo.width;
    let plane_out = geo.out_h * geo.out_w;
    let patches = geo.patches();
    for g in 0..geo.params.groups {
        let x_group = &x[(n * geo.in_channels + g * cin_g) * plane_in..][..cin_g * plane_in];
        let dy_band = MatRef {
            data: &dy[(n * geo.out_channels + g * cout_g) * plane_out + band.start * geo.out_w..],
            rows: cout_g,
            cols: pixels,
            row_stride: plane_out,
            col_stride: 1,
        };
        let cols_t = if geo.is_pointwise() {
            MatRef {
                data: &x_group[band.start * geo.out_w..],
                rows: cin_g,
                cols: pixels,
                row_stride: plane_in,
                col_stride: 1,
            }
            .t()
        } else {
            im2col(&patches, x_group, band.clone(), col);
            MatRef::row_major(&col[..taps * pixels], taps, pixels).t()
        };
        let acc_group = MatMut::row_major(
            &mut acc[g * cout_g * taps..(g + 1) * cout_g * taps],
            cout_g,
            taps,
        );
        gemm(1.0, dy_band, cols_t, 1.0, acc_group);
    }
}
