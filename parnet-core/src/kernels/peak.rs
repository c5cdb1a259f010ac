//! The machine's f32 FMA peak at an ISA level: the yardstick of every "% of peak" figure.
//!
//! Each thread runs [`ACCUMULATORS`] independent `acc = acc * a + b` chains, so FMA latency (4-5
//! cycles on current x86) times the number of FMA pipes (2) is covered and the loop is
//! throughput-bound: one `vfmadd` per chain and step, 32 FLOPs at AVX-512, 16 at AVX2. The
//! portable level runs the same chains as a multiply then an add on arrays, as the portable
//! kernels compute (SSE2 on x86-64: what the compiler makes of it).

use std::time::{Duration, Instant};

use super::simd::Isa;

/// Independent accumulator chains per thread (12 registers: of 16 at AVX2, of 32 at AVX-512).
pub const ACCUMULATORS: usize = 12;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chains_avx2(iters: u64, seed: f32) -> f32 {
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn chains_avx512(iters: u64, seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-6);
    let mut acc = [_mm512_set1_ps(seed); ACCUMULATORS];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm512_fmadd_ps(*r, a, b);
        }
    }
    let mut sum = acc[0];
    for r in &acc[1..] {
        sum = _mm512_add_ps(sum, *r);
    }
    _mm512_reduce_add_ps(sum)
}

/// The same chains on 8-wide arrays, multiply then add (the compiler may vectorise them).
fn chains_portable(iters: u64, seed: f32) -> f32 {
    let (a, b) = std::hint::black_box((0.999_999f32, 1e-6f32));
    let mut acc = [[seed; 8]; ACCUMULATORS];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            for x in r.iter_mut() {
                *x = *x * a + b;
            }
        }
    }
    acc.iter().flatten().sum()
}

/// FLOPs of `iters` iterations of the chains at `isa`.
fn flops(isa: Isa, iters: u64) -> f64 {
    let lanes = match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 | Isa::Portable => 8,
    };
    iters as f64 * (ACCUMULATORS * lanes * 2) as f64
}

/// Runs `iters` iterations of the chains at `isa` (lowered to what the CPU has) on this thread;
/// returns a value to keep the work alive.
pub fn fma_chains(isa: Isa, iters: u64, seed: f32) -> f32 {
    let isa = isa.min(Isa::detected());
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `isa` does not exceed what the CPU has.
        match isa {
            Isa::Avx512 => return unsafe { chains_avx512(iters, seed) },
            Isa::Avx2 => return unsafe { chains_avx2(iters, seed) },
            Isa::Portable => {}
        }
    }
    chains_portable(iters, seed)
}

/// Measured peak in GFLOP/s at `isa` (lowered to what the CPU has) with `threads` threads (each
/// runs the chains on its own), the best of `repeats` runs of about `run` each.
pub fn fma_peak_gflops(isa: Isa, threads: usize, run: Duration, repeats: usize) -> f64 {
    let isa = isa.min(Isa::detected());
    // Calibrate the iteration count on one thread so a run lasts about `run`.
    let mut iters = 1u64 << 16;
    loop {
        let t = Instant::now();
        std::hint::black_box(fma_chains(isa, iters, 1.0));
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
        pool.broadcast(|ctx| {
            std::hint::black_box(fma_chains(isa, iters, 1.0 + ctx.index() as f32))
        });
        let secs = start.elapsed().as_secs_f64();
        best = best.max(flops(isa, iters) * threads as f64 / secs / 1e9);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_stay_bounded_at_every_level() {
        // acc -> 0.999999 acc + 1e-6 moves every chain toward 1 and never overflows.
        for isa in Isa::available() {
            let lanes = (ACCUMULATORS * if isa == Isa::Avx512 { 16 } else { 8 }) as f32;
            let v = fma_chains(isa, 10_000, 2.0);
            assert!(
                v.is_finite() && v > lanes && v < 2.0 * lanes,
                "{isa:?}: {v}"
            );
        }
    }
}
