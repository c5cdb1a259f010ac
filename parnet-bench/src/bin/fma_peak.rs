//! Prints this machine's measured f32 FMA peak at every ISA level it has, at 1 and 2 threads
//! (GFLOP/s).
//!
//! `cargo run -p parnet-bench --release --bin fma_peak`

use std::time::Duration;

use parnet_core::kernels::peak::{ACCUMULATORS, fma_peak_gflops};
use parnet_core::kernels::simd::Isa;

fn main() {
    println!(
        "f32 FMA peak ({ACCUMULATORS} independent chains per thread, best of 7 runs of ~0.5 s)"
    );
    for isa in Isa::available().into_iter().rev() {
        for threads in [1, 2] {
            let g = fma_peak_gflops(isa, threads, Duration::from_millis(500), 7);
            println!("{:<8} threads {threads}: {g:.1} GFLOP/s", isa.name());
        }
    }
}
