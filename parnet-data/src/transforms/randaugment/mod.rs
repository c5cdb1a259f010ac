//! RandAugment as timm 0.4.12 `rand-m9-mstd0.5` (PARNET-SPEC 7.1): `num_ops` operations drawn
//! uniformly with replacement from 15, each applied with probability `prob`, at a magnitude drawn
//! from N(magnitude, magnitude_std) clipped to [0, 10].

pub mod affine;
pub mod colour;
#[cfg(test)]
mod tests;

use rand::RngExt;

use crate::image::Image;
use crate::seed::standard_normal;
use crate::transforms::geometry::Interpolation;

/// The 15 operations of timm's `_RAND_TRANSFORMS`, in timm's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AugmentOp {
    AutoContrast,
    Equalize,
    Invert,
    Rotate,
    Posterize,
    Solarize,
    SolarizeAdd,
    Color,
    Contrast,
    Brightness,
    Sharpness,
    ShearX,
    ShearY,
    TranslateXRel,
    TranslateYRel,
}

/// All operations, in timm's order.
pub const AUGMENT_OPS: [AugmentOp; 15] = [
    AugmentOp::AutoContrast,
    AugmentOp::Equalize,
    AugmentOp::Invert,
    AugmentOp::Rotate,
    AugmentOp::Posterize,
    AugmentOp::Solarize,
    AugmentOp::SolarizeAdd,
    AugmentOp::Color,
    AugmentOp::Contrast,
    AugmentOp::Brightness,
    AugmentOp::Sharpness,
    AugmentOp::ShearX,
    AugmentOp::ShearY,
    AugmentOp::TranslateXRel,
    AugmentOp::TranslateYRel,
];

/// Highest magnitude level (timm `_MAX_LEVEL`).
pub const MAX_LEVEL: f64 = 10.0;

/// RandAugment settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RandAugment {
    pub num_ops: usize,
    pub magnitude: f64,
    pub magnitude_std: f64,
    /// Probability that each chosen op is applied.
    pub prob: f64,
    /// Fill colour of geometric ops (timm: the dataset mean, `round(255 * mean)`).
    pub fill: [u8; 3],
    /// Translation range as a fraction of the image side (timm 0.45).
    pub translate_pct: f64,
    /// Resampling of geometric ops; `Random` picks bilinear or bicubic per op (timm default).
    pub interpolation: Interpolation,
}

impl Default for RandAugment {
    /// `rand-m9-mstd0.5` with the ImageNet-mean fill.
    fn default() -> Self {
        RandAugment {
            num_ops: 2,
            magnitude: 9.0,
            magnitude_std: 0.5,
            prob: 0.5,
            fill: [124, 116, 104],
            translate_pct: 0.45,
            interpolation: Interpolation::Random,
        }
    }
}

/// `v` with a random sign (timm `_randomly_negate`).
fn randomly_negate<R: rand::Rng + ?Sized>(v: f64, rng: &mut R) -> f64 {
    if rng.random_bool(0.5) { -v } else { v }
}

/// Applies one op at `level` (0..=10) to `image`; `scratch` is working space.
/// Random signs and interpolation are drawn from `rng` for the ops that need them.
pub fn apply_op<R: rand::Rng + ?Sized>(
    op: AugmentOp,
    level: f64,
    config: &RandAugment,
    image: &mut Image,
    scratch: &mut Image,
    rng: &mut R,
) {
    let frac = level / MAX_LEVEL;
    let enhance = (frac * 1.8 + 0.1) as f32;
    let (h, w) = (image.height, image.width);
    let matrix = match op {
        AugmentOp::AutoContrast => return colour::auto_contrast(image),
        AugmentOp::Equalize => return colour::equalize(image),
        AugmentOp::Invert => return colour::invert(image),
        AugmentOp::Posterize => return colour::posterize(image, (frac * 4.0) as u32),
        AugmentOp::Solarize => return colour::solarize(image, (frac * 256.0) as u32),
        AugmentOp::SolarizeAdd => return colour::solarize_add(image, (frac * 110.0) as u32, 128),
        AugmentOp::Color => return colour::color(image, enhance),
        AugmentOp::Contrast => return colour::contrast(image, enhance),
        AugmentOp::Brightness => return colour::brightness(image, enhance),
        AugmentOp::Sharpness => return colour::sharpness(image, enhance, scratch),
        AugmentOp::Rotate => affine::rotation(h, w, randomly_negate(frac * 30.0, rng)),
        AugmentOp::ShearX => [1.0, randomly_negate(frac * 0.3, rng), 0.0, 0.0, 1.0, 0.0],
        AugmentOp::ShearY => [1.0, 0.0, 0.0, randomly_negate(frac * 0.3, rng), 1.0, 0.0],
        AugmentOp::TranslateXRel => {
            let dx = randomly_negate(frac * config.translate_pct, rng) * w as f64;
            [1.0, 0.0, dx, 0.0, 1.0, 0.0]
        }
        AugmentOp::TranslateYRel => {
            let dy = randomly_negate(frac * config.translate_pct, rng) * h as f64;
            [1.0, 0.0, 0.0, 0.0, 1.0, dy]
        }
    };
    let interpolation = config.interpolation.resolve(rng);
    affine::warp_affine(image, scratch, &matrix, interpolation, config.fill);
    std::mem::swap(image, scratch);
}

impl RandAugment {
    /// Applies the policy to `image` in place; returns the ops that were applied (for tests/logs).
    pub fn apply<R: rand::Rng + ?Sized>(
        &self,
        image: &mut Image,
        scratch: &mut Image,
        rng: &mut R,
    ) -> [Option<AugmentOp>; 4] {
        let mut applied = [None; 4];
        let chosen: Vec<AugmentOp> = (0..self.num_ops)
            .map(|_| AUGMENT_OPS[rng.random_range(0..AUGMENT_OPS.len())])
            .collect();
        for (k, op) in chosen.into_iter().enumerate() {
            if self.prob < 1.0 && rng.random::<f64>() > self.prob {
                continue;
            }
            let mut level = self.magnitude;
            if self.magnitude_std > 0.0 {
                level += self.magnitude_std * standard_normal(rng);
            }
            let level = level.clamp(0.0, MAX_LEVEL);
            apply_op(op, level, self, image, scratch, rng);
            if let Some(slot) = applied.get_mut(k) {
                *slot = Some(op);
            }
        }
        applied
    }
}
