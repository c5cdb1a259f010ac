//! Times the three passes of conv2d (forward, input gradient, weight gradient) separately on the
//! layer shapes of `parnet-cifar` x0.25 at batch 64, median of repeated runs.
//!
//! `cargo run -p parnet-bench --release --example conv_passes [-- --threads 2] [--gemm]`
//! (`--gemm`: im2col + GEMM for every convolution, the baseline of the direct kernels).

use std::time::Instant;

use parnet_core::ops::conv2d::{
    Conv2dParams, ConvAlgorithm, conv2d_backward_input, conv2d_backward_weight, conv2d_forward,
    set_conv_algorithm,
};

fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed().as_secs_f64() < 0.3 && times.len() < 200) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    if args.iter().any(|a| a == "--gemm") {
        set_conv_algorithm(ConvAlgorithm::Gemm);
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    // (label, cin, cout, hw, k, stride, groups, count in the model)
    let shapes = [
        ("3x3 s1 3->32 @32", 3, 32, 32, 3, 1, 1, 1),
        ("3x3 s1 32->32 @32", 32, 32, 32, 3, 1, 1, 5),
        ("1x1 s1 32->32 @32", 32, 32, 32, 1, 1, 1, 6),
        ("3x3 s2 32->64 @32", 32, 64, 32, 3, 2, 1, 2),
        ("3x3 s1 64->64 @16", 64, 64, 16, 3, 1, 1, 4),
        ("1x1 s1 64->64 @16", 64, 64, 16, 1, 1, 1, 4),
        ("3x3 s2 64->128 @16", 64, 128, 16, 3, 2, 1, 1),
        ("3x3 s2 g2 128->128 @16", 128, 128, 16, 3, 2, 2, 1),
        ("3x3 s1 128->128 @8", 128, 128, 8, 3, 1, 1, 4),
        ("1x1 s1 128->128 @8", 128, 128, 8, 1, 1, 1, 4),
        ("3x3 s1 g2 256->128 @8", 256, 128, 8, 3, 1, 2, 1),
        ("1x1 s1 128->256 @8", 128, 256, 8, 1, 1, 1, 1),
    ];
    let n = 64;
    println!(
        "| shape | fwd ms | dx ms | dw ms | fwd GFLOP/s | dx GFLOP/s | dw GFLOP/s | x count ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut total = 0.0;
    for (label, cin, cout, hw, k, s, g, count) in shapes {
        let params = Conv2dParams::new(s, k / 2, g);
        let x_dims = [n, cin, hw, hw];
        let w_dims = [cout, cin / g, k, k];
        let ho = (hw + 2 * (k / 2) - k) / s + 1;
        let y_len = n * cout * ho * ho;
        let x: Vec<f32> = (0..n * cin * hw * hw)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let w: Vec<f32> = (0..cout * cin / g * k * k)
            .map(|i| ((i * 104729) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let dy: Vec<f32> = (0..y_len)
            .map(|i| ((i * 7907) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let mut y = vec![0.0; y_len];
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; w.len()];
        let flops = 2.0 * (n * cout * ho * ho * (cin / g) * k * k) as f64;
        let f = median_ms(|| conv2d_forward(&x, x_dims, &w, w_dims, None, params, &mut y).unwrap());
        let bi =
            median_ms(|| conv2d_backward_input(&dy, &w, w_dims, x_dims, params, &mut dx).unwrap());
        let bw =
            median_ms(|| conv2d_backward_weight(&x, x_dims, &dy, w_dims, params, &mut dw).unwrap());
        let gf = |ms: f64| flops / ms / 1e6;
        let sum = (f + bi + bw) * count as f64;
        total += sum;
        println!(
            "| {label} | {f:.2} | {bi:.2} | {bw:.2} | {:.0} | {:.0} | {:.0} | {sum:.1} |",
            gf(f),
            gf(bi),
            gf(bw)
        );
    }
    println!("total conv ms per step (fwd + dx + dw, x count): {total:.1}");
}
