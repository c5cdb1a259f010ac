//! Depth against latency at matched FLOPs: ParNet-S (unfused and fused) against ResNet-18/34/50
//! at 224x224, the narrow parnet-cifar models against ResNet-20/56 and the sequential ParNet at
//! 32x32, each at batch 1 and batch 32, eval forward. Throughput is in FLOPs (2 per multiply-add),
//! so criterion's "elem/s" reads as FLOP/s; the table printed first gives depth, parameters and
//! multiply-adds per image.
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p parnet-bench --bench depth_latency`

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parnet_bench::models::{CIFAR_32, IMAGENET_224, ModelCase, ModelRun, summaries, summary_table};

fn latency_group(c: &mut Criterion, group_name: &str, cases: &[ModelCase], batch: usize) {
    let mut group = c.benchmark_group(group_name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(if batch > 1 { 2 } else { 1 }));
    for &case in cases {
        let run = ModelRun::new(case, batch).expect("bench model");
        group.throughput(Throughput::Elements(run.summary.forward_flops(batch)));
        let forward = run.eval_forward_fn(true);
        group.bench_function(case.id, |b| b.iter(&forward));
    }
    group.finish();
}

fn depth_latency(c: &mut Criterion) {
    let cases: Vec<_> = IMAGENET_224.into_iter().chain(CIFAR_32).collect();
    eprintln!(
        "{}",
        summary_table(&summaries(&cases).expect("bench models"))
    );
    latency_group(c, "latency_224_b1", &IMAGENET_224, 1);
    latency_group(c, "latency_224_b32", &IMAGENET_224, 32);
    latency_group(c, "latency_32_b1", &CIFAR_32, 1);
    latency_group(c, "latency_32_b32", &CIFAR_32, 32);
}

criterion_group!(benches, depth_latency);
criterion_main!(benches);
