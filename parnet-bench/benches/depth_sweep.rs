//! Criterion benches of forward latency (eval mode, no graph) of every member of the depth sweep
//! at the multiply-adds of `parnet-cifar` x0.25, on 32x32 inputs, at batch 1 and batch 32.
//! Throughput is in FLOPs (2 per multiply-add), so criterion's "elem/s" reads as FLOP/s.
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p parnet-bench --bench depth_sweep`

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parnet_core::models::Network;
use parnet_core::models::parnet_sweep::{SweepNet, SweepSpec, depth_sweep};
use parnet_core::nn::Ctx;
use parnet_core::{ParNet, ParNetConfig, Tensor};

const IMAGE_SIZE: usize = 32;
const CLASSES: usize = 10;
const BATCHES: [usize; 2] = [1, 32];

fn members() -> Vec<SweepSpec> {
    let cfg = ParNetConfig::from_name("parnet-cifar", CLASSES)
        .and_then(|c| c.with_width_mult(0.25))
        .expect("parnet-cifar x0.25 is a valid config");
    let target = ParNet::new(cfg, 0)
        .expect("parnet-cifar x0.25 builds")
        .info(IMAGE_SIZE)
        .macs_train;
    depth_sweep(target, IMAGE_SIZE, CLASSES, false)
}

fn print_table(specs: &[SweepSpec]) {
    eprintln!(
        "{:<20} {:>7} {:>6} {:>5} {:>5} {:>13} {:>10}",
        "name", "streams", "blocks", "depth", "width", "MACs", "params"
    );
    for s in specs {
        eprintln!(
            "{:<20} {:>7} {:>6} {:>5} {:>5} {:>13} {:>10}",
            s.name(),
            s.streams,
            s.blocks,
            s.depth(),
            s.width,
            s.macs(IMAGE_SIZE),
            s.params()
        );
    }
}

fn images(batch: usize) -> Tensor {
    let len = batch * 3 * IMAGE_SIZE * IMAGE_SIZE;
    let data = (0..len).map(|i| ((i % 251) as f32 / 125.0) - 1.0).collect();
    Tensor::from_vec(data, [batch, 3, IMAGE_SIZE, IMAGE_SIZE]).expect("image shape")
}

fn depth_sweep_forward(c: &mut Criterion) {
    let specs = members();
    print_table(&specs);
    let nets: Vec<SweepNet> = specs
        .iter()
        .map(|s| SweepNet::new(s.clone(), 0).expect("sweep member builds"))
        .collect();
    for batch in BATCHES {
        let mut group = c.benchmark_group(format!("depth_sweep_forward_batch{batch}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        let x = images(batch);
        for net in &nets {
            let flops = 2 * Network::macs(net, IMAGE_SIZE) * batch;
            group.throughput(Throughput::Elements(flops as u64));
            group.bench_function(Network::name(net), |b| {
                b.iter(|| net.forward(&x, Ctx::eval()).expect("forward"))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, depth_sweep_forward);
criterion_main!(benches);
