//! Batch-norm arithmetic on one plane at a time: the moment and gradient sums (f32 block sums
//! added into f64, AVX2 and portable with the same bits), the affine map, and the input
//! gradient. The ops in `ops::batch_norm` and `ops::rep_merge` run them per channel on rayon.

use crate::kernels::simd::avx2_kernel;

/// f32 lanes of a partial sum (one AVX register, two SSE ones), so the loops vectorise.
const LANES: usize = 8;
/// Values per f32 partial sum before it is added into the f64 total: each lane adds at most
/// `BLOCK / LANES` = 32 terms in f32, so a partial carries a relative rounding error of a few
/// f32 ulps at most, and the totals are accurate to about that.
const BLOCK: usize = 256;

/// `(sum(u), sum(v))` of `(u, v) = terms(a[i], b[i])`: [`LANES`]-lane f32 partial sums over
/// blocks of [`BLOCK`] values, each block's lanes combined in order and added into f64 totals.
/// The order is fixed by the length alone. `avx2::block_sums` computes the same sums with the
/// same operations in the same order, so both give the same bits.
#[inline(always)]
fn block_sums(a: &[f32], b: &[f32], terms: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    debug_assert_eq!(a.len(), b.len());
    let (mut total_u, mut total_v) = (0.0f64, 0.0f64);
    for (block_a, block_b) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        let (mut acc_u, mut acc_v) = ([0.0f32; LANES], [0.0f32; LANES]);
        let (ca, cb) = (block_a.chunks_exact(LANES), block_b.chunks_exact(LANES));
        let (rest_a, rest_b) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..LANES {
                let (u, v) = terms(x[l], y[l]);
                acc_u[l] += u;
                acc_v[l] += v;
            }
        }
        let (su, sv) = combine_lanes(&acc_u, &acc_v);
        let (mut su, mut sv) = (su, sv);
        for (&x, &y) in rest_a.iter().zip(rest_b) {
            let (u, v) = terms(x, y);
            su += u as f64;
            sv += v as f64;
        }
        total_u += su;
        total_v += sv;
    }
    (total_u, total_v)
}

/// A block's lanes, added in lane order in f64.
#[inline(always)]
fn combine_lanes(u: &[f32; LANES], v: &[f32; LANES]) -> (f64, f64) {
    let (mut su, mut sv) = (0.0f64, 0.0f64);
    for l in 0..LANES {
        su += u[l] as f64;
        sv += v[l] as f64;
    }
    (su, sv)
}

/// `(sum(x - shift), sum((x - shift)^2))` over `x` ([`block_sums`]).
pub(crate) fn shifted_sums(x: &[f32], shift: f32) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::simd::has_avx2_fma() {
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2::shifted_sums(x, shift) };
    }
    block_sums(x, x, |v, _| {
        let d = v - shift;
        (d, d * d)
    })
}

/// `(sum(dy), sum(dy * ((x - mean) - mean_lo)))` over a plane ([`block_sums`]).
pub(crate) fn gradient_sums(dy: &[f32], x: &[f32], mean: f32, mean_lo: f32) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::simd::has_avx2_fma() {
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2::gradient_sums(dy, x, mean, mean_lo) };
    }
    block_sums(dy, x, |g, v| (g, g * ((v - mean) - mean_lo)))
}

/// [`block_sums`] with the lanes in one AVX register (no FMA: the same roundings as the
/// portable loop).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{BLOCK, LANES, combine_lanes};
    use std::arch::x86_64::*;

    /// Shared loop: `terms(x_vec, y_vec) -> (u_vec, v_vec)` over whole lane chunks, the scalar
    /// `tail` over the rest of each block.
    #[inline(always)]
    unsafe fn block_sums(
        a: &[f32],
        b: &[f32],
        terms: impl Fn(__m256, __m256) -> (__m256, __m256),
        tail: impl Fn(f32, f32) -> (f32, f32),
    ) -> (f64, f64) {
        debug_assert_eq!(a.len(), b.len());
        let (mut total_u, mut total_v) = (0.0f64, 0.0f64);
        for (block_a, block_b) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
            let whole = block_a.len() / LANES * LANES;
            let (mut u, mut v) = ([0.0f32; LANES], [0.0f32; LANES]);
            // SAFETY: the CPU has AVX2 (the caller's contract), and every load reads
            // `LANES` floats at `i < whole - LANES + 1` of blocks at least `whole` long.
            unsafe {
                let (mut acc_u, mut acc_v) = (_mm256_setzero_ps(), _mm256_setzero_ps());
                for i in (0..whole).step_by(LANES) {
                    let x = _mm256_loadu_ps(block_a.as_ptr().add(i));
                    let y = _mm256_loadu_ps(block_b.as_ptr().add(i));
                    let (du, dv) = terms(x, y);
                    acc_u = _mm256_add_ps(acc_u, du);
                    acc_v = _mm256_add_ps(acc_v, dv);
                }
                _mm256_storeu_ps(u.as_mut_ptr(), acc_u);
                _mm256_storeu_ps(v.as_mut_ptr(), acc_v);
            }
            let (mut su, mut sv) = combine_lanes(&u, &v);
            for (&x, &y) in block_a[whole..].iter().zip(&block_b[whole..]) {
                let (du, dv) = tail(x, y);
                su += du as f64;
                sv += dv as f64;
            }
            total_u += su;
            total_v += sv;
        }
        (total_u, total_v)
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn shifted_sums(x: &[f32], shift: f32) -> (f64, f64) {
        let s = _mm256_set1_ps(shift);
        // SAFETY: AVX2 is present (the caller's contract).
        unsafe {
            block_sums(
                x,
                x,
                |v, _| {
                    let d = _mm256_sub_ps(v, s);
                    (d, _mm256_mul_ps(d, d))
                },
                |v, _| {
                    let d = v - shift;
                    (d, d * d)
                },
            )
        }
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn gradient_sums(dy: &[f32], x: &[f32], mean: f32, mean_lo: f32) -> (f64, f64) {
        let (m, lo) = (_mm256_set1_ps(mean), _mm256_set1_ps(mean_lo));
        // SAFETY: AVX2 is present (the caller's contract).
        unsafe {
            block_sums(
                dy,
                x,
                |g, v| (g, _mm256_mul_ps(g, _mm256_sub_ps(_mm256_sub_ps(v, m), lo))),
                |g, v| (g, g * ((v - mean) - mean_lo)),
            )
        }
    }
}

avx2_kernel! {
/// `out[i] = ((x[i] - mean_hi) - mean_lo) * scale + shift`.
pub(crate) fn affine_plane / affine_plane_portable(x: &[f32], mean_hi: f32, mean_lo: f32, scale: f32, shift: f32, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = ((v - mean_hi) - mean_lo) * scale + shift;
    }
}
}

avx2_kernel! {
/// `dx[i] = a * (dy[i] - b - ((x[i] - mean) - mean_lo) * k)`.
pub(crate) fn input_gradient_plane / input_gradient_plane_portable(dy: &[f32], x: &[f32], means: (f32, f32), coefficients: (f32, f32, f32), dx: &mut [f32]) {
    let ((mean, mean_lo), (a, b, k)) = (means, coefficients);
    for ((d, &v), &g) in dx.iter_mut().zip(x).zip(dy) {
        *d = a * (g - b - ((v - mean) - mean_lo) * k);
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{random_values, to_f32};

    /// The dispatched reductions (AVX2 on this machine when it has it) give the portable loop's
    /// bits, over lengths with partial lane chunks and several blocks, and stay close to f64.
    #[test]
    fn dispatched_reductions_match_the_portable_loop_bit_for_bit() {
        for (len, seed) in [
            (1usize, 1u64),
            (7, 2),
            (8, 3),
            (255, 4),
            (256, 5),
            (1000, 6),
            (4099, 7),
        ] {
            let x = to_f32(&random_values(len, 3.0, seed));
            let y = to_f32(&random_values(len, 1.0, seed + 100));
            let shift = x[0];
            let fast = shifted_sums(&x, shift);
            let slow = block_sums(&x, &x, |v, _| {
                let d = v - shift;
                (d, d * d)
            });
            assert_eq!(fast, slow, "shifted sums, len {len}");
            let exact: f64 = x.iter().map(|&v| (v as f64 - shift as f64).powi(2)).sum();
            assert!((fast.1 - exact).abs() <= 1e-5 * exact.max(1.0), "len {len}");
            let (mean, lo) = (0.25f32, 1e-9f32);
            let fast = gradient_sums(&y, &x, mean, lo);
            let slow = block_sums(&y, &x, |g, v| (g, g * ((v - mean) - lo)));
            assert_eq!(fast, slow, "gradient sums, len {len}");
        }
    }
}
