//! From u8 HWC to normalised f32 CHW, and random erasing in normalised space.

use rand::RngExt;

use crate::image::Image;
use crate::seed::standard_normal;
use crate::transforms::geometry::uniform;

/// CIFAR-10 per-channel mean (of the 50,000 training images, in 0..1).
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// CIFAR-10 per-channel standard deviation (over all training pixels).
pub const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];
/// ImageNet mean, as in timm.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet std, as in timm.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Per-channel lookup table `lut[c][v] = (v/255 - mean[c]) / std[c]`.
#[derive(Clone, Debug)]
pub struct NormalizeTable {
    lut: [[f32; 256]; 3],
}

impl NormalizeTable {
    /// Builds the table; `std` must be positive (checked by the pipeline).
    pub fn new(mean: [f32; 3], std: [f32; 3]) -> Self {
        let mut lut = [[0f32; 256]; 3];
        for c in 0..3 {
            for (v, slot) in lut[c].iter_mut().enumerate() {
                *slot = (v as f32 / 255.0 - mean[c]) / std[c];
            }
        }
        NormalizeTable { lut }
    }

    /// Writes `image` as normalised planar f32: `out[c*H*W + y*W + x]`; `out.len() == 3*H*W`.
    pub fn write_chw(&self, image: &Image, out: &mut [f32]) {
        let area = image.height * image.width;
        assert_eq!(out.len(), 3 * area, "normalise output length");
        let (r, rest) = out.split_at_mut(area);
        let (g, b) = rest.split_at_mut(area);
        for (p, pixel) in image.data.chunks_exact(3).enumerate() {
            r[p] = self.lut[0][pixel[0] as usize];
            g[p] = self.lut[1][pixel[1] as usize];
            b[p] = self.lut[2][pixel[2] as usize];
        }
    }
}

/// timm `RandomErasing` settings (mode "pixel": per-pixel N(0,1) in normalised space).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RandomErasing {
    /// Probability that an image is erased at all.
    pub prob: f32,
    /// Erased area as a fraction of the image, drawn uniformly in `[min_area, max_area)`.
    pub min_area: f32,
    pub max_area: f32,
    /// Aspect ratio (h/w) log-uniform in `[min_aspect, 1/min_aspect)`.
    pub min_aspect: f32,
    /// Number of rectangles (timm `recount`).
    pub count: usize,
}

impl RandomErasing {
    /// timm's defaults with erasing probability `prob` (area 0.02..1/3, aspect 0.3..3.33, 1 box).
    pub fn with_prob(prob: f32) -> Self {
        RandomErasing {
            prob,
            min_area: 0.02,
            max_area: 1.0 / 3.0,
            min_aspect: 0.3,
            count: 1,
        }
    }

    /// Erases rectangles of the CHW image `chw` (`3 x height x width`) with N(0,1) noise.
    /// Returns the number of rectangles written.
    pub fn apply<R: rand::Rng + ?Sized>(
        &self,
        chw: &mut [f32],
        height: usize,
        width: usize,
        rng: &mut R,
    ) -> usize {
        if rng.random::<f32>() >= self.prob {
            return 0;
        }
        let area = (height * width) as f64;
        let (log_lo, log_hi) = (
            (self.min_aspect as f64).ln(),
            (1.0 / self.min_aspect as f64).ln(),
        );
        let mut erased = 0;
        for _ in 0..self.count {
            for _attempt in 0..10 {
                let target = uniform(rng, self.min_area as f64, self.max_area as f64) * area
                    / self.count as f64;
                let aspect = uniform(rng, log_lo, log_hi).exp();
                let h = (target * aspect).sqrt().round() as usize;
                let w = (target / aspect).sqrt().round() as usize;
                if w < width && h < height {
                    let top = rng.random_range(0..=height - h);
                    let left = rng.random_range(0..=width - w);
                    for c in 0..3 {
                        for y in top..top + h {
                            let row = c * height * width + y * width;
                            for v in &mut chw[row + left..row + left + w] {
                                *v = standard_normal(rng) as f32;
                            }
                        }
                    }
                    erased += 1;
                    break;
                }
            }
        }
        erased
    }
}
