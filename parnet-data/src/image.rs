//! `Image`: an owned RGB u8 image, interleaved (HWC), the currency of datasets and transforms.

/// An RGB image of `height x width` pixels stored row-major, interleaved: `data[(y*width + x)*3 + c]`.
///
/// Invariant: `data.len() == height * width * 3`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    pub height: usize,
    pub width: usize,
    pub data: Vec<u8>,
}

impl Image {
    /// Number of channels; always 3 (RGB).
    pub const CHANNELS: usize = 3;

    /// A black image.
    pub fn zeros(height: usize, width: usize) -> Self {
        Image {
            height,
            width,
            data: vec![0; height * width * 3],
        }
    }

    /// Wraps interleaved RGB bytes. Panics if the length does not match (internal invariant).
    pub fn from_hwc(height: usize, width: usize, data: Vec<u8>) -> Self {
        assert_eq!(data.len(), height * width * 3, "Image::from_hwc length");
        Image {
            height,
            width,
            data,
        }
    }

    /// Builds an image from planar (CHW, CIFAR order) bytes.
    pub fn from_chw(height: usize, width: usize, planes: &[u8]) -> Self {
        let mut image = Image::default();
        image.set_from_chw(height, width, planes);
        image
    }

    /// Overwrites `self` with planar (CHW) bytes, reusing the allocation.
    pub fn set_from_chw(&mut self, height: usize, width: usize, planes: &[u8]) {
        let area = height * width;
        assert_eq!(planes.len(), area * 3, "Image::set_from_chw length");
        self.resize_to(height, width);
        for (p, pixel) in self.data.chunks_exact_mut(3).enumerate() {
            pixel[0] = planes[p];
            pixel[1] = planes[area + p];
            pixel[2] = planes[2 * area + p];
        }
    }

    /// Writes the image as planar (CHW) bytes into `out` (length `3*h*w`).
    pub fn write_chw(&self, out: &mut [u8]) {
        let area = self.height * self.width;
        assert_eq!(out.len(), area * 3, "Image::write_chw length");
        for (p, pixel) in self.data.chunks_exact(3).enumerate() {
            out[p] = pixel[0];
            out[area + p] = pixel[1];
            out[2 * area + p] = pixel[2];
        }
    }

    /// Sets the size, keeping the allocation; pixel contents are unspecified afterwards.
    pub fn resize_to(&mut self, height: usize, width: usize) {
        self.height = height;
        self.width = width;
        self.data.resize(height * width * 3, 0);
    }

    /// Pixel `(y, x)` as `[r, g, b]`.
    #[inline]
    pub fn pixel(&self, y: usize, x: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Sets pixel `(y, x)`.
    #[inline]
    pub fn set_pixel(&mut self, y: usize, x: usize, rgb: [u8; 3]) {
        let i = (y * self.width + x) * 3;
        self.data[i..i + 3].copy_from_slice(&rgb);
    }
}
