//! Runs one benchmark case repeatedly, for `perf record`:
//! `conv_profile <case index> <fwd|bwd|dx|dw> <iterations>` (thread count from RAYON_NUM_THREADS).
use parnet_bench::conv::{CASES, ConvRun};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = CASES[args[1].parse::<usize>().unwrap()];
    let iters: usize = args[3].parse().unwrap();
    let mut run = ConvRun::new(case);
    let t = Instant::now();
    for _ in 0..iters {
        match args[2].as_str() {
            "fwd" => run.forward(),
            _ => run.backward(),
        }
    }
    let secs = t.elapsed().as_secs_f64() / iters as f64;
    let flops = if args[2] == "fwd" {
        case.forward_flops()
    } else {
        case.backward_flops()
    };
    println!(
        "{}: {:.2} ms, {:.1} GFLOP/s",
        case.name,
        secs * 1e3,
        flops / secs / 1e9
    );
}
