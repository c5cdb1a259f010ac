//! Criterion benches of the graph-free conv2d kernels on the shapes of `parnet_bench::conv`.
//! Throughput is in FLOPs, so criterion's "elem/s" reads as FLOP/s.
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p parnet-bench --bench conv2d`

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parnet_bench::conv::{CASES, ConvRun};

fn conv2d(c: &mut Criterion) {
    for (kind, forward) in [("conv2d_forward", true), ("conv2d_backward", false)] {
        let mut group = c.benchmark_group(kind);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        for case in CASES {
            let mut run = ConvRun::new(case);
            let flops = if forward {
                case.forward_flops()
            } else {
                case.backward_flops()
            };
            group.throughput(Throughput::Elements(flops as u64));
            group.bench_function(case.name, |b| {
                b.iter(|| {
                    if forward {
                        run.forward()
                    } else {
                        run.backward()
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, conv2d);
criterion_main!(benches);
