//! The executor's convolution kernels on single layers: direct, Winograd F(2x2,3x3) and
//! F(4x4,3x3), for the 3x3 stride-1 layers of ParNet (and any shape given), with ParNet's block
//! epilogue (SE gate on the sum, SiLU). Prints ms, GFLOP/s (counted as direct multiply-adds) and
//! % of the measured FMA peak: the crossover behind `exec::plan::choose_winograd`. Each figure
//! is the fastest of many runs (on a shared machine, interference only adds time).
//!
//! `cargo run -p parnet-bench --release --example exec_conv -- [--threads 2] [--batch 1]
//! [--rounds 5] [--shapes C:HW,C:HW,...]`

use std::time::Duration;

use parnet_bench::args::usize_flag;
use parnet_core::exec::graph::{Epilogue, GateOn, GraphBuilder, ValueShape};
use parnet_core::exec::{ExecOptions, Executor, Schedule, WinogradChoice};
use parnet_core::kernels::activation::Activation;
use parnet_core::kernels::peak::fma_peak_gflops;
use parnet_core::kernels::simd::Isa;

fn shapes() -> Vec<(usize, usize)> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--shapes") {
        return args[i + 1]
            .split(',')
            .map(|s| {
                let (c, hw) = s.split_once(':').expect("C:HW");
                (c.parse().unwrap(), hw.parse().unwrap())
            })
            .collect();
    }
    // ParNet-S's stride-1 3x3 layers, then parnet-cifar x0.25 and x1.0's.
    vec![
        (92, 56),
        (192, 28),
        (384, 14),
        (32, 32),
        (64, 16),
        (128, 8),
        (128, 32),
        (256, 16),
        (512, 8),
    ]
}

fn executor(c: usize, hw: usize, batch: usize, winograd: WinogradChoice) -> Executor {
    let (mut g, x) = GraphBuilder::new(ValueShape {
        channels: 3,
        height: hw,
        width: hw,
    });
    // A 1x1 conv to reach c channels, then the measured 3x3 conv with ParNet's case-B epilogue.
    let w1: Vec<f32> = (0..c * 3).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
    let x = g
        .conv(x, w1, vec![0.0; c], (c, 1, 1), 1, 0, 1, Epilogue::none())
        .unwrap();
    let se: Vec<f32> = (0..c * c).map(|i| ((i % 5) as f32 - 2.0) * 0.01).collect();
    let gate = g.se_gate(x, None, se, (c, 1), 2.0).unwrap();
    let w: Vec<f32> = (0..c * c * 9)
        .map(|i| ((i % 11) as f32 - 5.0) * 0.01)
        .collect();
    let epi = Epilogue {
        gate: Some((gate, GateOn::Sum)),
        residual: None,
        activation: Some(Activation::Silu),
    };
    let y = g.conv(x, w, vec![0.1; c], (c, 3, 3), 1, 1, 1, epi).unwrap();
    let fc: Vec<f32> = vec![0.01; 10 * c];
    let out = g.head(y, fc, vec![0.0; 10]).unwrap();
    let options = ExecOptions {
        winograd,
        schedule: Schedule::Sequential,
        ..ExecOptions::default()
    };
    Executor::new(&g.finish(out), batch, &options, "probe").unwrap()
}

/// A pointwise (1x1) conv `cin -> cout` at `hw` with ResNet's epilogue (residual add, ReLU).
fn pointwise(cin: usize, cout: usize, hw: usize, batch: usize) -> Executor {
    let (mut g, x) = GraphBuilder::new(ValueShape {
        channels: 3,
        height: hw,
        width: hw,
    });
    let w0: Vec<f32> = (0..cin * 3).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
    let x = g
        .conv(
            x,
            w0,
            vec![0.0; cin],
            (cin, 1, 1),
            1,
            0,
            1,
            Epilogue::none(),
        )
        .unwrap();
    let wr: Vec<f32> = (0..cout * 3)
        .map(|i| ((i % 5) as f32 - 2.0) * 0.1)
        .collect();
    let r = g
        .conv(
            x,
            wr.iter()
                .take(cout * cin)
                .copied()
                .chain(std::iter::repeat(0.01))
                .take(cout * cin)
                .collect(),
            vec![0.0; cout],
            (cout, 1, 1),
            1,
            0,
            1,
            Epilogue::none(),
        )
        .unwrap();
    let w: Vec<f32> = (0..cout * cin)
        .map(|i| ((i % 11) as f32 - 5.0) * 0.01)
        .collect();
    let epi = Epilogue {
        gate: None,
        residual: if std::env::var("NO_RES").is_ok() {
            None
        } else {
            Some(parnet_core::exec::graph::Residual {
                value: r,
                affine: None,
            })
        },
        activation: Some(Activation::Relu),
    };
    let y = g
        .conv(x, w, vec![0.1; cout], (cout, 1, 1), 1, 0, 1, epi)
        .unwrap();
    let out = g.head(y, vec![0.01; 10 * cout], vec![0.0; 10]).unwrap();
    let options = ExecOptions {
        schedule: Schedule::Sequential,
        ..ExecOptions::default()
    };
    Executor::new(&g.finish(out), batch, &options, "probe").unwrap()
}

fn main() {
    let threads = usize_flag("--threads", 2);
    let batch = usize_flag("--batch", 1);
    let rounds = usize_flag("--rounds", 5);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let isa = Isa::current();
    let peak = fma_peak_gflops(isa, threads, Duration::from_millis(300), 5);
    println!(
        "{} threads, batch {batch}, {} (FMA peak {peak:.0} GFLOP/s); the conv step alone, the fastest of {rounds} x 15 runs",
        threads,
        isa.name()
    );
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--pointwise") {
        println!("| Cin | Cout | HW | ms | % peak |");
        println!("|---:|---:|---:|---:|---:|");
        for s in args[i + 1].split(',') {
            let v: Vec<usize> = s.split(':').map(|x| x.parse().unwrap()).collect();
            let (cin, cout, hw) = (v[0], v[1], v[2]);
            let mut exec = pointwise(cin, cout, hw, batch);
            let x = vec![0.5f32; batch * 3 * hw * hw];
            let mut best = f64::INFINITY;
            for _ in 0..rounds {
                let t = (0..15).map(|_| exec.profile(&x).unwrap()[2].ms);
                best = best.min(t.fold(f64::INFINITY, f64::min));
            }
            let macs = (batch * hw * hw * cin * cout) as f64;
            let pct = 100.0 * 2.0 * macs / (best / 1e3) / 1e9 / peak;
            println!("| {cin} | {cout} | {hw} | {best:.3} | {pct:.0}% |");
        }
        return;
    }
    println!("| C | HW | direct ms | F2 ms | F4 ms | direct % peak | F2 x | F4 x |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (c, hw) in shapes() {
        let macs = (batch * hw * hw * c * c * 9) as f64;
        let mut ms = Vec::new();
        for choice in [WinogradChoice::Off, WinogradChoice::F2, WinogradChoice::F4] {
            let mut exec = executor(c, hw, batch, choice);
            let x = vec![0.5f32; batch * 3 * hw * hw];
            let mut best = f64::INFINITY;
            for _ in 0..rounds {
                let conv = (0..15).map(|_| exec.profile(&x).unwrap()[2].ms);
                best = best.min(conv.fold(f64::INFINITY, f64::min));
            }
            ms.push(best);
        }
        let pct = 100.0 * 2.0 * macs / (ms[0] / 1e3) / 1e9 / peak;
        println!(
            "| {c} | {hw} | {:.3} | {:.3} | {:.3} | {pct:.0}% | {:.2} | {:.2} |",
            ms[0],
            ms[1],
            ms[2],
            ms[0] / ms[1],
            ms[0] / ms[2]
        );
    }
}
