//! `im2col` and its adjoint `col2im_add` for one NCHW image.
//!
//! The column matrix of an image has one row per (channel, kernel row, kernel column) tap, in that
//! order, and one column per output pixel (row-major over the output grid), so a convolution is
//! `weight [Cout, C*KH*KW] x col [C*KH*KW, pixels]`. Both functions work on a band of whole output
//! rows, so a caller can tile the output and keep the column matrix small, and take the column
//! matrix's row stride, so the bands of several images can sit side by side in one matrix.

use std::ops::Range;

/// The patches of one image: `channels` planes of `height x width`, zero-padded by `padding` on
/// every side, read by a `kernel_h x kernel_w` window moved by `stride`, giving `out_h x out_w`
/// window positions. Callers guarantee `stride >= 1` and `out_h, out_w >= 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchGeometry {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: usize,
    pub padding: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl PatchGeometry {
    /// Rows of the column matrix: `channels * kernel_h * kernel_w`.
    pub fn col_rows(&self) -> usize {
        self.channels * self.kernel_h * self.kernel_w
    }

    /// The output positions along one axis whose input index `o * stride + tap - padding` lies in
    /// `0..len`, as a range of `0..out_len`.
    fn valid_range(&self, tap: usize, len: usize, out_len: usize) -> Range<usize> {
        let (s, p) = (self.stride, self.padding);
        let lo = if p > tap { (p - tap).div_ceil(s) } else { 0 };
        let hi = if len + p > tap {
            (len + p - tap).div_ceil(s)
        } else {
            0
        };
        let lo = lo.min(out_len);
        lo..hi.clamp(lo, out_len)
    }

    /// The input row read by output row `oh` at kernel row `i`, if it is not padding.
    fn input_row(&self, oh: usize, i: usize) -> Option<usize> {
        (oh * self.stride + i)
            .checked_sub(self.padding)
            .filter(|&ih| ih < self.height)
    }
}

/// Writes the column matrix of output rows `rows` of image `x` (`[channels, height, width]`) into
/// `col`, a `[col_rows, rows.len() * out_w]` matrix whose rows start `col_stride` apart
/// (`col_stride >= rows.len() * out_w`). Padding taps are written as zeros.
pub fn im2col(
    geo: &PatchGeometry,
    x: &[f32],
    rows: Range<usize>,
    col: &mut [f32],
    col_stride: usize,
) {
    let plane = geo.height * geo.width;
    let tile = rows.len() * geo.out_w;
    assert!(x.len() >= geo.channels * plane, "im2col: image too short");
    assert!(
        tile <= col_stride,
        "im2col: column stride shorter than the band"
    );
    assert!(
        col.len() + col_stride >= geo.col_rows() * col_stride + tile,
        "im2col: column buffer too short"
    );
    assert!(rows.end <= geo.out_h, "im2col: rows beyond the output");
    let s = geo.stride;
    for c in 0..geo.channels {
        let src_plane = &x[c * plane..(c + 1) * plane];
        for i in 0..geo.kernel_h {
            for j in 0..geo.kernel_w {
                let r = (c * geo.kernel_h + i) * geo.kernel_w + j;
                let dst_row = &mut col[r * col_stride..r * col_stride + tile];
                let valid = geo.valid_range(j, geo.width, geo.out_w);
                for (t, oh) in rows.clone().enumerate() {
                    let dst = &mut dst_row[t * geo.out_w..(t + 1) * geo.out_w];
                    let Some(ih) = geo.input_row(oh, i) else {
                        dst.fill(0.0);
                        continue;
                    };
                    let src = &src_plane[ih * geo.width..(ih + 1) * geo.width];
                    dst[..valid.start].fill(0.0);
                    dst[valid.end..].fill(0.0);
                    if valid.is_empty() {
                        continue;
                    }
                    let first = valid.start * s + j - geo.padding;
                    let dst = &mut dst[valid.clone()];
                    gather(dst, &src[first..], s);
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every entry of `col` (`[col_rows, rows.len() * out_w]`, rows
/// `col_stride` apart) to the input pixel it was read from in `x` (`[channels, height, width]`).
/// Padding taps are dropped. Contributions are added in a fixed order (channel, kernel row,
/// kernel column, output pixel).
pub fn col2im_add(
    geo: &PatchGeometry,
    col: &[f32],
    col_stride: usize,
    rows: Range<usize>,
    x: &mut [f32],
) {
    let plane = geo.height * geo.width;
    let tile = rows.len() * geo.out_w;
    assert!(
        x.len() >= geo.channels * plane,
        "col2im_add: image too short"
    );
    assert!(
        tile <= col_stride,
        "col2im_add: column stride shorter than the band"
    );
    assert!(
        col.len() + col_stride >= geo.col_rows() * col_stride + tile,
        "col2im_add: column buffer too short"
    );
    assert!(rows.end <= geo.out_h, "col2im_add: rows beyond the output");
    let s = geo.stride;
    for c in 0..geo.channels {
        let dst_plane = &mut x[c * plane..(c + 1) * plane];
        for i in 0..geo.kernel_h {
            for j in 0..geo.kernel_w {
                let r = (c * geo.kernel_h + i) * geo.kernel_w + j;
                let src_row = &col[r * col_stride..r * col_stride + tile];
                let valid = geo.valid_range(j, geo.width, geo.out_w);
                if valid.is_empty() {
                    continue;
                }
                let first = valid.start * s + j - geo.padding;
                for (t, oh) in rows.clone().enumerate() {
                    let Some(ih) = geo.input_row(oh, i) else {
                        continue;
                    };
                    let src = &src_row[t * geo.out_w..(t + 1) * geo.out_w][valid.clone()];
                    let dst = &mut dst_plane[ih * geo.width..(ih + 1) * geo.width];
                    scatter_add(&mut dst[first..], src, s);
                }
            }
        }
    }
}

/// `dst[o] = src[o * stride]`. Stride 1 and 2 get their own loops, which the compiler
/// vectorises (a plain `step_by` stays scalar).
fn gather(dst: &mut [f32], src: &[f32], stride: usize) {
    match stride {
        1 => dst.copy_from_slice(&src[..dst.len()]),
        2 => dst
            .iter_mut()
            .zip(src.chunks(2))
            .for_each(|(d, pair)| *d = pair[0]),
        _ => dst
            .iter_mut()
            .zip(src.chunks(stride))
            .for_each(|(d, c)| *d = c[0]),
    }
}

/// `dst[o * stride] += src[o]`.
fn scatter_add(dst: &mut [f32], src: &[f32], stride: usize) {
    match stride {
        1 => dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v),
        2 => dst
            .chunks_mut(2)
            .zip(src)
            .for_each(|(pair, &v)| pair[0] += v),
        _ => dst
            .chunks_mut(stride)
            .zip(src)
            .for_each(|(c, &v)| c[0] += v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn geometry() -> impl Strategy<Value = PatchGeometry> {
        (
            1usize..4,
            1usize..8,
            1usize..8,
            1usize..6,
            1usize..6,
            1usize..4,
            0usize..3,
        )
            .prop_filter_map(
                "window larger than the padded image",
                |(channels, height, width, kernel_h, kernel_w, stride, padding)| {
                    let ph = (height + 2 * padding).checked_sub(kernel_h)?;
                    let pw = (width + 2 * padding).checked_sub(kernel_w)?;
                    Some(PatchGeometry {
                        channels,
                        height,
                        width,
                        kernel_h,
                        kernel_w,
                        stride,
                        padding,
                        out_h: ph / stride + 1,
                        out_w: pw / stride + 1,
                    })
                },
            )
    }

    /// The column matrix entry straight from the definition.
    fn naive(geo: &PatchGeometry, x: &[f32], r: usize, oh: usize, ow: usize) -> f32 {
        let (c, i, j) = (
            r / (geo.kernel_h * geo.kernel_w),
            r / geo.kernel_w % geo.kernel_h,
            r % geo.kernel_w,
        );
        let ih = (oh * geo.stride + i) as isize - geo.padding as isize;
        let iw = (ow * geo.stride + j) as isize - geo.padding as isize;
        if ih < 0 || iw < 0 || ih >= geo.height as isize || iw >= geo.width as isize {
            0.0
        } else {
            x[(c * geo.height + ih as usize) * geo.width + iw as usize]
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn im2col_matches_definition(geo in geometry(), band in (0usize..8, 0usize..8), seed in any::<u32>()) {
            let x: Vec<f32> = (0..geo.channels * geo.height * geo.width)
                .map(|i| (i as u32).wrapping_mul(2654435761).wrapping_add(seed) as f32 / 4e9).collect();
            let r0 = band.0 % geo.out_h;
            let r1 = (r0 + 1 + band.1).min(geo.out_h);
            let tile = (r1 - r0) * geo.out_w;
            // Rows `stride` apart with a gap after each, which must stay untouched.
            let stride = tile + band.1 % 3;
            let mut col = vec![f32::NAN; geo.col_rows() * stride];
            im2col(&geo, &x, r0..r1, &mut col, stride);
            for r in 0..geo.col_rows() {
                prop_assert!(col[r * stride + tile..(r + 1) * stride].iter().all(|v| v.is_nan()));
                for oh in r0..r1 {
                    for ow in 0..geo.out_w {
                        let got = col[r * stride + (oh - r0) * geo.out_w + ow];
                        prop_assert_eq!(got, naive(&geo, &x, r, oh, ow), "row {} pixel ({}, {})", r, oh, ow);
                    }
                }
            }
        }

        /// <im2col(x), c> == <x, col2im(c)>, with integer values so the sums are exact.
        #[test]
        fn col2im_is_the_adjoint(geo in geometry(), seed in any::<u32>()) {
            let n = geo.channels * geo.height * geo.width;
            let tile = geo.out_h * geo.out_w;
            let val = |i: usize, k: u32| ((i as u32).wrapping_mul(2654435761) ^ seed ^ k) % 7;
            let x: Vec<f32> = (0..n).map(|i| val(i, 1) as f32 - 3.0).collect();
            let c: Vec<f32> = (0..geo.col_rows() * tile).map(|i| val(i, 2) as f32 - 3.0).collect();
            let mut col = vec![0.0; c.len()];
            im2col(&geo, &x, 0..geo.out_h, &mut col, tile);
            let lhs: f64 = col.iter().zip(&c).map(|(&a, &b)| (a * b) as f64).sum();
            // Two bands, read in place from the full matrix (row stride `tile`), must add up to
            // the whole.
            let mut back = vec![0.0; n];
            let split = geo.out_h / 2;
            col2im_add(&geo, &c, tile, 0..split, &mut back);
            col2im_add(&geo, &c[split * geo.out_w..], tile, split..geo.out_h, &mut back);
            let rhs: f64 = back.iter().zip(&x).map(|(&a, &b)| (a * b) as f64).sum();
            prop_assert_eq!(lhs, rhs);
        }
    }
}
