//! Times the conv2d kernels on the benchmark shapes and prints a markdown table of GFLOP/s and
//! percent of the measured FMA peak, for docs/BENCHMARKS.md.
//!
//! `cargo run -p parnet-bench --release --bin conv_table [-- --threads 2 --peak GFLOPS]`
//!
//! Without `--peak`, the FMA peak at the same thread count is measured first. Each kernel's time
//! is the median of at least 5 runs (and at least 1 s of runs) after one warm-up run.

use std::time::Duration;

use parnet_bench::conv::{CASES, ConvRun};
use parnet_bench::fma::fma_peak_gflops;
use parnet_bench::timing::median_secs;

fn arg(name: &str) -> Option<f64> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    let value = args
        .get(at + 1)
        .unwrap_or_else(|| panic!("{name} needs a value"));
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}: not a number: {value}")),
    )
}

fn main() {
    let threads = arg("--threads").map_or(2, |t| t as usize);
    let peak =
        arg("--peak").unwrap_or_else(|| fma_peak_gflops(threads, Duration::from_millis(500), 7));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    println!("threads: {threads}, f32 FMA peak: {peak:.1} GFLOP/s\n");
    println!(
        "| shape (NCHW) | GFLOP fwd | fwd ms | fwd GFLOP/s | fwd % peak | bwd ms | bwd GFLOP/s \
         | bwd % peak | PyTorch fwd / bwd ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let min_time = Duration::from_secs(1);
    for case in CASES {
        let mut run = ConvRun::new(case);
        let (fwd, bwd) = pool.install(|| {
            let fwd = median_secs(1, 5, min_time, || run.forward());
            let bwd = median_secs(1, 5, min_time, || run.backward());
            (fwd, bwd)
        });
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
