//! ParNet's streams on concurrent rayon tasks against one after another, inside a rayon pool of
//! 1 and of 2 threads: eval forward of parnet-cifar x0.25 at batch 32 (32x32) and of the fused
//! ParNet-S at batch 1 (224x224), and a training step (forward + cross-entropy + backward, no
//! optimizer) of parnet-cifar x0.25 at batch 32 with 2 threads, where "sequential" applies to
//! both the forward streams and the backward walk. Throughput is in FLOPs (forward 2 per
//! multiply-add, training step 3x the forward).
//!
//! `cargo bench -p parnet-bench --bench streams` (the pools set their own thread counts)

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use parnet_bench::models::{ModelRun, case_by_id, summary_table};
use rayon::{ThreadPool, ThreadPoolBuilder};

const THREADS: [usize; 2] = [1, 2];

fn pool(threads: usize) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool")
}

fn mode(parallel: bool) -> &'static str {
    if parallel { "parallel" } else { "sequential" }
}

fn model(id: &str, batch: usize) -> ModelRun {
    ModelRun::new(case_by_id(id).expect("bench case"), batch).expect("bench model")
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
}

fn eval_streams(c: &mut Criterion, runs: &[ModelRun]) {
    let mut group = c.benchmark_group("streams_eval");
    configure(&mut group);
    for run in runs {
        group.throughput(Throughput::Elements(run.summary.forward_flops(run.batch)));
        for threads in THREADS {
            let pool = pool(threads);
            for parallel in [true, false] {
                let id = format!(
                    "{}_b{}/{}/{threads}t",
                    run.case.id,
                    run.batch,
                    mode(parallel)
                );
                let forward = run.eval_forward_fn(parallel);
                group.bench_function(id, |b| b.iter(|| pool.install(&forward)));
            }
        }
    }
    group.finish();
}

fn train_streams(c: &mut Criterion, run: &ModelRun) {
    let mut group = c.benchmark_group("streams_train_step");
    configure(&mut group);
    group.throughput(Throughput::Elements(run.train_step_flops()));
    let threads = 2;
    let pool = pool(threads);
    for parallel in [true, false] {
        let id = format!(
            "{}_b{}/{}/{threads}t",
            run.case.id,
            run.batch,
            mode(parallel)
        );
        group.bench_function(id, |b| {
            b.iter(|| pool.install(|| run.train_step(parallel).expect("training step")))
        });
    }
    group.finish();
}

fn streams(c: &mut Criterion) {
    let runs = [model("parnet-cifar-x0.25", 32), model("parnet-s-fused", 1)];
    let rows: Vec<_> = runs.iter().map(|r| r.summary.clone()).collect();
    eprintln!("{}", summary_table(&rows));
    eval_streams(c, &runs);
    train_streams(c, &runs[0]);
}

criterion_group!(benches, streams);
criterion_main!(benches);
