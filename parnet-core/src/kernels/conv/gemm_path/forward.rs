//! Forward through GEMM: per image and band of output rows, `weight_g x im2col(x_g)` through the
//! engine GEMM for each group (1x1 stride-1 unpadded convolutions multiply by the image
//! directly).

use std::ops::Range;

use rayon::prelude::*;

use crate::kernels::conv::Conv2dGeometry;
use crate::kernels::im2col::{PatchGeometry, im2col};
use crate::kernels::{MatMut, MatRef, gemm};
use crate::tensor::Buffer;

/// Upper bound on the output pixels of one band (the GEMM's N).
const MAX_BAND_PIXELS: usize = 512;
/// Lower bound on the output pixels of one band: matrixmultiply packs the whole weight matrix
/// once per GEMM call, so a narrow band would re-pack it for little work.
const MIN_BAND_PIXELS: usize = 192;
/// Target size of one band's column matrix, in floats (1 MiB: the L2 of one core).
const COL_BUDGET: usize = 1 << 18;
/// From this many image chunks on, rayon tasks take whole chunks; below it, (chunk, band, block
/// of output channels) tiles.
pub(crate) const CHUNK_TASKS_MIN_CHUNKS: usize = 8;
/// Below [`CHUNK_TASKS_MIN_CHUNKS`], output channels are split into blocks until there are this
/// many tiles (so both cores of the target machine and a few more are busy) ...
pub(crate) const MIN_TASKS: usize = 4;
/// ... but blocks keep at least this many output channels (each block repeats the im2col).
const MIN_BLOCK_CHANNELS: usize = 256;

/// How the output is cut into GEMM tiles: bands of whole output rows of about
/// `COL_BUDGET / taps` pixels (within `MIN_BAND_PIXELS..=MAX_BAND_PIXELS`), and, when a whole
/// image fits in one band, chunks of several images laid side by side in one tile. Depends only
/// on the shape.
pub(crate) struct Tiling {
    pub bands: Vec<Range<usize>>,
    /// Images per chunk (more than 1 only with a single band).
    pub images: usize,
}

impl Tiling {
    pub fn new(geo: &Conv2dGeometry) -> Self {
        let taps = if geo.is_pointwise() {
            1
        } else {
            geo.taps_per_group()
        };
        let target = (COL_BUDGET / taps).clamp(MIN_BAND_PIXELS, MAX_BAND_PIXELS);
        let rows = ((target + geo.out_w / 2) / geo.out_w).clamp(1, geo.out_h);
        let count = geo.out_h.div_ceil(rows);
        let rows = geo.out_h.div_ceil(count);
        let bands: Vec<Range<usize>> = (0..geo.out_h)
            .step_by(rows)
            .map(|r| r..(r + rows).min(geo.out_h))
            .collect();
        let plane = geo.out_h * geo.out_w;
        let images = if bands.len() == 1 {
            ((target + plane / 2) / plane).clamp(1, geo.batch.max(1))
        } else {
            1
        };
        Tiling { bands, images }
    }

    /// The image chunks: `images` consecutive images each (the last may have fewer).
    pub fn chunks(&self, batch: usize) -> Vec<Range<usize>> {
        (0..batch)
            .step_by(self.images)
            .map(|n| n..(n + self.images).min(batch))
            .collect()
    }

    /// Pixels (GEMM columns) of the widest tile.
    pub fn max_pixels(&self, geo: &Conv2dGeometry) -> usize {
        let widest = self.bands.iter().map(|b| b.len()).max().unwrap_or(0);
        self.images * widest * geo.out_w
    }

    /// Whether tiles read the image in place (pointwise, one image per tile) instead of im2col.
    pub fn reads_in_place(&self, geo: &Conv2dGeometry) -> bool {
        geo.is_pointwise() && self.images == 1
    }

    /// Floats of column scratch for `channels` input channels over the widest tile.
    pub fn col_len(&self, geo: &Conv2dGeometry, channels: usize) -> usize {
        if self.reads_in_place(geo) {
            0
        } else {
            channels * geo.kernel_h * geo.kernel_w * self.max_pixels(geo)
        }
    }
}

/// Splits `0..len` into at most `wanted` near-equal blocks of at least `min_len` (one block if
/// `len < 2 * min_len`), returned as ranges.
pub(crate) fn blocks(len: usize, wanted: usize, min_len: usize) -> Vec<Range<usize>> {
    let count = wanted.clamp(1, (len / min_len.max(1)).max(1));
    let size = len.div_ceil(count);
    (0..len)
        .step_by(size.max(1))
        .map(|s| s..(s + size).min(len))
        .collect()
}

/// The column matrix of one tile: output rows `band` of the images of `x_chunk` (consecutive
/// `[Cin, H, W]` images), group `g`, input channels `channels` of that group, side by side.
/// Returns it as a `[channels * KH * KW, images * band pixels]` view, of the image itself when
/// `in_place`, else written into `col`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tile_columns<'a>(
    geo: &Conv2dGeometry,
    x_chunk: &'a [f32],
    images: usize,
    band: &Range<usize>,
    g: usize,
    channels: Range<usize>,
    in_place: bool,
    col: &'a mut [f32],
) -> MatRef<'a> {
    let band_pixels = band.len() * geo.out_w;
    let pixels = images * band_pixels;
    let plane_in = geo.height * geo.width;
    let image_in = geo.in_channels * plane_in;
    let first = g * geo.in_per_group() + channels.start;
    if in_place {
        return MatRef {
            data: &x_chunk[first * plane_in + band.start * geo.out_w..],
            rows: channels.len(),
            cols: pixels,
            row_stride: plane_in,
            col_stride: 1,
        };
    }
    let patches = PatchGeometry {
        channels: channels.len(),
        ..geo.patches()
    };
    for k in 0..images {
        let x_block = &x_chunk[k * image_in + first * plane_in..][..channels.len() * plane_in];
        im2col(
            &patches,
            x_block,
            band.clone(),
            &mut col[k * band_pixels..],
            pixels,
        );
    }
    let taps = patches.col_rows();
    MatRef::row_major(&col[..taps * pixels], taps, pixels)
}

/// The forward through im2col and GEMM, on slices whose lengths match `geo`, for a non-empty
/// batch.
pub(crate) fn forward(
    geo: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let tiling = Tiling::new(geo);
    let scratch = tiling.col_len(geo, geo.in_per_group());
    let image_in = geo.in_channels * geo.height * geo.width;
    let plane_out = geo.out_h * geo.out_w;
    let image_out = geo.out_channels * plane_out;
    let (cout_g, groups, m) = (geo.out_per_group(), geo.params.groups, tiling.images);
    if geo.batch.div_ceil(m) >= CHUNK_TASKS_MIN_CHUNKS {
        // One task per image chunk. With one image per chunk, each band's GEMM writes straight
        // into the output; otherwise into a tile that is then copied to the images.
        let tile_len = if m > 1 {
            cout_g * tiling.max_pixels(geo)
        } else {
            0
        };
        out.par_chunks_mut(m * image_out)
            .zip(x.par_chunks(m * image_in))
            .for_each_init(
                || {
                    (
                        Buffer::for_overwrite(scratch),
                        Buffer::for_overwrite(tile_len),
                    )
                },
                |(col, tile), (out_chunk, x_chunk)| {
                    let images = x_chunk.len() / image_in;
                    for band in &tiling.bands {
                        let band_pixels = band.len() * geo.out_w;
                        let pixels = images * band_pixels;
                        for g in 0..groups {
                            let block = (g, 0..cout_g);
                            if m == 1 {
                                let dst = &mut out_chunk
                                    [g * cout_g * plane_out + band.start * geo.out_w..];
                                let t = (x_chunk, 1, band, block, &tiling);
                                forward_tile(geo, t, w, bias, col, dst, plane_out);
                                continue;
                            }
                            let t = (x_chunk, images, band, block, &tiling);
                            forward_tile(geo, t, w, bias, col, tile, pixels);
                            for (k, out_image) in out_chunk.chunks_mut(image_out).enumerate() {
                                for r in 0..cout_g {
                                    let src = &tile[r * pixels + k * band_pixels..][..band_pixels];
                                    out_image[(g * cout_g + r) * plane_out..][..band_pixels]
                                        .copy_from_slice(src);
                                }
                            }
                        }
                    }
                },
            );
        return;
    }
    // Few images: one task per (image chunk, band, group, block of output channels) into its own
    // tile, then copied into place.
    let chunks = tiling.chunks(geo.batch);
    let bands = &tiling.bands;
    let tasks_per_group = MIN_TASKS.div_ceil(chunks.len() * bands.len() * groups);
    let channel_blocks = blocks(cout_g, tasks_per_group, MIN_BLOCK_CHANNELS);
    let block_len = channel_blocks[0].len();
    let units: Vec<ForwardUnit<'_>> = chunks
        .iter()
        .flat_map(|n| bands.iter().map(move |b| (n, b)))
        .flat_map(|(n, b)| (0..groups).map(move |g| (n, b, g)))
        .flat_map(|(n, b, g)| channel_blocks.iter().map(move |c| (n, b, g, c)))
        .collect();
    let tiles: Vec<Buffer> = units
        .par_iter()
        .map_init(
            || Buffer::for_overwrite(scratch),
            |col, &(images, band, g, channels)| {
                let pixels = images.len() * band.len() * geo.out_w;
                let mut tile = Buffer::for_overwrite(channels.len() * pixels);
                let x_chunk = &x[images.start * image_in..images.end * image_in];
                let t = (x_chunk, images.len(), band, (g, channels.clone()), &tiling);
                forward_tile(geo, t, w, bias, col, &mut tile, pixels);
                tile
            },
        )
        .collect();
    let tiles_per_band = groups * channel_blocks.len();
    out.par_chunks_mut(plane_out)
        .enumerate()
        .for_each(|(row, dst)| {
            let (n, c) = (row / geo.out_channels, row % geo.out_channels);
            let (chunk, k) = (n / m, n % m);
            let images = chunks[chunk].len();
            let (g, local) = (c / cout_g, c % cout_g);
            let (block, r) = (local / block_len, local % block_len);
            for (b, band) in bands.iter().enumerate() {
                let tile_index = (chunk * bands.len() + b) * tiles_per_band;
                let tile = &tiles[tile_index + g * channel_blocks.len() + block];
                let band_pixels = band.len() * geo.out_w;
                let src = &tile[r * images * band_pixels + k * band_pixels..][..band_pixels];
                dst[band.start * geo.out_w..band.end * geo.out_w].copy_from_slice(src);
            }
        });
}

/// A tile-mode task: `(image chunk, band, group, output channels of the group)`.
type ForwardUnit<'a> = (&'a Range<usize>, &'a Range<usize>, usize, &'a Range<usize>);

/// A forward tile: `(x_chunk, images, band, (group, output channels of the group), tiling)`.
type TileSpec<'a> = (
    &'a [f32],
    usize,
    &'a Range<usize>,
    (usize, Range<usize>),
    &'a Tiling,
);

/// One forward tile: output rows `band` of the `images` images of `x_chunk`, side by side, for
/// output channels `channels` of group `g`, bias added. `dst` holds `channels.len()` rows of
/// `images * band.len() * Wo` pixels, `dst_stride` apart. `col` is scratch of
/// [`Tiling::col_len`] floats.
fn forward_tile(
    geo: &Conv2dGeometry,
    (x_chunk, images, band, (g, channels), tiling): TileSpec<'_>,
    w: &[f32],
    bias: Option<&[f32]>,
    col: &mut [f32],
    dst: &mut [f32],
    dst_stride: usize,
) {
    let pixels = images * band.len() * geo.out_w;
    let (cin_g, taps) = (geo.in_per_group(), geo.taps_per_group());
    let in_place = tiling.reads_in_place(geo);
    let cols = tile_columns(geo, x_chunk, images, band, g, 0..cin_g, in_place, col);
    let first = g * geo.out_per_group() + channels.start;
    let w_block = MatRef::row_major(
        &w[first * taps..][..channels.len() * taps],
        channels.len(),
        taps,
    );
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
