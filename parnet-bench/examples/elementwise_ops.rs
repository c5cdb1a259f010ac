//! Times the memory-bound ops of a ParNet block (batch norm forward and backward, SiLU, the SE
//! gate multiply, add, global average pool) on one `[64, 32, 32, 32]` activation, median of
//! repeated runs, next to a plain copy of the same tensor (the memory-bandwidth yardstick).
//!
//! `cargo run -p parnet-bench --release --example elementwise_ops [-- --threads 2]`

use parnet_bench::args::usize_flag;
use parnet_bench::timing::median_ms;
use parnet_core::Tensor;
use parnet_core::ops::activation::silu;
use parnet_core::ops::add;
use parnet_core::ops::batch_norm::batch_norm2d_train;
use parnet_core::ops::elementwise::mul_channel;
use parnet_core::ops::pool::global_avg_pool;

fn main() {
    let threads = usize_flag("--threads", 2);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let dims = [64usize, 32, 32, 32];
    let len: usize = dims.iter().product();
    let values = |seed: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 31) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    };
    let x = Tensor::from_vec(values(1), dims).unwrap().into_leaf();
    let y = Tensor::from_vec(values(2), dims).unwrap().into_leaf();
    let gamma = Tensor::from_vec(vec![1.0; 32], [32]).unwrap().into_leaf();
    let beta = Tensor::from_vec(vec![0.0; 32], [32]).unwrap().into_leaf();
    let gate = Tensor::from_vec(vec![0.5; 64 * 32], [64, 32, 1, 1])
        .unwrap()
        .into_leaf();
    let dy = values(3);
    let backward = |t: &Tensor| {
        t.backward_with(parnet_core::Buffer::from_slice(&dy))
            .unwrap()
    };
    let mut copy_dst = vec![0.0f32; len];
    let rows: Vec<(&str, f64)> = vec![
        (
            "copy (memcpy)",
            median_ms(|| {
                copy_dst.copy_from_slice(x.data());
                std::hint::black_box(&copy_dst);
            }),
        ),
        (
            "batch norm forward",
            median_ms(|| {
                batch_norm2d_train(&x, &gamma, &beta, 1e-5).unwrap();
            }),
        ),
        (
            "batch norm forward + backward",
            median_ms(|| backward(&batch_norm2d_train(&x, &gamma, &beta, 1e-5).unwrap().0)),
        ),
        (
            "silu forward",
            median_ms(|| {
                silu(&x);
            }),
        ),
        ("silu forward + backward", median_ms(|| backward(&silu(&x)))),
        (
            "mul_channel forward",
            median_ms(|| {
                mul_channel(&x, &gate).unwrap();
            }),
        ),
        (
            "mul_channel forward + backward",
            median_ms(|| backward(&mul_channel(&x, &gate).unwrap())),
        ),
        (
            "add forward",
            median_ms(|| {
                add(&x, &y).unwrap();
            }),
        ),
        (
            "global_avg_pool forward",
            median_ms(|| {
                global_avg_pool(&x).unwrap();
            }),
        ),
    ];
    // The backward kernels alone (the leaf-gradient accumulation above is not theirs).
    parnet_core::autograd::profile::start_profiling();
    for _ in 0..20 {
        backward(&batch_norm2d_train(&x, &gamma, &beta, 1e-5).unwrap().0);
        backward(&silu(&x));
        backward(&mul_channel(&x, &gate).unwrap());
    }
    let profile = parnet_core::autograd::profile::stop_profiling();
    println!("[64, 32, 32, 32] (8 MiB), {threads} threads");
    println!("| op | ms |");
    println!("|---|---:|");
    for (name, ms) in rows {
        println!("| {name} | {ms:.3} |");
    }
    for (op, t) in profile {
        let calls = t.backward_calls.max(1) as f64;
        println!(
            "| {op} backward alone (mean) | {:.3} |",
            t.backward.as_secs_f64() * 1e3 / calls
        );
    }
}
