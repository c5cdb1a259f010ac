//! Times the conv2d kernels on the benchmark shapes and prints a markdown table of GFLOP/s and
//! percent of the measured FMA peak, for docs/BENCHMARKS.md.
//!
//! `cargo run -p parnet-bench --release --bin conv_table [-- --threads 2 --rounds 3]`
//!
//! Method: the FMA peak at the same thread count is measured before and after the kernels, and
//! the larger of the two is the reference (so a busy machine lowers the percentages rather than
//! raising them). Each kernel's time is the median of at least 5 runs (and at least 0.5 s of
//! runs) after one warm-up run; this is repeated over `--rounds` passes over all shapes and the
//! fastest median is reported, which filters out passes hit by other load on the machine.
//! Forward includes the bias; backward is the input gradient plus the weight gradient.

use std::time::Duration;

use parnet_bench::args::usize_flag;
use parnet_bench::conv::{CASES, ConvRun};
use parnet_bench::timing::median_secs;
use parnet_core::kernels::peak::fma_peak_gflops;
use parnet_core::kernels::simd::Isa;

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let threads = usize_flag("--threads", 2);
    let rounds = usize_flag("--rounds", 3).max(1);
    let load_before = load_average();
    let peak_before = fma_peak_gflops(Isa::current(), threads, Duration::from_millis(500), 7);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let mut runs: Vec<ConvRun> = CASES.iter().map(|&c| ConvRun::new(c)).collect();
    let mut best = vec![(f64::MAX, f64::MAX); CASES.len()];
    let min_time = Duration::from_millis(500);
    for _ in 0..rounds {
        for (run, best) in runs.iter_mut().zip(&mut best) {
            let (fwd, bwd) = pool.install(|| {
                let fwd = median_secs(1, 5, min_time, || run.forward());
                let bwd = median_secs(1, 5, min_time, || run.backward());
                (fwd, bwd)
            });
            *best = (best.0.min(fwd), best.1.min(bwd));
        }
    }
    let peak_after = fma_peak_gflops(Isa::current(), threads, Duration::from_millis(500), 7);
    let peak = peak_before.max(peak_after);
    println!(
        "threads: {threads}; f32 FMA peak: {peak:.1} GFLOP/s (before {peak_before:.1}, after \
         {peak_after:.1}); load average before: {load_before}, after: {}; best of {rounds} \
         rounds\n",
        load_average()
    );
    println!(
        "| shape (NCHW) | GFLOP fwd | fwd ms | fwd GFLOP/s | fwd % peak | bwd ms | bwd GFLOP/s \
         | bwd % peak | PyTorch fwd / bwd ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (case, &(fwd, bwd)) in CASES.iter().zip(&best) {
        let (ff, bf) = (case.forward_flops(), case.backward_flops());
        let (fg, bg) = (ff / fwd / 1e9, bf / bwd / 1e9);
        println!(
            "| {} | {:.2} | {:.1} | {:.1} | {:.0}% | {:.1} | {:.1} | {:.0}% | |",
            case.name,
            ff / 1e9,
            fwd * 1e3,
            fg,
            100.0 * fg / peak,
            bwd * 1e3,
            bg,
            100.0 * bg / peak
        );
    }
}
