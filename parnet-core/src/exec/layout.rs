//! How the executor lays out a value: channels-last with a zero border, `[N, H + 2p, W + 2p,
//! stride]`, every pixel's channels contiguous and `stride` a multiple of 16 floats. A value keeps
//! this layout from the convolution that writes it to every node that reads it: the border is
//! the padding of the convolutions that read it (zero, and never written), so no convolution
//! copies or pads its input.

/// The blocked channel count: pixels start at multiples of this many floats.
pub const CHANNEL_ALIGN: usize = 16;

/// The layout of one value for a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    /// Zero pixels on every side.
    pub pad: usize,
    pub channels: usize,
    /// Floats per pixel (`channels` rounded up to [`CHANNEL_ALIGN`]).
    pub stride: usize,
}

impl Layout {
    pub fn new(batch: usize, (channels, height, width): (usize, usize, usize), pad: usize) -> Self {
        Layout {
            batch,
            height,
            width,
            pad,
            channels,
            stride: channels.div_ceil(CHANNEL_ALIGN) * CHANNEL_ALIGN,
        }
    }

    pub fn padded_height(&self) -> usize {
        self.height + 2 * self.pad
    }

    pub fn padded_width(&self) -> usize {
        self.width + 2 * self.pad
    }

    /// Floats of the whole buffer.
    pub fn len(&self) -> usize {
        self.batch * self.padded_height() * self.padded_width() * self.stride
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Floats of one image.
    pub fn image_len(&self) -> usize {
        self.padded_height() * self.padded_width() * self.stride
    }

    /// Offset of interior pixel `(y, x)` of image `n`.
    #[inline]
    pub fn pixel(&self, n: usize, y: usize, x: usize) -> usize {
        self.padded_pixel(n, y + self.pad, x + self.pad)
    }

    /// Offset of padded pixel `(py, px)` of image `n` (`(pad, pad)` is the first interior one).
    #[inline]
    pub fn padded_pixel(&self, n: usize, py: usize, px: usize) -> usize {
        ((n * self.padded_height() + py) * self.padded_width() + px) * self.stride
    }

    /// The offsets of every interior pixel, image by image, row by row.
    pub fn interior_pixels(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.batch).flat_map(move |n| {
            (0..self.height).flat_map(move |y| (0..self.width).map(move |x| self.pixel(n, y, x)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_skip_the_border_and_align_pixels() {
        let l = Layout::new(2, (20, 3, 4), 1);
        assert_eq!(l.stride, 32);
        assert_eq!((l.padded_height(), l.padded_width()), (5, 6));
        assert_eq!(l.len(), 2 * 5 * 6 * 32);
        assert_eq!(l.pixel(0, 0, 0), (6 + 1) * 32);
        assert_eq!(l.pixel(1, 2, 3), ((5 + 3) * 6 + 4) * 32);
        let all: Vec<usize> = l.interior_pixels().collect();
        assert_eq!(all.len(), 2 * 3 * 4);
        assert_eq!(all[4], l.pixel(0, 1, 0));
    }
}
