//! The AVX2+FMA tile: 6 rows by one block of 16 lanes (two 8-lane registers), 12 of the 16
//! registers accumulating.

use super::{MR, NR};
use std::arch::x86_64::*;

/// One block's sums over `ks`, from zero or (`start` given) from `start[r][..NR]`.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `src + rows[r] + ks[k]` and `b + k * k_stride + l`
/// (`l < NR`) must be readable for every `r`, `k`, `l`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn tile(
    src: *const f32,
    rows: &[usize; MR],
    ks: &[usize],
    b: *const f32,
    k_stride: usize,
    start: Option<&[[f32; NR]; MR]>,
) -> [[f32; NR]; MR] {
    // SAFETY (whole body): the caller guarantees every pointer formed here is in bounds and
    // that the CPU has AVX2 and FMA.
    unsafe {
        let p: [*const f32; MR] = rows.map(|r| src.add(r));
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        if let Some(start) = start {
            for (acc, s) in acc.iter_mut().zip(start) {
                acc[0] = _mm256_loadu_ps(s.as_ptr());
                acc[1] = _mm256_loadu_ps(s.as_ptr().add(8));
            }
        }
        let mut bp = b;
        for &k in ks {
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            bp = bp.add(k_stride);
            for r in 0..MR {
                let a = _mm256_broadcast_ss(&*p[r].add(k));
                acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
            }
        }
        let mut out = [[0.0f32; NR]; MR];
        for r in 0..MR {
            _mm256_storeu_ps(out[r].as_mut_ptr(), acc[r][0]);
            _mm256_storeu_ps(out[r].as_mut_ptr().add(8), acc[r][1]);
        }
        out
    }
}
