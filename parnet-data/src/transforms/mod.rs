//! Transforms on u8 RGB images and the serde-friendly `Pipeline` that chains them, normalises
//! to f32 CHW and optionally erases. All randomness comes from the RNG handed in, which the
//! loader derives from (seed, epoch, sample index).

pub mod geometry;
pub mod normalize;
pub mod randaugment;
pub mod resample;
#[cfg(test)]
mod tests;

use rand::RngExt;

use crate::error::{DataError, Result};
use crate::image::Image;
pub use geometry::Interpolation;
pub use normalize::{
    CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, NormalizeTable, RandomErasing,
};
pub use randaugment::RandAugment;

/// timm's default evaluation `crop_pct` of the ImageNet networks (spec 7.1): resize the shorter
/// side to `floor(size / 0.875)`, then centre-crop `size`.
pub const IMAGENET_CROP_PCT: f64 = 0.875;

/// One step on u8 images.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ImageOp {
    /// Zero-pad by `padding`, then crop `height x width` at a random offset (CIFAR "shifting").
    RandomCrop {
        height: usize,
        width: usize,
        padding: usize,
    },
    /// Mirror left-right with probability `prob`.
    HorizontalFlip { prob: f32 },
    /// timm `RandomResizedCropAndInterpolation` to `size x size`.
    RandomResizedCrop {
        size: usize,
        scale: [f32; 2],
        ratio: [f32; 2],
        interpolation: Interpolation,
    },
    /// Resize the shorter side to `resize`, then centre-crop `crop x crop` (evaluation).
    ResizeCenterCrop {
        resize: usize,
        crop: usize,
        interpolation: Interpolation,
    },
    /// Resize to exactly `height x width`.
    Resize {
        height: usize,
        width: usize,
        interpolation: Interpolation,
    },
    /// RandAugment (PARNET-SPEC 7.1).
    RandAugment(RandAugment),
}

/// Reusable working images for [`Pipeline::apply_into`] and [`ImageOp::apply`].
#[derive(Default, Debug)]
pub struct Scratch {
    pub image: Image,
    pub other: Image,
    pub spare: Image,
}

/// A full per-sample transform: u8 ops, then normalisation to f32 CHW, then random erasing.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pipeline {
    pub ops: Vec<ImageOp>,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub random_erasing: Option<RandomErasing>,
}

impl ImageOp {
    /// Output size for an input of `(height, width)`, or an error if the op cannot apply.
    pub fn output_size(&self, (h, w): (usize, usize)) -> Result<(usize, usize)> {
        let bad = |detail: String| DataError::config(format!("{self:?}"), detail);
        match *self {
            ImageOp::RandomCrop {
                height,
                width,
                padding,
            } => {
                if height == 0 || width == 0 || height > h + 2 * padding || width > w + 2 * padding
                {
                    return Err(bad(format!(
                        "cannot crop {height}x{width} from {h}x{w} padded by {padding}"
                    )));
                }
                Ok((height, width))
            }
            ImageOp::HorizontalFlip { .. } | ImageOp::RandAugment(_) => Ok((h, w)),
            ImageOp::RandomResizedCrop {
                size, scale, ratio, ..
            } => {
                if size == 0
                    || !(scale[0] > 0.0 && scale[0] <= scale[1])
                    || !(ratio[0] > 0.0 && ratio[0] <= ratio[1])
                {
                    return Err(bad(
                        "size must be > 0, 0 < scale[0] <= scale[1], 0 < ratio[0] <= ratio[1]"
                            .into(),
                    ));
                }
                Ok((size, size))
            }
            ImageOp::ResizeCenterCrop { resize, crop, .. } => {
                if crop == 0 || resize < crop {
                    return Err(bad(format!("resize {resize} must be >= crop {crop} > 0")));
                }
                Ok((crop, crop))
            }
            ImageOp::Resize { height, width, .. } => {
                if height == 0 || width == 0 {
                    return Err(bad("zero size".into()));
                }
                Ok((height, width))
            }
        }
    }

    /// Applies the op to `scratch.image` (result left in `scratch.image`).
    pub fn apply<R: rand::Rng + ?Sized>(&self, scratch: &mut Scratch, rng: &mut R) {
        let Scratch {
            image,
            other,
            spare,
        } = scratch;
        match *self {
            ImageOp::RandomCrop {
                height,
                width,
                padding,
            } => {
                geometry::random_crop_padded(image, other, height, width, padding, rng);
                std::mem::swap(image, other);
            }
            ImageOp::HorizontalFlip { prob } => {
                if rng.random::<f32>() < prob {
                    geometry::flip_horizontal(image);
                }
            }
            ImageOp::RandomResizedCrop {
                size,
                scale,
                ratio,
                interpolation,
            } => {
                let window = geometry::random_resized_crop_window(
                    image.height,
                    image.width,
                    scale,
                    ratio,
                    rng,
                );
                let interpolation = interpolation.resolve(rng);
                geometry::crop_resize(image, spare, other, window, size, size, interpolation);
                std::mem::swap(image, other);
            }
            ImageOp::ResizeCenterCrop {
                resize,
                crop,
                interpolation,
            } => {
                let interpolation = interpolation.resolve(rng);
                let (rh, rw) = geometry::shorter_side_size(image.height, image.width, resize);
                geometry::resize(image, spare, rh, rw, interpolation);
                let (top, left) = geometry::center_offsets(rh, rw, crop, crop);
                geometry::crop_padded(spare, other, top as isize, left as isize, crop, crop);
                std::mem::swap(image, other);
            }
            ImageOp::Resize {
                height,
                width,
                interpolation,
            } => {
                let interpolation = interpolation.resolve(rng);
                geometry::resize(image, other, height, width, interpolation);
                std::mem::swap(image, other);
            }
            ImageOp::RandAugment(ref config) => {
                config.apply(image, other, rng);
            }
        }
    }
}

impl Pipeline {
    /// Normalisation only.
    pub fn normalize_only(mean: [f32; 3], std: [f32; 3]) -> Self {
        Pipeline {
            ops: Vec::new(),
            mean,
            std,
            random_erasing: None,
        }
    }

    /// The paper's CIFAR training scheme: pad 4 + random 32x32 crop, flip, CIFAR-10 mean/std.
    pub fn cifar_train() -> Self {
        Pipeline {
            ops: vec![
                ImageOp::RandomCrop {
                    height: 32,
                    width: 32,
                    padding: 4,
                },
                ImageOp::HorizontalFlip { prob: 0.5 },
            ],
            ..Self::cifar_eval()
        }
    }

    /// CIFAR evaluation: normalisation only.
    pub fn cifar_eval() -> Self {
        Self::normalize_only(CIFAR10_MEAN, CIFAR10_STD)
    }

    /// timm ImageNet training (spec 7.1): random-resized-crop, flip, RandAugment m9-mstd0.5,
    /// ImageNet mean/std, random erasing with probability `erase_prob` (0.2 for S/M, 0.4 for L/XL).
    pub fn imagenet_train(size: usize, erase_prob: f32) -> Self {
        Pipeline {
            ops: vec![
                ImageOp::RandomResizedCrop {
                    size,
                    scale: [0.08, 1.0],
                    ratio: [0.75, 4.0 / 3.0],
                    interpolation: Interpolation::Random,
                },
                ImageOp::HorizontalFlip { prob: 0.5 },
                ImageOp::RandAugment(RandAugment::default()),
            ],
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            random_erasing: (erase_prob > 0.0).then(|| RandomErasing::with_prob(erase_prob)),
        }
    }

    /// timm ImageNet evaluation: resize the shorter side to `floor(size / 0.875)` (bicubic),
    /// centre-crop `size`, ImageNet mean/std.
    pub fn imagenet_eval(size: usize) -> Self {
        Self::resize_center_crop_eval(
            size,
            IMAGENET_CROP_PCT,
            Interpolation::Bicubic,
            IMAGENET_MEAN,
            IMAGENET_STD,
        )
    }

    /// timm's evaluation transform of any crop: resize the shorter side to
    /// `floor(size / crop_pct)` with `interpolation` (Pillow's pixels for bilinear and bicubic),
    /// centre-crop `size x size` (torchvision's rounding), normalise with `mean`/`std`.
    pub fn resize_center_crop_eval(
        size: usize,
        crop_pct: f64,
        interpolation: Interpolation,
        mean: [f32; 3],
        std: [f32; 3],
    ) -> Self {
        Pipeline {
            ops: vec![ImageOp::ResizeCenterCrop {
                resize: (size as f64 / crop_pct).floor() as usize,
                crop: size,
                interpolation,
            }],
            mean,
            std,
            random_erasing: None,
        }
    }

    /// Checks the settings and returns the output size for inputs of `input` size.
    pub fn output_size(&self, input: (usize, usize)) -> Result<(usize, usize)> {
        if self.std.iter().any(|&s| !(s > 0.0 && s.is_finite()))
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return Err(DataError::config(
                "pipeline",
                format!(
                    "std {:?} must be positive and mean {:?} finite",
                    self.std, self.mean
                ),
            ));
        }
        self.ops
            .iter()
            .try_fold(input, |size, op| op.output_size(size))
    }

    /// Output size if it does not depend on the input (the last resizing op fixes it).
    pub fn fixed_output_size(&self) -> Option<(usize, usize)> {
        self.ops.iter().rev().find_map(|op| match *op {
            ImageOp::RandomCrop { height, width, .. } | ImageOp::Resize { height, width, .. } => {
                Some((height, width))
            }
            ImageOp::RandomResizedCrop { size, .. } => Some((size, size)),
            ImageOp::ResizeCenterCrop { crop, .. } => Some((crop, crop)),
            _ => None,
        })
    }

    /// Runs the u8 ops on `scratch.image` in place.
    pub fn apply_image_ops<R: rand::Rng + ?Sized>(&self, scratch: &mut Scratch, rng: &mut R) {
        for op in &self.ops {
            op.apply(scratch, rng);
        }
    }

    /// Runs the whole pipeline on `scratch.image`, writing normalised CHW f32 into `out`
    /// (`out.len()` must be 3·H·W of the result). `table` must come from this pipeline's mean/std.
    pub fn apply_into<R: rand::Rng + ?Sized>(
        &self,
        table: &NormalizeTable,
        scratch: &mut Scratch,
        out: &mut [f32],
        rng: &mut R,
    ) {
        self.apply_image_ops(scratch, rng);
        table.write_chw(&scratch.image, out);
        if let Some(erasing) = &self.random_erasing {
            erasing.apply(out, scratch.image.height, scratch.image.width, rng);
        }
    }

    /// The normalisation table for this pipeline.
    pub fn table(&self) -> NormalizeTable {
        NormalizeTable::new(self.mean, self.std)
    }
}
