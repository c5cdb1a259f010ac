//! Separable resampling of RGB u8 images that reproduces Pillow's `Image.resize` bit for bit
//! (`libImaging/Resample.c`, 8-bit path) for the bilinear and bicubic filters: the filter's
//! support widens by the scale when shrinking (antialiasing), each output's weights are
//! normalised to sum 1 and rounded to 22-bit fixed point, the horizontal pass runs first and
//! rounds to u8, then the vertical pass. timm and torchvision evaluate on PIL images, so this is
//! what makes our evaluation transform theirs.

use crate::image::Image;

/// Bits of the fixed-point weights (Pillow's `PRECISION_BITS` for 8-bit images).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// A separable filter: its support (half-width at scale 1) and its kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Triangle, support 1 (Pillow `BILINEAR`).
    Bilinear,
    /// Cubic convolution with a = -0.5, support 2 (Pillow `BICUBIC`).
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Filter::Bilinear => (1.0 - x.abs()).max(0.0),
            Filter::Bicubic => cubic_weight(x),
        }
    }
}

/// Cubic convolution weight with a = -0.5 (Pillow's bicubic, for resizes and warps alike).
pub(crate) fn cubic_weight(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// For each of `out_size` outputs along one axis of `in_size` inputs: the first input index and
/// its fixed-point weights (Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`).
fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) cast truncates toward zero, as `as i64` does.
            let x_min = ((center - support + 0.5) as i64).max(0) as usize;
            let x_max = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let raw: Vec<f64> = (x_min..x_max)
                .map(|x| filter.weight((x as f64 - center + 0.5) / filter_scale))
                .collect();
            let total: f64 = raw.iter().sum();
            let one = (1u32 << PRECISION_BITS) as f64;
            let fixed = raw
                .iter()
                .map(|&w| {
                    let w = if total != 0.0 { w / total } else { w };
                    if w < 0.0 {
                        (-0.5 + w * one) as i32
                    } else {
                        (0.5 + w * one) as i32
                    }
                })
                .collect();
            (x_min, fixed)
        })
        .collect()
}

/// A fixed-point sum (with Pillow's rounding offset) back to u8, clamped.
fn to_u8(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i64 = 1 << (PRECISION_BITS - 1);

/// Resizes `src` to `height x width` with `filter` exactly as Pillow does. Pillow skips the pass
/// of an axis whose size does not change, and so does this.
pub fn resize_like_pil(src: &Image, out: &mut Image, height: usize, width: usize, filter: Filter) {
    if width == src.width {
        vertical_pass(src, out, height, filter);
        return;
    }
    let mut horizontal = Image::zeros(src.height, width);
    let coeffs = coefficients(src.width, width, filter);
    for y in 0..src.height {
        let row = &src.data[y * src.width * 3..(y + 1) * src.width * 3];
        let out_row = &mut horizontal.data[y * width * 3..(y + 1) * width * 3];
        for (x, (first, weights)) in coeffs.iter().enumerate() {
            for c in 0..3 {
                let sum = weights.iter().enumerate().fold(HALF, |s, (i, &k)| {
                    s + row[(first + i) * 3 + c] as i64 * k as i64
                });
                out_row[x * 3 + c] = to_u8(sum);
            }
        }
    }
    if height == src.height {
        *out = horizontal;
    } else {
        vertical_pass(&horizontal, out, height, filter);
    }
}

/// Resizes `src` to `height` rows (same width) into `out`.
fn vertical_pass(src: &Image, out: &mut Image, height: usize, filter: Filter) {
    out.resize_to(height, src.width);
    let coeffs = coefficients(src.height, height, filter);
    let stride = src.width * 3;
    for (y, (first, weights)) in coeffs.iter().enumerate() {
        let out_row = &mut out.data[y * stride..(y + 1) * stride];
        for (i, value) in out_row.iter_mut().enumerate() {
            let sum = weights.iter().enumerate().fold(HALF, |s, (j, &k)| {
                s + src.data[(first + j) * stride + i] as i64 * k as i64
            });
            *value = to_u8(sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_of_every_output_sum_to_one_in_fixed_point() {
        for (n_in, n_out) in [(7, 3), (3, 7), (500, 256), (256, 256), (1, 5)] {
            for filter in [Filter::Bilinear, Filter::Bicubic] {
                for (first, w) in coefficients(n_in, n_out, filter) {
                    let sum: i64 = w.iter().map(|&k| k as i64).sum();
                    assert!((sum - (1 << PRECISION_BITS)).abs() <= w.len() as i64);
                    assert!(first + w.len() <= n_in);
                }
            }
        }
    }

    #[test]
    fn a_constant_image_stays_constant() {
        let mut src = Image::zeros(9, 13);
        src.data.fill(200);
        let mut out = Image::zeros(1, 1);
        for (h, w) in [(4, 5), (20, 31), (9, 5)] {
            resize_like_pil(&src, &mut out, h, w, Filter::Bicubic);
            assert_eq!((out.height, out.width), (h, w));
            assert!(out.data.iter().all(|&v| v == 200));
        }
    }
}
