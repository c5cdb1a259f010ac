//! Channels-last copies with zero borders, the layout every direct-convolution kernel reads.

use rayon::prelude::*;

use crate::tensor::Buffer;

/// A batch `[N, C, H, W]` copied to `[N, H + 2p, W + 2p, stride]` with zero borders: channel `ch`
/// of group `ch / per_group` sits at `(ch / per_group) * group_stride + ch % per_group` of its
/// pixel's `stride` floats, and every other float is zero. With one group and `group_stride =
/// per_group = C`, a pixel is simply its `C` channels.
pub struct ChannelsLast {
    pub data: Buffer,
    /// Padded height and width.
    pub height: usize,
    pub width: usize,
    /// Floats per pixel.
    pub stride: usize,
}

/// How the channels of a source are spread over a pixel of a [`ChannelsLast`] copy.
#[derive(Clone, Copy, Debug)]
pub struct ChannelSpread {
    pub per_group: usize,
    pub group_stride: usize,
    pub stride: usize,
}

impl ChannelSpread {
    /// Channels packed densely: `stride = channels`.
    pub fn dense(channels: usize) -> Self {
        ChannelSpread {
            per_group: channels,
            group_stride: channels,
            stride: channels,
        }
    }

    /// Each group's `per_group` channels start at a multiple of `align` floats.
    pub fn aligned(groups: usize, per_group: usize, align: usize) -> Self {
        let group_stride = per_group.div_ceil(align) * align;
        ChannelSpread {
            per_group,
            group_stride,
            stride: groups * group_stride,
        }
    }

    fn position(&self, ch: usize) -> usize {
        (ch / self.per_group) * self.group_stride + ch % self.per_group
    }
}

impl ChannelsLast {
    /// Copies `src` (`dims = [N, C, H, W]`) with `pad` zero pixels on every side, plus `slack`
    /// zero floats after the last image (reads of junk tile rows may run that far).
    pub fn from_nchw(
        src: &[f32],
        [n, c, h, w]: [usize; 4],
        pad: usize,
        spread: ChannelSpread,
        slack: usize,
    ) -> Self {
        debug_assert_eq!(src.len(), n * c * h * w);
        let (hp, wp, stride) = (h + 2 * pad, w + 2 * pad, spread.stride);
        let row_len = wp * stride;
        let mut data = Buffer::for_overwrite(n * hp * row_len + slack);
        let (rows, tail) = data.split_at_mut(n * hp * row_len);
        tail.fill(0.0);
        let positions: Vec<usize> = (0..c).map(|ch| spread.position(ch)).collect();
        rows.par_chunks_mut(row_len)
            .enumerate()
            .for_each(|(row, dst)| {
                let (image, y) = (row / hp, row % hp);
                dst.fill(0.0);
                if y < pad || y >= pad + h {
                    return;
                }
                let image_src = &src[image * c * h * w..][..c * h * w];
                let row_src = &image_src[(y - pad) * w..];
                transpose_row(
                    row_src,
                    h * w,
                    c,
                    w,
                    &positions,
                    &mut dst[pad * stride..],
                    stride,
                );
            });
        ChannelsLast {
            data,
            height: hp,
            width: wp,
            stride,
        }
    }

    /// Offset of padded pixel `(y, x)` of image `n`.
    #[inline]
    pub fn pixel(&self, n: usize, y: usize, x: usize) -> usize {
        ((n * self.height + y) * self.width + x) * self.stride
    }
}

/// Writes `dst[x * stride + positions[ch]] = src[ch * plane + x]` for `ch < channels`, `x < w`:
/// one row of `channels` planes (`plane` floats apart) turned channels-last. Runs of 8 channels
/// that stay contiguous in `dst` go through an 8x8 register transpose.
fn transpose_row(
    src: &[f32],
    plane: usize,
    channels: usize,
    w: usize,
    positions: &[usize],
    dst: &mut [f32],
    stride: usize,
) {
    assert!(channels == 0 || (channels - 1) * plane + w <= src.len());
    assert!(w == 0 || positions.iter().all(|&p| (w - 1) * stride + p < dst.len()));
    let mut ch = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::simd::has_avx2_fma() {
        while ch + 8 <= channels && positions[ch + 7] == positions[ch] + 7 {
            let mut x = 0;
            while x + 8 <= w {
                // SAFETY: AVX2 is present; rows ch..ch+8 of src hold x..x+8 (checked above:
                // (ch + 7) * plane + x + 7 < (channels - 1) * plane + w), and dst pixels
                // x..x+8 hold positions[ch]..positions[ch] + 8 (contiguous, checked above).
                unsafe {
                    avx2::transpose8x8(
                        src.as_ptr().add(ch * plane + x),
                        plane,
                        dst.as_mut_ptr().add(x * stride + positions[ch]),
                        stride,
                    )
                };
                x += 8;
            }
            for x in x..w {
                for k in 0..8 {
                    dst[x * stride + positions[ch] + k] = src[(ch + k) * plane + x];
                }
            }
            ch += 8;
        }
    }
    for ch in ch..channels {
        let at = positions[ch];
        for (x, &v) in src[ch * plane..][..w].iter().enumerate() {
            dst[x * stride + at] = v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// `dst[j * dst_stride + i] = src[i * src_stride + j]` for `i, j < 8`.
    ///
    /// # Safety
    /// AVX2 must be present and all 64 source and destination floats in bounds.
    #[target_feature(enable = "avx2")]
    pub unsafe fn transpose8x8(
        src: *const f32,
        src_stride: usize,
        dst: *mut f32,
        dst_stride: usize,
    ) {
        // SAFETY (whole body): the caller guarantees the 8 rows of 8 floats are in bounds.
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * src_stride)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let out = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (j, v) in out.into_iter().enumerate() {
                _mm256_storeu_ps(dst.add(j * dst_stride), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_channels_last_with_zero_borders_and_spread_groups() {
        let dims = [2, 4, 3, 2];
        let src: Vec<f32> = (0..48).map(|v| v as f32 + 1.0).collect();
        let spread = ChannelSpread::aligned(2, 2, 4);
        let cl = ChannelsLast::from_nchw(&src, dims, 1, spread, 3);
        assert_eq!((cl.height, cl.width, cl.stride), (5, 4, 8));
        assert_eq!(cl.data.len(), 2 * 5 * 4 * 8 + 3);
        for n in 0..2 {
            for y in 0..5 {
                for x in 0..4 {
                    for s in 0..8 {
                        let (g, local) = (s / 4, s % 4);
                        let inside = (1..4).contains(&y) && (1..3).contains(&x) && local < 2;
                        let want = if inside {
                            let ch = g * 2 + local;
                            src[((n * 4 + ch) * 3 + y - 1) * 2 + x - 1]
                        } else {
                            0.0
                        };
                        assert_eq!(cl.data[cl.pixel(n, y, x) + s], want, "{n} {y} {x} {s}");
                    }
                }
            }
        }
        assert!(cl.data[2 * 5 * 4 * 8..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn transposes_whole_blocks_and_remainders() {
        // 19 channels (two runs of 8 and 3 left over) by 21 pixels (two blocks and 5 left).
        let (channels, w, plane) = (19, 21, 30);
        let src: Vec<f32> = (0..channels * plane).map(|v| v as f32).collect();
        let stride = 24;
        let positions: Vec<usize> = (0..channels).map(|ch| ch + ch / 10).collect();
        let mut dst = vec![-1.0; w * stride];
        transpose_row(&src, plane, channels, w, &positions, &mut dst, stride);
        for x in 0..w {
            for ch in 0..channels {
                assert_eq!(
                    dst[x * stride + positions[ch]],
                    src[ch * plane + x],
                    "{x} {ch}"
                );
            }
        }
    }
}
