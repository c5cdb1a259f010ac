//! The machine's f32 FMA peak, measured with independent accumulator chains.
//!
//! Each thread runs [`ACCUMULATORS`] independent `acc = acc * a + b` chains, so FMA latency
//! (4-5 cycles on current x86) times the number of FMA pipes (2) is covered and the loop is
//! throughput-bound. On x86-64 with AVX2+FMA each step is one 256-bit `vfmadd` (16 FLOPs);
//! elsewhere a scalar `mul_add` loop is used (which the compiler may or may not vectorise), so
//! the number is only meaningful on x86-64.

use std::time::{Duration, Instant};

/// Independent accumulator chains per thread (12 ymm registers of the 16).
pub const ACCUMULATORS: usize = 12;

/// FLOPs one call of the inner kernel performs for `iters` iterations.
fn flops_per_call(iters: u64) -> f64 {
    // 12 accumulators x 8 lanes x 2 FLOPs (multiply + add) per iteration.
    iters as f64 * (ACCUMULATORS * 8 * 2) as f64
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains_avx2(iters: u64, seed: f32) -> f32 {
    use std::arch::x86_64::*;
    // a < 1 and small b keep every chain bounded and away from denormals.
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-6);
    let mut acc = [_mm256_set1_ps(seed); ACCUMULATORS];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm256_fmadd_ps(*r, a, b);
        }
    }
    let mut sum = acc[0];
    for r in &acc[1..] {
        sum = _mm256_add_ps(sum, *r);
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds exactly 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    lanes.iter().sum()
}

/// Scalar fallback: the same chains on 8-wide arrays (the compiler may vectorise them).
fn fma_chains_scalar(iters: u64, seed: f32) -> f32 {
    let mut acc = [[seed; 8]; ACCUMULATORS];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            for x in r.iter_mut() {
                *x = x.mul_add(0.999_999, 1e-6);
            }
        }
    }
    acc.iter().flatten().sum()
}

/// Runs `iters` iterations of the chains on this thread; returns a value to keep the work alive.
pub fn fma_chains(iters: u64, seed: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the features the function enables were detected at run time.
            return unsafe { fma_chains_avx2(iters, seed) };
        }
    }
    fma_chains_scalar(iters, seed)
}

/// Whether [`fma_chains`] uses AVX2+FMA on this machine.
pub fn uses_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Measured peak in GFLOP/s with `threads` threads (each runs the chains on its own), taking the
/// best of `repeats` runs of about `run` each.
pub fn fma_peak_gflops(threads: usize, run: Duration, repeats: usize) -> f64 {
    // Calibrate the iteration count on one thread so a run lasts about `run`.
    let mut iters = 1u64 << 16;
    loop {
        let t = Instant::now();
        std::hint::black_box(fma_chains(iters, 1.0));
        if t.elapsed() >= run / 4 {
            break;
        }
        iters *= 2;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let mut best = 0.0f64;
    for _ in 0..repeats {
        let start = Instant::now();
        pool.broadcast(|ctx| std::hint::black_box(fma_chains(iters, 1.0 + ctx.index() as f32)));
        let secs = start.elapsed().as_secs_f64();
        best = best.max(flops_per_call(iters) * threads as f64 / secs / 1e9);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_stay_bounded() {
        // acc -> 0.999999 acc + 1e-6 moves every chain toward 1 and never overflows.
        let v = fma_chains(10_000, 2.0);
        let lanes = (ACCUMULATORS * 8) as f32;
        assert!(v.is_finite() && v > lanes && v < 2.0 * lanes, "{v}");
        assert!((fma_chains_scalar(10_000, 2.0) - v).abs() < 1e-3 * v);
    }
}
