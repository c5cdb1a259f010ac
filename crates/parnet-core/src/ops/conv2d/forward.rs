//! Forward kernel: per image and band of output rows, `weight_g x im2col(x_g)` through the engine
//! GEMM for each group; 1x1 stride-1 unpadded convolutions multiply by the image directly.

use std::ops::Range;

use rayon::prelude::*;

use super::{Conv2dGeometry, Conv2dParams};
use crate::error::{Result, shape_error};
use crate::kernels::im2col::im2col;
use crate::kernels::{MatMut, MatRef, gemm};
use crate::tensor::Buffer;

/// Upper bound on the output pixels of one band (the GEMM's N).
const MAX_BAND_PIXELS: usize = 512;
/// Lower bound on the output pixels of one band: matrixmultiply packs the whole weight matrix
/// once per GEMM call, so a narrow band would re-pack it for little work.
const MIN_BAND_PIXELS: usize = 192;
/// Target size of one band's column matrix, in floats (1 MiB: the L2 of one core).
const COL_BUDGET: usize = 1 << 18;
/// From this batch size on, rayon tasks take whole images; below it, (image, band, block of
/// output channels) tiles.
pub(super) const PER_IMAGE_MIN_BATCH: usize = 8;
/// Below [`PER_IMAGE_MIN_BATCH`], output channels are split into blocks until there are this many
/// tiles (so both cores of the target machine and a few more are busy) ...
pub(super) const MIN_TASKS: usize = 4;
/// ... but blocks keep at least this many output channels (each block repeats the im2col).
const MIN_BLOCK_CHANNELS: usize = 256;

/// The bands of output rows the kernels work on: about `COL_BUDGET / taps` pixels each (within
/// `MIN_BAND_PIXELS..=MAX_BAND_PIXELS`), whole rows, near-equal sizes. Depends only on the shape.
pub(super) fn bands(geo: &Conv2dGeometry) -> Vec<Range<usize>> {
    let taps = if geo.is_pointwise() {
        1
    } else {
        geo.taps_per_group()
    };
    let target = (COL_BUDGET / taps).clamp(MIN_BAND_PIXELS, MAX_BAND_PIXELS);
    let rows = ((target + geo.out_w / 2) / geo.out_w).clamp(1, geo.out_h);
    let count = geo.out_h.div_ceil(rows);
    let rows = geo.out_h.div_ceil(count);
    (0..geo.out_h)
        .step_by(rows)
        .map(|r| r..(r + rows).min(geo.out_h))
        .collect()
}

/// Splits `0..len` into at most `wanted` near-equal blocks of at least `min_len` (one block if
/// `len < 2 * min_len`), returned as ranges.
pub(super) fn blocks(len: usize, wanted: usize, min_len: usize) -> Vec<Range<usize>> {
    let count = wanted.clamp(1, (len / min_len.max(1)).max(1));
    let size = len.div_ceil(count);
    (0..len)
        .step_by(size.max(1))
        .map(|s| s..(s + size).min(len))
        .collect()
}

/// Floats of column scratch a task needs for `channels` input channels over the widest of
/// `bands` (none for pointwise convolutions, which read the image directly).
pub(super) fn col_scratch_len(
    geo: &Conv2dGeometry,
    bands: &[Range<usize>],
    channels: usize,
) -> usize {
    if geo.is_pointwise() {
        0
    } else {
        let widest = bands.iter().map(|b| b.len()).max().unwrap_or(0);
        channels * geo.kernel_h * geo.kernel_w * widest * geo.out_w
    }
}

/// Graph-free forward on slices: `out` (`[N, Cout, Ho, Wo]`, overwritten) = conv of `x`
/// (`x_dims`) with `w` (`w_dims`) plus `bias` (`[Cout]`). Rejects inconsistent shapes or lengths.
pub fn conv2d_forward(
    x: &[f32],
    x_dims: [usize; 4],
    w: &[f32],
    w_dims: [usize; 4],
    bias: Option<&[f32]>,
    params: Conv2dParams,
    out: &mut [f32],
) -> Result<()> {
    let geo = Conv2dGeometry::new(x_dims, w_dims, params)?;
    Conv2dGeometry::check_len("input", x.len(), &x_dims)?;
    Conv2dGeometry::check_len("weight", w.len(), &w_dims)?;
    Conv2dGeometry::check_len("output", out.len(), &geo.out_dims())?;
    if let Some(b) = bias
        && b.len() != geo.out_channels
    {
        return Err(shape_error(
            "conv2d",
            format!(
                "bias has {} values for {} channels",
                b.len(),
                geo.out_channels
            ),
            &[&w_dims],
        ));
    }
    forward_unchecked(&geo, x, w, bias, out);
    Ok(())
}

/// The forward on slices whose lengths match `geo` (checked by the callers).
pub(super) fn forward_unchecked(
    geo: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let bands = bands(geo);
    let scratch = col_scratch_len(geo, &bands, geo.in_per_group());
    let image_in = geo.in_channels * geo.height * geo.width;
    let plane_out = geo.out_h * geo.out_w;
    let image_out = geo.out_channels * plane_out;
    let cout_g = geo.out_per_group();
    if geo.batch >= PER_IMAGE_MIN_BATCH {
        // Whole images per task; each band's GEMM writes straight into the image's output.
        out.par_chunks_mut(image_out)
            .zip(x.par_chunks(image_in))
            .for_each_init(
                || Buffer::for_overwrite(scratch),
                |col, (out_image, x_image)| {
                    for band in &bands {
                        for g in 0..geo.params.groups {
                            let at = g * cout_g * plane_out + band.start * geo.out_w;
                            let dst = &mut out_image[at..];
                            let block = (g, 0..cout_g);
                            forward_tile(geo, x_image, w, bias, band, block, col, dst, plane_out);
                        }
                    }
                },
            );
        return;
    }
    // Few images: one task per (image, band, group, block of output channels) into its own
    // tile, then copied into place.
    let tiles_per_group = MIN_TASKS.div_ceil(geo.batch * bands.len() * geo.params.groups);
    let channel_blocks = blocks(cout_g, tiles_per_group, MIN_BLOCK_CHANNELS);
    let block_len = channel_blocks[0].len();
    let units: Vec<(usize, &Range<usize>, usize, &Range<usize>)> = (0..geo.batch)
        .flat_map(|n| bands.iter().map(move |b| (n, b)))
        .flat_map(|(n, b)| (0..geo.params.groups).map(move |g| (n, b, g)))
        .flat_map(|(n, b, g)| channel_blocks.iter().map(move |c| (n, b, g, c)))
        .collect();
    let tiles: Vec<Buffer> = units
        .par_iter()
        .map_init(
            || Buffer::for_overwrite(scratch),
            |col, &(n, band, g, channels)| {
                let pixels = band.len() * geo.out_w;
                let mut tile = Buffer::for_overwrite(channels.len() * pixels);
                let x_image = &x[n * image_in..(n + 1) * image_in];
                let block = (g, channels.clone());
                forward_tile(geo, x_image, w, bias, band, block, col, &mut tile, pixels);
                tile
            },
        )
        .collect();
    let tiles_per_band = geo.params.groups * channel_blocks.len();
    out.par_chunks_mut(plane_out)
        .enumerate()
        .for_each(|(row, dst)| {
            let (n, c) = (row / geo.out_channels, row % geo.out_channels);
            let (g, local) = (c / cout_g, c % cout_g);
            let (block, r) = (local / block_len, local % block_len);
            for (b, band) in bands.iter().enumerate() {
                let tile = &tiles
                    [(n * bands.len() + b) * tiles_per_band + g * channel_blocks.len() + block];
                let pixels = band.len() * geo.out_w;
                dst[band.start * geo.out_w..band.end * geo.out_w]
                    .copy_from_slice(&tile[r * pixels..(r + 1) * pixels]);
            }
        });
}

/// Output rows `band` of one image for output channels `channels` of group `g` (`block`), bias
/// added: `dst` holds `channels.len()` rows of `band.len() * Wo` pixels, `dst_stride` apart.
/// `col` is scratch of [`col_scratch_len`] floats.
#[allow(clippy::too_many_arguments)]
fn forward_tile(
    geo: &Conv2dGeometry,
    x_image: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    band: &Range<usize>,
    (g, channels): (usize, Range<usize>),
    col: &mut [f32],
    dst: &mut [f32],
    dst_stride: usize,
) {
    let pixels = band.len() * geo.out_w;
    let (cin_g, cout_g, taps) = (
        geo.in_per_group(),
        geo.out_per_group(),
        geo.taps_per_group(),
    );
    let plane_in = geo.height * geo.width;
    let x_group = &x_image[g * cin_g * plane_in..(g + 1) * cin_g * plane_in];
    let first = g * cout_g + channels.start;
    let w_block = MatRef::row_major(
        &w[first * taps..][..channels.len() * taps],
        channels.len(),
        taps,
    );
    let cols = if geo.is_pointwise() {
        MatRef {
            data: &x_group[band.start * geo.out_w..],
            rows: cin_g,
            cols: pixels,
            row_stride: plane_in,
            col_stride: 1,
        }
    } else {
        im2col(&geo.patches(), x_group, band.clone(), col);
        MatRef::row_major(&col[..taps * pixels], taps, pixels)
    };
    let out = MatMut {
        data: &mut *dst,
        rows: channels.len(),
        cols: pixels,
        row_stride: dst_stride,
        col_stride: 1,
    };
    gemm(1.0, w_block, cols, 0.0, out);
    if let Some(bias) = bias {
        for (r, &b) in bias[first..first + channels.len()].iter().enumerate() {
            dst[r * dst_stride..r * dst_stride + pixels]
                .iter_mut()
                .for_each(|v| *v += b);
        }
    }
}
