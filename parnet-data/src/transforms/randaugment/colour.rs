//! The pixel-wise RandAugment operations, as PIL computes them (ImageOps / ImageEnhance).

use crate::image::Image;

/// Applies a per-channel lookup table.
fn apply_luts(image: &mut Image, luts: &[[u8; 256]; 3]) {
    for pixel in image.data.chunks_exact_mut(3) {
        for c in 0..3 {
            pixel[c] = luts[c][pixel[c] as usize];
        }
    }
}

fn histograms(image: &Image) -> [[u32; 256]; 3] {
    let mut h = [[0u32; 256]; 3];
    for pixel in image.data.chunks_exact(3) {
        for c in 0..3 {
            h[c][pixel[c] as usize] += 1;
        }
    }
    h
}

/// PIL `ImageOps.autocontrast(img)` (cutoff 0): stretch each channel's [min, max] to [0, 255].
pub fn auto_contrast(image: &mut Image) {
    let hist = histograms(image);
    let mut luts = [[0u8; 256]; 3];
    for c in 0..3 {
        let lo = hist[c].iter().position(|&n| n > 0).unwrap_or(0);
        let hi = hist[c].iter().rposition(|&n| n > 0).unwrap_or(0);
        for (v, slot) in luts[c].iter_mut().enumerate() {
            *slot = if hi <= lo {
                v as u8
            } else {
                let scale = 255.0 / (hi - lo) as f64;
                let offset = -(lo as f64) * scale;
                ((v as f64 * scale + offset) as i64).clamp(0, 255) as u8
            };
        }
    }
    apply_luts(image, &luts);
}

/// PIL `ImageOps.equalize(img)`: per-channel histogram equalisation.
pub fn equalize(image: &mut Image) {
    let hist = histograms(image);
    let mut luts = [[0u8; 256]; 3];
    for c in 0..3 {
        let nonzero: Vec<u32> = hist[c].iter().copied().filter(|&n| n > 0).collect();
        let step = if nonzero.len() <= 1 {
            0
        } else {
            (nonzero.iter().sum::<u32>() - nonzero[nonzero.len() - 1]) / 255
        };
        let mut n = step / 2;
        for (v, slot) in luts[c].iter_mut().enumerate() {
            *slot = match n.checked_div(step) {
                None => v as u8,
                Some(level) => level.min(255) as u8,
            };
            n += hist[c][v];
        }
    }
    apply_luts(image, &luts);
}

/// `255 - v`.
pub fn invert(image: &mut Image) {
    for v in &mut image.data {
        *v = 255 - *v;
    }
}

/// Keeps the `bits` most significant bits (`bits >= 8` leaves the image unchanged).
pub fn posterize(image: &mut Image, bits: u32) {
    if bits >= 8 {
        return;
    }
    let mask = !((1u32 << (8 - bits)) - 1) as u8;
    for v in &mut image.data {
        *v &= mask;
    }
}

/// Inverts every value `>= threshold`.
pub fn solarize(image: &mut Image, threshold: u32) {
    for v in &mut image.data {
        if u32::from(*v) >= threshold {
            *v = 255 - *v;
        }
    }
}

/// Adds `add` (saturating) to every value below `threshold` (timm `solarize_add`, threshold 128).
pub fn solarize_add(image: &mut Image, add: u32, threshold: u32) {
    for v in &mut image.data {
        if u32::from(*v) < threshold {
            *v = (u32::from(*v) + add).min(255) as u8;
        }
    }
}

/// PIL's `L` conversion: `(299 R + 587 G + 114 B) / 1000`, rounded, in fixed point.
#[inline]
fn luma(pixel: &[u8]) -> u8 {
    ((u32::from(pixel[0]) * 19595
        + u32::from(pixel[1]) * 38470
        + u32::from(pixel[2]) * 7471
        + 0x8000)
        >> 16) as u8
}

/// PIL `Image.blend(degenerate, image, factor)`: `d + factor (v - d)`, clipped, truncated.
#[inline]
fn blend(degenerate: u8, value: u8, factor: f32) -> u8 {
    let d = f32::from(degenerate);
    (d + factor * (f32::from(value) - d)).clamp(0.0, 255.0) as u8
}

/// `ImageEnhance.Color`: blend with the greyscale image.
pub fn color(image: &mut Image, factor: f32) {
    for pixel in image.data.chunks_exact_mut(3) {
        let grey = luma(pixel);
        for v in pixel.iter_mut() {
            *v = blend(grey, *v, factor);
        }
    }
}

/// `ImageEnhance.Contrast`: blend with a flat image at the rounded mean greyscale level.
pub fn contrast(image: &mut Image, factor: f32) {
    let pixels = image.data.len() / 3;
    if pixels == 0 {
        return;
    }
    let sum: u64 = image.data.chunks_exact(3).map(|p| u64::from(luma(p))).sum();
    let mean = (sum as f64 / pixels as f64 + 0.5) as u8;
    for v in &mut image.data {
        *v = blend(mean, *v, factor);
    }
}

/// `ImageEnhance.Brightness`: blend with black.
pub fn brightness(image: &mut Image, factor: f32) {
    for v in &mut image.data {
        *v = blend(0, *v, factor);
    }
}

/// `ImageEnhance.Sharpness`: blend with the SMOOTH-filtered image (kernel 1 1 1 / 1 5 1 / 1 1 1,
/// divided by 13, rounded; border pixels unfiltered, as PIL).
pub fn sharpness(image: &mut Image, factor: f32, scratch: &mut Image) {
    let (h, w) = (image.height, image.width);
    scratch.clone_from(image);
    if h < 3 || w < 3 {
        return;
    }
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            for c in 0..3 {
                let mut sum = 0u32;
                for dy in 0..3 {
                    for dx in 0..3 {
                        let weight = if dy == 1 && dx == 1 { 5 } else { 1 };
                        sum += weight
                            * u32::from(scratch.data[((y + dy - 1) * w + x + dx - 1) * 3 + c]);
                    }
                }
                let smooth = ((sum as f32 / 13.0) + 0.5).min(255.0) as u8;
                let i = (y * w + x) * 3 + c;
                image.data[i] = blend(smooth, scratch.data[i], factor);
            }
        }
    }
}
