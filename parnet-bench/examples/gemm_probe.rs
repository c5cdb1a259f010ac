//! Probe: GFLOP/s of the engine GEMM on conv-like shapes (one thread).
use parnet_core::kernels::{MatMut, MatRef, gemm};
use std::time::Instant;

fn time(m: usize, k: usize, n: usize, at: bool, bt: bool) -> f64 {
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut c = vec![0.0f32; m * n];
    let av = if at {
        MatRef::row_major(&a, k, m).t()
    } else {
        MatRef::row_major(&a, m, k)
    };
    let bv = if bt {
        MatRef::row_major(&b, n, k).t()
    } else {
        MatRef::row_major(&b, k, n)
    };
    let mut best = f64::MAX;
    for _ in 0..15 {
        let t = Instant::now();
        gemm(1.0, av, bv, 0.0, MatMut::row_major(&mut c, m, n));
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (m * k * n) as f64 / best / 1e9
}

fn main() {
    for &(m, k, n) in &[
        (128, 1152, 1024),
        (128, 1152, 512),
        (128, 1152, 256),
        (128, 1152, 128),
        (128, 1152, 3136),
        (1152, 128, 1024),
        (144, 128, 1024),
        (128, 1024, 1152),
        (128, 4096, 1152),
        (512, 4608, 196),
        (256, 2304, 784),
        (128, 128, 1024),
        (1024, 1152, 128),
    ] {
        println!(
            "m {m:5} k {k:5} n {n:5}: NN {:6.1}  TN {:6.1}  NT {:6.1}",
            time(m, k, n, false, false),
            time(m, k, n, true, false),
            time(m, k, n, false, true)
        );
    }
}
