//! Forward kernel: per image and band of output rows, `weight_g x im2col(x_g)` through the engine
//! GEMM for each group; 1x1 stride-1 unpadded convolutions multiply by the image directly.

use std::ops::Range;

use rayon::prelude::*;

use super::{Conv2dGeometry, Conv2dParams};
use crate::error::{Result, shape_error};
use crate::kernels::im2col::im2col;
use crate::kernels::{MatMut, MatRef, gemm};
use crate::tensor::Buffer;

/// Upper bound on the output pixels of one band (the GEMM's N). matrixmultiply runs best with
/// N of a few hundred here; larger bands only grow the column matrix.
const MAX_BAND_PIXELS: usize = 512;
/// Lower bound on the output pixels of one band, so very deep kernels keep a usable N.
const MIN_BAND_PIXELS: usize = 64;
/// Target size of one band's column matrix, in floats (1 MiB: the L2 of one core).
const COL_BUDGET: usize = 1 << 18;
/// From this batch size on, rayon tasks take whole images; below it, single bands.
pub(super) const PER_IMAGE_MIN_BATCH: usize = 8;

/// The bands of output rows every kernel works on: about `COL_BUDGET / taps` pixels each (within
/// `MIN_BAND_PIXELS..=MAX_BAND_PIXELS`), whole rows, near-equal sizes. Depends only on the shape.
pub(super) fn bands(geo: &Conv2dGeometry) -> Vec<Range<usize>> {
    let taps = if geo.is_pointwise() {
        1
    } else {
        geo.taps_per_group()
    };
    let target = (COL_BUDGET / taps).clamp(MIN_BAND_PIXELS, MAX_BAND_PIXELS);
    let rows = (target / geo.out_w).clamp(1, geo.out_h);
    let count = geo.out_h.div_ceil(rows);
    let rows = geo.out_h.div_ceil(count);
    (0..geo.out_h)
        .step_by(rows)
        .map(|r| r..(r + rows).min(geo.out_h))
        .collect()
}

/// Floats of column scratch a task needs for the widest of `bands` (none for pointwise).
pub(super) fn col_scratch_len(geo: &Conv2dGeometry, bands: &[Range<usize>]) -> usize {
    if geo.is_pointwise() {
        0
    } else {
        let widest = bands.iter().map(|b| b.len()).max().unwrap_or(0);
        geo.taps_per_group() * widest * geo.out_w
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
    let scratch = col_scratch_len(geo, &bands);
    let image_in = geo.in_channels * geo.height * geo.width;
    let plane_out = geo.out_h * geo.out_w;
    let image_out = geo.out_channels * plane_out;
    if geo.batch >= PER_IMAGE_MIN_BATCH || bands.len() == 1 {
        // Whole images per task; each band's GEMM writes straight into the image's output.
        out.par_chunks_mut(image_out)
            .zip(x.par_chunks(image_in))
            .for_each_init(
                || Buffer::for_overwrite(scratch),
                |col, (out_image, x_image)| {
                    for band in &bands {
                        let dst = &mut out_image[band.start * geo.out_w..];
                        forward_band(geo, x_image, w, bias, band, col, dst, plane_out);
                    }
                },
            );
        return;
    }
    // Few images: one task per (image, band) into its own tile, then copied into place.
    let units: Vec<(usize, &Range<usize>)> = (0..geo.batch)
        .flat_map(|n| bands.iter().map(move |b| (n, b)))
        .collect();
    let tiles: Vec<Buffer> = units
        .par_iter()
        .map_init(
            || Buffer::for_overwrite(scratch),
            |col, &(n, band)| {
                let pixels = band.len() * geo.out_w;
                let mut tile = Buffer::for_overwrite(geo.out_channels * pixels);
                let x_image = &x[n * image_in..(n + 1) * image_in];
                forward_band(geo, x_image, w, bias, band, col, &mut tile, pixels);
                tile
            },
        )
        .collect();
    out.par_chunks_mut(plane_out)
        .enumerate()
        .for_each(|(row, dst)| {
            let (n, c) = (row / geo.out_channels, row % geo.out_channels);
            for (band, tile) in bands.iter().zip(&tiles[n * bands.len()..]) {
                let pixels = band.len() * geo.out_w;
                dst[band.start * geo.out_w..band.end * geo.out_w]
                    .copy_from_slice(&tile[c * pixels..(c + 1) * pixels]);
            }
        });
}

/// Output rows `band` of one image, all output channels, bias added: `dst` holds `Cout` rows of
/// `band.len() * Wo` pixels, `dst_stride` apart. `col` is scratch of [`col_scratch_len`] floats.
#[allow(clippy::too_many_arguments)]
fn forward_band(
    geo: &Conv2dGeometry,
    x_image: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    band: &Range<usize>,
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
    let patches = geo.patches();
    for g in 0..geo.params.groups {
        let x_group = &x_image[g * cin_g * plane_in..(g + 1) * cin_g * plane_in];
        let w_group =
            MatRef::row_major(&w[g * cout_g * taps..(g + 1) * cout_g * taps], cout_g, taps);
        let cols = if geo.is_pointwise() {
            MatRef {
                data: &x_group[band.start * geo.out_w..],
                rows: cin_g,
                cols: pixels,
                row_stride: plane_in,
                col_stride: 1,
            }
        } else {
            im2col(&patches, x_group, band.clone(), col);
            MatRef::row_major(&col[..taps * pixels], taps, pixels)
        };
        let out = MatMut {
            data: &mut dst[g * cout_g * dst_stride..],
            rows: cout_g,
            cols: pixels,
            row_stride: dst_stride,
            col_stride: 1,
        };
        gemm(1.0, w_group, cols, 0.0, out);
    }
    if let Some(bias) = bias {
        for (c, &b) in bias.iter().enumerate() {
            dst[c * dst_stride..c * dst_stride + pixels]
                .iter_mut()
                .for_each(|v| *v += b);
        }
    }
}
