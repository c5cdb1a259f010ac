//! Stride-1 convolutions without im2col: one GEMM per kernel row over a zero-padded,
//! channels-last copy of the image ("shifted GEMMs").
//!
//! Each group's input is copied into a padded channels-last block `[Hp, Wp, Cin/g]`
//! (`Hp = H + 2p`, `Wp = W + 2p`). Over the "wide" output grid `q = y * Wp + x` (`x < Wp`),
//! output pixel `q` at kernel tap `(i, j)` and channel `c` reads flat index
//! `(q + i * Wp) * Cin/g + (j * Cin/g + c)`. For a fixed kernel row `i`, the index is linear in
//! both `q` (stride `Cin/g`) and `k = j * Cin/g + c` (stride 1), so the whole row of taps is one
//! strided view `[KW * Cin/g, pixels]` of the padded block, and
//!
//! ```text
//! wide[co, q] = sum over kernel rows i of  W_i[co, k] . padded[(q + i * Wp) * Cin/g + k]
//! ```
//!
//! with `W_i[co, j * Cin/g + c] = w[co, c, i, j]`: `KH` GEMMs of depth `KW * Cin/g` and no
//! column matrix. The `KW - 1` columns `x >= Wo` of each wide row are junk (they wrap into the
//! next row) and are dropped when the output is copied out; the last row of taps reads
//! `(KW - 1) * Cin/g` floats past the block, so the buffer has that much zero slack. The weight
//! gradient uses the same views transposed, against the output gradient spread over the wide
//! grid with zero junk columns, so junk never reaches a weight.
//!
//! Used for batches that give every core whole images and planes at least [`MIN_OUTPUT_WIDTH`]
//! wide (there the junk columns are a small share); other shapes keep the banded im2col path.

use std::ops::Range;

use rayon::prelude::*;

use super::Conv2dGeometry;
use super::backward::weight_partial_runs;
use super::forward::CHUNK_TASKS_MIN_CHUNKS;
use crate::kernels::{MatMut, MatRef, gemm};
use crate::tensor::Buffer;

/// Narrower outputs keep the im2col path (the `KW - 1` junk columns per row would cost more).
/// At 16 and 32 pixels the shifted path trains `parnet-cifar` x0.25 about 8% faster than im2col
/// (docs/BENCHMARKS.md); 32 alone gained less.
pub(super) const MIN_OUTPUT_WIDTH: usize = 16;
/// Target size of one band of the wide output, in floats (256 KiB, so the GEMMs that accumulate
/// into it find it in L2).
const WIDE_BAND_BUDGET: usize = 1 << 16;

/// Whether `geo` takes the shifted-GEMM path.
pub(super) fn applies(geo: &Conv2dGeometry) -> bool {
    geo.params.stride == 1
        && !geo.is_pointwise()
        && geo.batch >= CHUNK_TASKS_MIN_CHUNKS
        && geo.out_w >= MIN_OUTPUT_WIDTH
}

/// The padded channels-last layout of one image, and the wide output grid.
struct Layout {
    cin_g: usize,
    /// Padded width `W + 2p`: also the length of a wide output row.
    padded_w: usize,
    /// Floats of one group's padded block, `Hp * Wp * Cin/g`.
    block: usize,
    /// Floats of the whole buffer: every group's block plus `(KW - 1) * Cin/g` zeros of slack.
    len: usize,
    /// Wide output pixels `Ho * Wp`.
    wide: usize,
}

impl Layout {
    fn new(geo: &Conv2dGeometry) -> Self {
        let p = geo.params.padding;
        let cin_g = geo.in_per_group();
        let padded_w = geo.width + 2 * p;
        let block = (geo.height + 2 * p) * padded_w * cin_g;
        Layout {
            cin_g,
            padded_w,
            block,
            len: geo.params.groups * block + (geo.kernel_w - 1) * cin_g,
            wide: geo.out_h * padded_w,
        }
    }

    /// Copies image `x` (`[Cin, H, W]`) into the interiors of the groups' blocks of `padded`,
    /// whose borders and slack are zero and stay zero.
    fn pad_image(&self, geo: &Conv2dGeometry, x: &[f32], padded: &mut [f32]) {
        let p = geo.params.padding;
        let plane = geo.height * geo.width;
        for (c, src_plane) in x.chunks_exact(plane).enumerate() {
            let (g, ci) = (c / self.cin_g, c % self.cin_g);
            let block = &mut padded[g * self.block..][..self.block];
            for (y, src_row) in src_plane.chunks_exact(geo.width).enumerate() {
                let first = ((y + p) * self.padded_w + p) * self.cin_g + ci;
                for (dst, &v) in block[first..].iter_mut().step_by(self.cin_g).zip(src_row) {
                    *dst = v;
                }
            }
        }
    }

    /// Kernel row `i` of group `g` over wide pixels `pixels`: the `[KW * Cin/g, pixels.len()]`
    /// view of the padded block, row `j * Cin/g + c` holding tap `(i, j)` of channel `c`.
    fn kernel_row<'a>(
        &self,
        geo: &Conv2dGeometry,
        padded: &'a [f32],
        g: usize,
        i: usize,
        pixels: &Range<usize>,
    ) -> MatRef<'a> {
        MatRef {
            data: &padded[g * self.block + (pixels.start + i * self.padded_w) * self.cin_g..],
            rows: geo.kernel_w * self.cin_g,
            cols: pixels.len(),
            row_stride: 1,
            col_stride: self.cin_g,
        }
    }

    /// Bands of whole output rows whose wide tile `[Cout/g, rows * Wp]` fits the budget.
    fn bands(&self, geo: &Conv2dGeometry) -> Vec<Range<usize>> {
        let rows = (WIDE_BAND_BUDGET / (geo.out_per_group() * self.padded_w)).clamp(1, geo.out_h);
        (0..geo.out_h)
            .step_by(rows)
            .map(|r| r..(r + rows).min(geo.out_h))
            .collect()
    }
}

/// The weights by kernel row: `[groups, KH, Cout/g, KW * Cin/g]` with
/// `out[g][i][co][j * Cin/g + c] = w[g * Cout/g + co][c][i][j]`.
fn weights_by_kernel_row(geo: &Conv2dGeometry, w: &[f32]) -> Buffer {
    let (cout_g, cin_g) = (geo.out_per_group(), geo.in_per_group());
    let (kh, kw) = (geo.kernel_h, geo.kernel_w);
    let mut out = Buffer::for_overwrite(w.len());
    for (row, dst) in out.chunks_exact_mut(kw * cin_g).enumerate() {
        let (g_i, co) = (row / cout_g, row % cout_g);
        let (g, i) = (g_i / kh, g_i % kh);
        let filter = &w[(g * cout_g + co) * cin_g * kh * kw..][..cin_g * kh * kw];
        for j in 0..kw {
            for c in 0..cin_g {
                dst[j * cin_g + c] = filter[(c * kh + i) * kw + j];
            }
        }
    }
    out
}

/// `out` (`[N, Cout, Ho, Wo]`, overwritten) = conv of `x` with `w` plus `bias`; one task per
/// image.
pub(super) fn forward(
    geo: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let layout = Layout::new(geo);
    let bands = layout.bands(geo);
    let widest = bands.iter().map(|b| b.len()).max().unwrap_or(0);
    let (cout_g, kh) = (geo.out_per_group(), geo.kernel_h);
    let k = geo.kernel_w * layout.cin_g;
    let w_rows = weights_by_kernel_row(geo, w);
    let plane_out = geo.out_h * geo.out_w;
    let image_in = geo.in_channels * geo.height * geo.width;
    let wp = layout.padded_w;
    out.par_chunks_mut(geo.out_channels * plane_out)
        .zip(x.par_chunks(image_in))
        .for_each_init(
            || {
                (
                    Buffer::zeros(layout.len),
                    Buffer::for_overwrite(cout_g * widest * wp),
                )
            },
            |(padded, wide), (out_image, x_image)| {
                layout.pad_image(geo, x_image, padded);
                for g in 0..geo.params.groups {
                    for band in &bands {
                        let pixels = band.start * wp..band.end * wp;
                        let wide = &mut wide[..cout_g * pixels.len()];
                        for i in 0..kh {
                            let a = &w_rows[(g * kh + i) * cout_g * k..][..cout_g * k];
                            let beta = if i == 0 { 0.0 } else { 1.0 };
                            gemm(
                                1.0,
                                MatRef::row_major(a, cout_g, k),
                                layout.kernel_row(geo, padded, g, i, &pixels),
                                beta,
                                MatMut::row_major(wide, cout_g, pixels.len()),
                            );
                        }
                        for (r, wide_rows) in wide.chunks_exact(pixels.len()).enumerate() {
                            let co = g * cout_g + r;
                            let b = bias.map_or(0.0, |b| b[co]);
                            let dst = &mut out_image[co * plane_out..][..plane_out];
                            for (t, y) in band.clone().enumerate() {
                                let src = &wide_rows[t * wp..][..geo.out_w];
                                let dst = &mut dst[y * geo.out_w..][..geo.out_w];
                                dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s + b);
                            }
                        }
                    }
                }
            },
        );
}

/// `dw` (`[Cout, Cin/g, KH, KW]`, overwritten) = the sum over images and kernel rows of
/// `dY_wide . kernel_row^T`.
///
/// The images are cut into the fixed runs of [`weight_partial_runs`]; each task sums one run
/// into its own partial gradient (laid out by kernel row), and the partials are added in run
/// order, so the result does not depend on the thread count.
pub(super) fn backward_weight(geo: &Conv2dGeometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let layout = Layout::new(geo);
    let (wp, wide) = (layout.padded_w, layout.wide);
    let runs = weight_partial_runs(dw.len(), geo.batch);
    let image_in = geo.in_channels * geo.height * geo.width;
    let plane_out = geo.out_h * geo.out_w;
    let (cout_g, cin_g, kh, kw) = (
        geo.out_per_group(),
        layout.cin_g,
        geo.kernel_h,
        geo.kernel_w,
    );
    let k = kw * cin_g;
    let pixels = 0..wide;
    let partials: Vec<Buffer> = runs
        .into_par_iter()
        .map_init(
            || {
                (
                    Buffer::zeros(layout.len),
                    Buffer::zeros(geo.out_channels * wide),
                )
            },
            |(padded, dy_wide), images| {
                // By kernel row: [groups, KH, Cout/g, KW * Cin/g].
                let mut acc = Buffer::zeros(dw.len());
                for n in images {
                    layout.pad_image(geo, &x[n * image_in..][..image_in], padded);
                    let dy_image = &dy[n * geo.out_channels * plane_out..];
                    for c in 0..geo.out_channels {
                        let src = &dy_image[c * plane_out..][..plane_out];
                        let dst = &mut dy_wide[c * wide..][..wide];
                        for (y, row) in src.chunks_exact(geo.out_w).enumerate() {
                            dst[y * wp..][..geo.out_w].copy_from_slice(row);
                        }
                    }
                    for g in 0..geo.params.groups {
                        let dy_g = &dy_wide[g * cout_g * wide..][..cout_g * wide];
                        for i in 0..kh {
                            let c = &mut acc[(g * kh + i) * cout_g * k..][..cout_g * k];
                            gemm(
                                1.0,
                                MatRef::row_major(dy_g, cout_g, wide),
                                layout.kernel_row(geo, padded, g, i, &pixels).t(),
                                1.0,
                                MatMut::row_major(c, cout_g, k),
                            );
                        }
                    }
                }
                acc
            },
        )
        .collect();
    dw.par_chunks_mut(cin_g * kh * kw)
        .enumerate()
        .for_each(|(row, filter)| {
            let (g, co) = (row / cout_g, row % cout_g);
            for (c, taps) in filter.chunks_exact_mut(kh * kw).enumerate() {
                for (tap, d) in taps.iter_mut().enumerate() {
                    let (i, j) = (tap / kw, tap % kw);
                    let at = ((g * kh + i) * cout_g + co) * k + j * cin_g + c;
                    *d = partials.iter().map(|p| p[at]).sum();
                }
            }
        });
}
