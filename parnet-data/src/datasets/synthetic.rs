//! A built-in synthetic set: 32x32 RGB images in 10 classes, drawn procedurally from
//! (seed, index), no files needed.
//!
//! Class `c` = shape `c % 5` (disc, square, triangle, cross, ring) in colour family `c / 5`
//! (warm or cool hues). Each image draws the shape at a random position, size and rotation on a
//! random gradient background, with two distractor dots and pixel noise, so a nearest-class-mean
//! classifier on raw pixels does well above chance but far from perfectly (colour alone splits the
//! families; the shape needs spatial features).

use rand::RngExt;

use crate::dataset::{Dataset, index_error};
use crate::error::Result;
use crate::image::Image;
use crate::seed::{sample_rng, standard_normal, streams};

/// Side of a synthetic image.
pub const SYNTHETIC_SIDE: usize = 32;
/// Shapes drawn, by `label % 5`.
pub const SYNTHETIC_SHAPES: [&str; 5] = ["disc", "square", "triangle", "cross", "ring"];
/// Colour families, by `label / 5`.
pub const SYNTHETIC_FAMILIES: [&str; 2] = ["warm", "cool"];

/// The synthetic set of `len` images from `seed`; label of sample `i` is `i % 10`.
#[derive(Clone, Debug)]
pub struct SyntheticSet {
    len: usize,
    seed: u64,
    class_names: Vec<String>,
}

impl SyntheticSet {
    /// A set of `len` images; the same `(len, seed)` always gives the same images.
    pub fn new(len: usize, seed: u64) -> Self {
        let class_names = (0..10)
            .map(|c| format!("{}-{}", SYNTHETIC_FAMILIES[c / 5], SYNTHETIC_SHAPES[c % 5]))
            .collect();
        SyntheticSet {
            len,
            seed,
            class_names,
        }
    }
}

/// HSV (h in degrees, s and v in 0..1) to RGB in 0..255.
fn hsv_to_rgb(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h = h.rem_euclid(360.0) / 60.0;
    let c = v * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

/// True if local point `(u, v)` (shape radius 1) lies inside shape `shape`.
fn inside(shape: usize, u: f32, v: f32) -> bool {
    let r2 = u * u + v * v;
    match shape {
        0 => r2 <= 1.0,
        1 => u.abs().max(v.abs()) <= 0.8,
        2 => {
            let s3 = 3f32.sqrt();
            v >= -0.5 && s3 * u + v <= 1.0 && -s3 * u + v <= 1.0
        }
        3 => (u.abs() <= 0.3 && v.abs() <= 1.0) || (v.abs() <= 0.3 && u.abs() <= 1.0),
        _ => (0.3..=1.0).contains(&r2),
    }
}

/// Draws sample `index` of the set seeded with `seed` (label `index % 10`) into `out`.
pub fn draw_synthetic(seed: u64, index: usize, out: &mut Image) -> usize {
    let label = index % 10;
    let (shape, family) = (label % 5, label / 5);
    let mut rng = sample_rng(seed, streams::SYNTHETIC, 0, index as u64);
    let n = SYNTHETIC_SIDE;
    out.resize_to(n, n);

    // Background: any hue, muted, with a linear gradient.
    let bg = hsv_to_rgb(
        rng.random_range(0.0..360.0),
        rng.random_range(0.0..0.6),
        rng.random_range(0.25..0.85),
    );
    let angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let (gx, gy) = (angle.cos() * 2.0, angle.sin() * 2.0);

    // Foreground: hue from the class family.
    let hue = match family {
        0 => rng.random_range(-35.0..55.0),
        _ => rng.random_range(165.0..265.0),
    };
    let fg = hsv_to_rgb(
        hue,
        rng.random_range(0.55..1.0),
        rng.random_range(0.55..1.0),
    );
    let cx: f32 = rng.random_range(10.0..22.0);
    let cy: f32 = rng.random_range(10.0..22.0);
    let radius: f32 = rng.random_range(6.0..11.0);
    let theta: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let (sin, cos) = theta.sin_cos();

    let mut dots = [(0f32, 0f32, 0f32, [0f32; 3]); 2];
    for dot in &mut dots {
        *dot = (
            rng.random_range(0.0..32.0),
            rng.random_range(0.0..32.0),
            rng.random_range(1.5..3.0),
            hsv_to_rgb(
                rng.random_range(0.0..360.0),
                rng.random_range(0.0..1.0),
                1.0,
            ),
        );
    }

    for y in 0..n {
        for x in 0..n {
            let (fx, fy) = (x as f32 - 15.5, y as f32 - 15.5);
            let shade = gx * fx + gy * fy;
            let mut rgb = [bg[0] + shade, bg[1] + shade, bg[2] + shade];
            // 2x2 supersampled coverage of the rotated shape.
            let mut cover = 0.0;
            for (sx, sy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (dx, dy) = (x as f32 + sx - cx, y as f32 + sy - cy);
                let u = (cos * dx + sin * dy) / radius;
                let v = (-sin * dx + cos * dy) / radius;
                if inside(shape, u, v) {
                    cover += 0.25;
                }
            }
            for (c, value) in rgb.iter_mut().enumerate() {
                *value = *value * (1.0 - cover) + fg[c] * cover;
            }
            for &(dx, dy, dr, dc) in &dots {
                let d2 = (x as f32 + 0.5 - dx).powi(2) + (y as f32 + 0.5 - dy).powi(2);
                if d2 <= dr * dr {
                    rgb = dc;
                }
            }
            let mut pixel = [0u8; 3];
            for c in 0..3 {
                let noisy = rgb[c] + 10.0 * standard_normal(&mut rng) as f32;
                pixel[c] = noisy.round().clamp(0.0, 255.0) as u8;
            }
            out.set_pixel(y, x, pixel);
        }
    }
    label
}

impl Dataset for SyntheticSet {
    fn len(&self) -> usize {
        self.len
    }
    fn num_classes(&self) -> usize {
        10
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn image_size(&self) -> Option<(usize, usize)> {
        Some((SYNTHETIC_SIDE, SYNTHETIC_SIDE))
    }
    fn describe(&self) -> String {
        format!("synthetic set (len {}, seed {})", self.len, self.seed)
    }
    fn label(&self, index: usize) -> Result<usize> {
        if index >= self.len {
            return Err(index_error(self, index));
        }
        Ok(index % 10)
    }
    fn load_into(&self, index: usize, out: &mut Image) -> Result<usize> {
        if index >= self.len {
            return Err(index_error(self, index));
        }
        Ok(draw_synthetic(self.seed, index, out))
    }
}
