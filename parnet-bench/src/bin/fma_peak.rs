//! Prints this machine's measured f32 FMA peak at 1 and 2 threads (GFLOP/s).
//!
//! `cargo run -p parnet-bench --release --bin fma_peak`

use std::time::Duration;

fn main() {
    let kind = if parnet_bench::fma::uses_avx2_fma() {
        "AVX2 vfmadd231ps, 256-bit"
    } else {
        "scalar mul_add fallback"
    };
    println!(
        "f32 FMA peak ({kind}, {} independent chains per thread, best of 7 runs of ~0.5 s)",
        parnet_bench::fma::ACCUMULATORS
    );
    for threads in [1, 2] {
        let g = parnet_bench::fma::fma_peak_gflops(threads, Duration::from_millis(500), 7);
        println!("threads {threads}: {g:.1} GFLOP/s");
    }
}
