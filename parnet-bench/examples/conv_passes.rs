//! Times the three passes of conv2d (forward, input gradient, weight gradient) separately on the
//! layer shapes of `parnet-cifar` x0.25 at batch 64: the median of repeated runs, the best of
//! `--rounds` passes over all shapes (the machine is shared; the best round is the quiet one).
//!
//! `cargo run -p parnet-bench --release --example conv_passes [-- --threads 2] [--rounds 3] [--gemm]`
//! (`--gemm`: im2col + GEMM for every convolution, the baseline of the direct kernels).

use parnet_bench::args::{has_flag, usize_flag};
use parnet_bench::timing::median_ms;
use parnet_core::ops::conv2d::{
    Conv2dParams, ConvAlgorithm, conv2d_backward_input, conv2d_backward_weight, conv2d_forward,
    set_conv_algorithm,
};

/// `(label, cin, cout, hw, kernel, stride, groups, count in the model)`.
type Shape = (
    &'static str,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

const SHAPES: [Shape; 12] = [
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

const BATCH: usize = 64;

fn output_side(&(_, _, _, hw, k, s, _, _): &Shape) -> usize {
    (hw + 2 * (k / 2) - k) / s + 1
}

/// Median milliseconds of the forward, input gradient and weight gradient of one shape.
fn time_passes(shape: &Shape) -> [f64; 3] {
    let &(_, cin, cout, hw, k, s, g, _) = shape;
    let n = BATCH;
    let params = Conv2dParams::new(s, k / 2, g);
    let x_dims = [n, cin, hw, hw];
    let w_dims = [cout, cin / g, k, k];
    let ho = output_side(shape);
    let y_len = n * cout * ho * ho;
    let values = |len: usize, mul: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * mul) % 1000) as f32 / 1000.0 - 0.5)
            .collect()
    };
    let (x, w, dy) = (
        values(n * cin * hw * hw, 7919),
        values(cout * cin / g * k * k, 104_729),
        values(y_len, 7907),
    );
    let mut y = vec![0.0; y_len];
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    [
        median_ms(|| conv2d_forward(&x, x_dims, &w, w_dims, None, params, &mut y).unwrap()),
        median_ms(|| conv2d_backward_input(&dy, &w, w_dims, x_dims, params, &mut dx).unwrap()),
        median_ms(|| conv2d_backward_weight(&x, x_dims, &dy, w_dims, params, &mut dw).unwrap()),
    ]
}

fn main() {
    let (threads, rounds) = (usize_flag("--threads", 2), usize_flag("--rounds", 3).max(1));
    if has_flag("--gemm") {
        set_conv_algorithm(ConvAlgorithm::Gemm);
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let mut best = [[f64::INFINITY; 3]; SHAPES.len()];
    for _ in 0..rounds {
        for (row, shape) in SHAPES.iter().enumerate() {
            for (b, t) in best[row].iter_mut().zip(time_passes(shape)) {
                *b = b.min(t);
            }
        }
    }
    println!(
        "| shape | fwd ms | dx ms | dw ms | fwd GFLOP/s | dx GFLOP/s | dw GFLOP/s | x count ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut total = 0.0;
    for (shape, [f, bi, bw]) in SHAPES.iter().zip(best) {
        let &(label, cin, cout, _, k, _, g, count) = shape;
        let ho = output_side(shape);
        let flops = 2.0 * (BATCH * cout * ho * ho * (cin / g) * k * k) as f64;
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
