//! Geometric transforms on RGB u8 images: padded random crop, flip, crop, resize,
//! random-resized-crop and resize-shorter-side + centre crop.

use image::imageops::FilterType;
use image::{ImageBuffer, Rgb};
use rand::RngExt;

use super::resample::{Filter, resize_like_pil};
use crate::image::Image;

/// Resampling filter for resizes and warps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    Nearest,
    Bilinear,
    /// Cubic convolution with a = -0.5 (PIL's / timm's bicubic).
    Bicubic,
    /// Bilinear or bicubic, chosen per sample (timm's `random`).
    Random,
}

impl Interpolation {
    /// Resolves `Random` with one draw from `rng`; other values pass through without a draw.
    pub fn resolve<R: rand::Rng + ?Sized>(self, rng: &mut R) -> Interpolation {
        match self {
            Interpolation::Random => {
                if rng.random_bool(0.5) {
                    Interpolation::Bilinear
                } else {
                    Interpolation::Bicubic
                }
            }
            other => other,
        }
    }
}

/// Zero-pads `src` by `padding` on every side and crops `height x width` at a random offset
/// (offsets uniform in `0..=H+2p-height`, as torchvision's `RandomCrop(size, padding)`).
/// Requires `height <= H + 2p` and `width <= W + 2p`.
pub fn random_crop_padded<R: rand::Rng + ?Sized>(
    src: &Image,
    out: &mut Image,
    height: usize,
    width: usize,
    padding: usize,
    rng: &mut R,
) {
    let top = rng.random_range(0..=src.height + 2 * padding - height);
    let left = rng.random_range(0..=src.width + 2 * padding - width);
    crop_padded(
        src,
        out,
        top as isize - padding as isize,
        left as isize - padding as isize,
        height,
        width,
    );
}

/// Copies the `height x width` window of `src` whose top-left corner is `(top, left)` (which may
/// lie outside the image) into `out`; pixels outside `src` are zero.
pub fn crop_padded(
    src: &Image,
    out: &mut Image,
    top: isize,
    left: isize,
    height: usize,
    width: usize,
) {
    out.resize_to(height, width);
    for y in 0..height {
        let sy = top + y as isize;
        let row = &mut out.data[y * width * 3..(y + 1) * width * 3];
        if sy < 0 || sy >= src.height as isize {
            row.fill(0);
            continue;
        }
        let sy = sy as usize;
        // Columns of the window that fall inside the source row.
        let x_start = (-left).clamp(0, width as isize) as usize;
        let x_end = (src.width as isize - left).clamp(0, width as isize) as usize;
        row[..x_start * 3].fill(0);
        row[x_end.max(x_start) * 3..].fill(0);
        if x_end > x_start {
            let sx = (left + x_start as isize) as usize;
            let from = (sy * src.width + sx) * 3;
            row[x_start * 3..x_end * 3]
                .copy_from_slice(&src.data[from..from + (x_end - x_start) * 3]);
        }
    }
}

/// Mirrors the image left-right in place.
pub fn flip_horizontal(image: &mut Image) {
    let w = image.width;
    for row in image.data.chunks_exact_mut(w * 3) {
        for x in 0..w / 2 {
            let (a, b) = (x * 3, (w - 1 - x) * 3);
            for c in 0..3 {
                row.swap(a + c, b + c);
            }
        }
    }
}

/// Resizes `src` to `height x width`: bilinear and bicubic exactly as Pillow (antialiased when
/// shrinking; [`resize_like_pil`]), nearest through the `image` crate.
pub fn resize(
    src: &Image,
    out: &mut Image,
    height: usize,
    width: usize,
    interpolation: Interpolation,
) {
    if (src.height, src.width) == (height, width) {
        out.clone_from(src);
        return;
    }
    match interpolation {
        Interpolation::Bilinear => resize_like_pil(src, out, height, width, Filter::Bilinear),
        Interpolation::Bicubic | Interpolation::Random => {
            resize_like_pil(src, out, height, width, Filter::Bicubic)
        }
        Interpolation::Nearest => {
            let view: ImageBuffer<Rgb<u8>, &[u8]> =
                ImageBuffer::from_raw(src.width as u32, src.height as u32, &src.data[..])
                    .expect("Image invariant: data.len() == h*w*3");
            let resized =
                image::imageops::resize(&view, width as u32, height as u32, FilterType::Nearest);
            out.height = height;
            out.width = width;
            out.data = resized.into_raw();
        }
    }
}

/// Crops the window `(top, left, height, width)` (inside `src`) and resizes it to `out_h x out_w`.
#[allow(clippy::too_many_arguments)]
pub fn crop_resize(
    src: &Image,
    scratch: &mut Image,
    out: &mut Image,
    (top, left, height, width): (usize, usize, usize, usize),
    out_h: usize,
    out_w: usize,
    interpolation: Interpolation,
) {
    crop_padded(src, scratch, top as isize, left as isize, height, width);
    resize(scratch, out, out_h, out_w, interpolation);
}

/// timm's `RandomResizedCropAndInterpolation.get_params`: a window of area fraction in `scale`
/// and aspect ratio (w/h) log-uniform in `ratio`, 10 tries, then a centre-crop fallback.
/// Returns `(top, left, height, width)`, always inside the image and at least 1x1.
pub fn random_resized_crop_window<R: rand::Rng + ?Sized>(
    height: usize,
    width: usize,
    scale: [f32; 2],
    ratio: [f32; 2],
    rng: &mut R,
) -> (usize, usize, usize, usize) {
    let area = (height * width) as f64;
    let (log_lo, log_hi) = ((ratio[0] as f64).ln(), (ratio[1] as f64).ln());
    for _ in 0..10 {
        let target = area * uniform(rng, scale[0] as f64, scale[1] as f64);
        let aspect = uniform(rng, log_lo, log_hi).exp();
        let w = (target * aspect).sqrt().round() as usize;
        let h = (target / aspect).sqrt().round() as usize;
        if w >= 1 && h >= 1 && w <= width && h <= height {
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return (top, left, h, w);
        }
    }
    let in_ratio = width as f64 / height as f64;
    let (lo, hi) = (ratio[0].min(ratio[1]) as f64, ratio[0].max(ratio[1]) as f64);
    let (h, w) = if in_ratio < lo {
        (
            ((width as f64 / lo).round() as usize).clamp(1, height),
            width,
        )
    } else if in_ratio > hi {
        (
            height,
            ((height as f64 * hi).round() as usize).clamp(1, width),
        )
    } else {
        (height, width)
    };
    ((height - h) / 2, (width - w) / 2, h, w)
}

/// Uniform in `[lo, hi)` (or exactly `lo` when the range is empty).
pub(crate) fn uniform<R: rand::Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Size after torchvision `Resize(shorter)`: the shorter side becomes `shorter`, the other
/// side keeps the aspect ratio (truncated), as `(height, width)`.
pub fn shorter_side_size(height: usize, width: usize, shorter: usize) -> (usize, usize) {
    if width <= height {
        (((shorter * height) as f64 / width as f64) as usize, shorter)
    } else {
        (shorter, ((shorter * width) as f64 / height as f64) as usize)
    }
}

/// Top-left corner of a centred `crop_h x crop_w` window (torchvision `CenterCrop` rounding).
pub fn center_offsets(height: usize, width: usize, crop_h: usize, crop_w: usize) -> (usize, usize) {
    // Python 3 `round` (ties to even), as torchvision.
    let top = ((height.saturating_sub(crop_h)) as f64 / 2.0).round_ties_even() as usize;
    let left = ((width.saturating_sub(crop_w)) as f64 / 2.0).round_ties_even() as usize;
    (top, left)
}
