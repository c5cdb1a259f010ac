//! The micro-kernel of the direct convolution: one `MR x NR` tile of an "offset-gather" matrix
//! product,
//!
//! ```text
//! tile[r][l] = sum over k of  src[rows[r] + ks[k]] * b[k * b_stride + l]      (r < MR, l < NR)
//! ```
//!
//! `src` is a channels-last image (or its gradient), `rows` and `ks` are offsets into it whose
//! sums address the left operand, and `b` holds `NR` contiguous floats per `k`. The forward
//! convolution takes `rows` = output pixels and `ks` = (tap, input channel) with `b` the packed
//! weights; the weight gradient takes `rows` = (tap, input channel) and `ks` = output pixels with
//! `b` the channels-last output gradient. No operand is packed per call.
//!
//! The sum over `k` runs in order with one accumulator per element, so a tile's bits do not depend
//! on how the caller partitions the work. The AVX2+FMA kernel keeps the 12 accumulators in
//! registers, broadcasting each left value against two 8-lane vectors of `b`; the portable
//! kernel computes the same sums (with separate multiply and add, so its bits differ).

#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::has_avx2_fma;

/// Rows of a tile (output pixels in the forward).
pub const MR: usize = 6;
/// Lanes of a tile (output channels in the forward), two 8-float vectors.
pub const NR: usize = 16;

/// One tile of results, `[MR][NR]`.
pub type Tile = [[f32; NR]; MR];

/// A table of `k` offsets with its largest entry, so a tile can check its reads in O(1).
#[derive(Clone, Debug, Default)]
pub struct Offsets {
    pub values: Vec<usize>,
    pub max: usize,
}

impl Offsets {
    pub fn new(values: Vec<usize>) -> Self {
        let max = values.iter().copied().max().unwrap_or(0);
        Offsets { values, max }
    }
}

/// Computes one tile over `ks[range]`: `tile[r][l] = sum_k src[rows[r] + ks[k]] * b[(k - start) *
/// b_stride + l]`.
///
/// Panics if a read would fall outside `src` or `b` (a bug in the caller's tables).
pub fn tile(
    src: &[f32],
    rows: &[usize; MR],
    ks: &Offsets,
    range: std::ops::Range<usize>,
    b: &[f32],
    b_stride: usize,
) -> Tile {
    let ks_slice = &ks.values[range];
    if ks_slice.is_empty() {
        return [[0.0; NR]; MR];
    }
    check_reads(src, rows, ks, ks_slice.len(), b.len(), b_stride);
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked above), and every read stays in
        // bounds: src[rows[r] + ks[k]] <= row_max + ks.max < src.len(), and b is read at
        // k * b_stride + l < (len - 1) * b_stride + NR <= b.len().
        return unsafe { avx2::tile(src.as_ptr(), rows, ks_slice, b.as_ptr(), b_stride) };
    }
    portable_tile(src, rows, ks_slice, b, b_stride)
}

/// Adds one tile over `ks[range]` into `dst`: `dst[r * dst_stride + l] += tile[r][l]` for the
/// first `valid_rows` rows (the others, duplicates padding a partial tile, are dropped). The tile
/// is summed from zero as in [`tile`] and added at the end, so the bits are those of adding
/// [`tile`]'s result; but no tile leaves the registers.
///
/// Panics if a read or write would fall outside `src`, `b` or `dst`.
pub fn tile_add(
    src: &[f32],
    rows: &[usize; MR],
    ks: &Offsets,
    range: std::ops::Range<usize>,
    (b, b_stride): (&[f32], usize),
    (dst, dst_stride): (&mut [f32], usize),
    valid_rows: usize,
) {
    let ks_slice = &ks.values[range];
    let valid_rows = valid_rows.min(MR);
    if ks_slice.is_empty() || valid_rows == 0 {
        return;
    }
    check_reads(src, rows, ks, ks_slice.len(), b.len(), b_stride);
    assert!(
        (valid_rows - 1) * dst_stride + NR <= dst.len(),
        "direct conv tile writes past its destination"
    );
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2 and FMA are present; reads are in bounds as in `tile`, and the writes
        // touch dst[r * dst_stride + l] <= (valid_rows - 1) * dst_stride + NR - 1 < dst.len().
        return unsafe {
            avx2::tile_add(
                src.as_ptr(),
                rows,
                ks_slice,
                (b.as_ptr(), b_stride),
                (dst.as_mut_ptr(), dst_stride),
                valid_rows,
            )
        };
    }
    let t = portable_tile(src, rows, ks_slice, b, b_stride);
    for (r, values) in t.iter().enumerate().take(valid_rows) {
        let d = &mut dst[r * dst_stride..][..NR];
        d.iter_mut().zip(values).for_each(|(d, &v)| *d += v);
    }
}

/// Panics unless every read of a tile over `k_len >= 1` offsets stays inside `src` (at
/// `rows[r] + ks[k]`) and `b` (at `k * b_stride + l`, `l < NR`): the O(1) check that makes the
/// unchecked AVX2 loads sound.
fn check_reads(
    src: &[f32],
    rows: &[usize; MR],
    ks: &Offsets,
    k_len: usize,
    b_len: usize,
    b_stride: usize,
) {
    let row_max = rows.iter().copied().max().unwrap_or(0);
    assert!(
        row_max + ks.max < src.len(),
        "direct conv tile reads past its source"
    );
    assert!(
        (k_len - 1) * b_stride + NR <= b_len,
        "direct conv tile reads past its right operand"
    );
}

/// The same sums in plain Rust.
pub fn portable_tile(
    src: &[f32],
    rows: &[usize; MR],
    ks: &[usize],
    b: &[f32],
    b_stride: usize,
) -> Tile {
    let mut acc = [[0.0f32; NR]; MR];
    for (step, &k) in ks.iter().enumerate() {
        let b_row = &b[step * b_stride..][..NR];
        for (acc_row, &row) in acc.iter_mut().zip(rows) {
            let a = src[row + k];
            for (acc, &bv) in acc_row.iter_mut().zip(b_row) {
                *acc += a * bv;
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{MR, NR, Tile};
    use std::arch::x86_64::*;

    /// The accumulators of one tile.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `src + rows[r] + ks[k]` and `b + k * b_stride + l`
    /// (`l < NR`) must be readable for every `r`, `k`, `l`.
    #[inline(always)]
    unsafe fn sums(
        src: *const f32,
        rows: &[usize; MR],
        ks: &[usize],
        b: *const f32,
        b_stride: usize,
    ) -> [[__m256; 2]; MR] {
        // SAFETY (whole body): the caller guarantees every pointer formed here is in bounds and
        // that the CPU has AVX2 and FMA.
        unsafe {
            let p: [*const f32; MR] = rows.map(|r| src.add(r));
            let mut acc = [[_mm256_setzero_ps(); 2]; MR];
            let mut bp = b;
            for &k in ks {
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                bp = bp.add(b_stride);
                for r in 0..MR {
                    let a = _mm256_broadcast_ss(&*p[r].add(k));
                    acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
                    acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
                }
            }
            acc
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; `src + rows[r] + ks[k]`, `b + k * b_stride + l` and
    /// `dst + r * dst_stride + l` (`r < valid_rows`, `l < NR`) must be in bounds.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile_add(
        src: *const f32,
        rows: &[usize; MR],
        ks: &[usize],
        (b, b_stride): (*const f32, usize),
        (dst, dst_stride): (*mut f32, usize),
        valid_rows: usize,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            let acc = sums(src, rows, ks, b, b_stride);
            for (r, acc) in acc.iter().enumerate().take(valid_rows) {
                let d = dst.add(r * dst_stride);
                _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), acc[0]));
                let d = d.add(8);
                _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), acc[1]));
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile(
        src: *const f32,
        rows: &[usize; MR],
        ks: &[usize],
        b: *const f32,
        b_stride: usize,
    ) -> Tile {
        // SAFETY (whole body): the caller guarantees every pointer formed here is in bounds.
        unsafe {
            let acc = sums(src, rows, ks, b, b_stride);
            let mut out = [[0.0f32; NR]; MR];
            for r in 0..MR {
                _mm256_storeu_ps(out[r].as_mut_ptr(), acc[r][0]);
                _mm256_storeu_ps(out[r].as_mut_ptr().add(8), acc[r][1]);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{random_values, to_f32};

    fn seeded_vec(seed: u64, len: usize) -> Vec<f32> {
        to_f32(&random_values(len, 1.0, seed))
    }

    #[test]
    fn fast_kernel_matches_portable_within_rounding() {
        let src = seeded_vec(1, 4000);
        let b = seeded_vec(2, 300 * 20);
        let rows = [0, 7, 100, 101, 2000, 3000];
        let ks = Offsets::new((0..300).map(|k| (k * 3) % 900).collect());
        let fast = tile(&src, &rows, &ks, 0..300, &b, 20);
        let slow = portable_tile(&src, &rows, &ks.values, &b, 20);
        for r in 0..MR {
            for l in 0..NR {
                let exact: f64 = (0..300)
                    .map(|k| src[rows[r] + ks.values[k]] as f64 * b[k * 20 + l] as f64)
                    .sum();
                assert!((fast[r][l] as f64 - exact).abs() < 1e-4, "{r} {l}");
                assert!((slow[r][l] as f64 - exact).abs() < 1e-4, "{r} {l}");
            }
        }
    }

    #[test]
    fn sub_range_reads_b_from_its_start() {
        let src = seeded_vec(3, 64);
        let b = seeded_vec(4, 10 * NR);
        let rows = [0; MR];
        let ks = Offsets::new((0..10).collect());
        let part = tile(&src, &rows, &ks, 4..10, &b[4 * NR..], NR);
        let want = portable_tile(&src, &rows, &ks.values[4..10], &b[4 * NR..], NR);
        for r in 0..MR {
            for l in 0..NR {
                assert!((part[r][l] - want[r][l]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn tile_add_adds_the_valid_rows_of_the_tile() {
        let src = seeded_vec(5, 500);
        let b = seeded_vec(6, 40 * NR);
        let rows = [3, 50, 97, 140, 200, 260];
        let ks = Offsets::new((0..40).map(|k| k * 5).collect());
        let stride = NR + 3;
        let mut dst = seeded_vec(7, 6 * stride);
        let before = dst.clone();
        tile_add(&src, &rows, &ks, 0..40, (&b, NR), (&mut dst, stride), 4);
        let t = tile(&src, &rows, &ks, 0..40, &b, NR);
        for r in 0..MR {
            for l in 0..NR {
                let want = if r < 4 {
                    before[r * stride + l] + t[r][l]
                } else {
                    before[r * stride + l]
                };
                assert_eq!(dst[r * stride + l].to_bits(), want.to_bits(), "{r} {l}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "reads past its source")]
    fn out_of_bounds_rows_panic() {
        let src = vec![0.0; 10];
        let b = vec![0.0; NR];
        let ks = Offsets::new(vec![5]);
        tile(&src, &[5; MR], &ks, 0..1, &b, NR);
    }
}
