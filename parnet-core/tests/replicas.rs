//! Data-parallel steps on replicas that are threads of this process ([`LocalGroup`]), against
//! the single-process step on the whole batch: the same algebra the MPI runs of parnet-train use
//! (whose tests compare 2 MPI ranks with 1 process the same way).
//!
//! Tolerance: with synchronised batch norm, R replicas x B/R images and 1 process x B images
//! differ only in the order of floating-point sums (batch moments combined per replica, gradient
//! sums split by replica); after 3 SGD steps every parameter agrees within 2e-5 of its largest
//! magnitude (measured: 5e-6).

use parnet_core::models::{Network, NetworkSpec};
use parnet_core::nn::Init;
use parnet_core::ops::batch_norm::{
    batch_norm2d_train, batch_norm2d_train_gap, batch_norm2d_train_gap_synced,
    batch_norm2d_train_synced,
};
use parnet_core::optim::{SgdConfig, average_state_buffers};
use parnet_core::replicas::{LocalGroup, Replicas};
use parnet_core::training::{StepOptions, TrainStep};
use parnet_core::{Buffer, Param, Tensor};

const STEPS: usize = 3;

/// Runs `f(replica)` for every replica of a new group, each on its own thread and one-thread
/// rayon pool (a replica blocked in an exchange never holds a worker another replica needs).
fn on_replicas<T: Send>(count: usize, f: impl Fn(&'static LocalGroup) -> T + Sync) -> Vec<T> {
    let group = LocalGroup::new(count);
    std::thread::scope(|s| {
        let handles: Vec<_> = group
            .iter()
            .map(|&g| {
                let f = &f;
                s.spawn(move || {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(1)
                        .build()
                        .unwrap()
                        .install(|| f(g))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn batch(n: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let images = Init::new(seed).uniform("x", n * 3 * 16 * 16, 1.0).to_vec();
    let labels = (0..n).map(|i| (i * 7 + seed as usize) % 10).collect();
    (images, labels)
}

fn sgd() -> SgdConfig {
    SgdConfig {
        momentum: 0.9,
        dampening: 0.0,
        nesterov: true,
        weight_decay: 5e-4,
    }
}

fn model() -> Box<dyn Network> {
    NetworkSpec {
        width_mult: Some(0.125),
        dropout: Some(0.2),
        ..NetworkSpec::new("parnet-cifar", 10)
    }
    .build(3)
    .unwrap()
}

/// The parameters and float buffers after `STEPS` steps on images `first..first + n` of each
/// global batch of `global` images.
fn train(
    replicas: Option<&'static dyn Replicas>,
    sync_batch_norm: bool,
    first: usize,
    n: usize,
    global: usize,
) -> Vec<Vec<f32>> {
    let net = model();
    let options = StepOptions {
        replicas,
        sync_batch_norm,
        first_sample: first,
        ..StepOptions::default()
    };
    let mut step = TrainStep::new(net.as_ref(), sgd(), Some(0.9), options).unwrap();
    for s in 0..STEPS {
        let (images, labels) = batch(global, s as u64);
        let x = Tensor::from_vec(
            images[first * 768..(first + n) * 768].to_vec(),
            [n, 3, 16, 16],
        )
        .unwrap();
        step.run(
            net.as_ref(),
            &x,
            &labels[first..first + n],
            0.1,
            40 + s as u64,
        )
        .unwrap();
    }
    if let (Some(r), false) = (replicas, sync_batch_norm) {
        average_state_buffers(net.as_ref(), r);
    }
    let mut out: Vec<Vec<f32>> = net.params().iter().map(Param::to_vec).collect();
    net.visit_buffers(&mut |b| out.push(b.data.lock().unwrap().clone()));
    out
}

fn max_gap(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let scale = x.iter().fold(1e-3f64, |m, v| m.max(v.abs() as f64));
            x.iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs() as f64 / scale)
                .fold(0.0, f64::max)
        })
        .fold(0.0, f64::max)
}

#[test]
fn two_synchronised_replicas_of_half_a_batch_equal_one_process_on_the_whole_batch() {
    let whole = train(None, false, 0, 8, 8);
    let halves = on_replicas(2, |g| train(Some(g), true, 4 * g.index(), 4, 8));
    assert_eq!(halves[0], halves[1], "the replicas hold different models");
    let gap = max_gap(&whole, &halves[0]);
    assert!(gap < 2e-5, "2 x 4 images vs 1 x 8: relative gap {gap:e}");
    assert!(gap > 0.0 || whole == halves[0]);
    // Four replicas of two images: the same within the same bound.
    let quarters = on_replicas(4, |g| train(Some(g), true, 2 * g.index(), 2, 8));
    let gap = max_gap(&whole, &quarters[3]);
    assert!(gap < 2e-5, "4 x 2 images vs 1 x 8: relative gap {gap:e}");
}

#[test]
fn one_synchronised_replica_gives_the_single_process_bits() {
    let alone = train(None, false, 0, 4, 4);
    let one = on_replicas(1, |g| train(Some(g), true, 0, 4, 4));
    assert_eq!(alone, one[0]);
}

#[test]
fn local_batch_norm_replicas_agree_and_differ_from_the_synchronised_step() {
    let local = on_replicas(2, |g| train(Some(g), false, 4 * g.index(), 4, 8));
    assert_eq!(
        local[0], local[1],
        "averaged buffers and gradients must agree"
    );
    let whole = train(None, false, 0, 8, 8);
    assert!(
        max_gap(&whole, &local[0]) > 1e-4,
        "local statistics should change the step"
    );
}

/// `(y, dx, dgamma, dbeta)` of `sum(y * w)` for one batch norm op on images `first..first + n`
/// of an `[8, 3, 5, 4]` input.
fn bn_op(gap: bool, sync: Option<&'static dyn Replicas>, first: usize, n: usize) -> [Vec<f32>; 4] {
    let init = Init::new(11);
    let plane = 3 * 5 * 4;
    let all = init.uniform("x", 8 * plane, 2.0).to_vec();
    let x = Param::new(
        "x",
        Buffer::from_slice(
            &all[first * plane..(first + n) * plane]
                .iter()
                .map(|v| v + 3.0)
                .collect::<Vec<_>>(),
        ),
        [n, 3, 5, 4],
    )
    .unwrap();
    let gamma = Param::new("g", Buffer::from_slice(&[1.5, -0.5, 2.0]), [3]).unwrap();
    let beta = Param::new("b", Buffer::from_slice(&[0.1, 0.2, -0.3]), [3]).unwrap();
    let (xt, gt, bt) = (x.tensor(), gamma.tensor(), beta.tensor());
    let y = match (gap, sync) {
        (true, None) => batch_norm2d_train_gap(&xt, &gt, &bt, 1e-5).unwrap().0,
        (true, s) => {
            batch_norm2d_train_gap_synced(&xt, &gt, &bt, 1e-5, s)
                .unwrap()
                .0
        }
        (false, None) => batch_norm2d_train(&xt, &gt, &bt, 1e-5).unwrap().0,
        (false, s) => batch_norm2d_train_synced(&xt, &gt, &bt, 1e-5, s).unwrap().0,
    };
    let per_image = y.numel() / n;
    let upstream = Buffer::from_fn(y.numel(), |k| {
        (((first * per_image + k) * 37) % 11) as f32 - 5.0
    });
    y.backward_with(upstream).unwrap();
    [
        y.to_vec(),
        x.grad().unwrap().to_vec(),
        gamma.grad().unwrap().to_vec(),
        beta.grad().unwrap().to_vec(),
    ]
}

#[test]
fn synchronised_batch_norms_give_the_whole_batch_outputs_and_input_gradients() {
    for gap in [false, true] {
        let whole = bn_op(gap, None, 0, 8);
        let parts = on_replicas(2, |g| bn_op(gap, Some(g), 4 * g.index(), 4));
        let joined = |k: usize| [parts[0][k].clone(), parts[1][k].clone()].concat();
        for (k, what) in [(0, "y"), (1, "dx")] {
            let gap_k = max_gap(&[whole[k].clone()], &[joined(k)]);
            assert!(gap_k < 1e-5, "gap {gap}: {what} off by {gap_k:e}");
        }
        // dgamma and dbeta are each replica's share; their sum is the whole batch's.
        for k in [2, 3] {
            let summed: Vec<f32> = parts[0][k]
                .iter()
                .zip(&parts[1][k])
                .map(|(a, b)| a + b)
                .collect();
            assert!(
                max_gap(&[whole[k].clone()], &[summed]) < 1e-5,
                "gap {gap}: param grad {k}"
            );
        }
    }
}

#[test]
fn streams_computed_apart_give_the_forward_bits() {
    let net = NetworkSpec::new("parnet-cifar", 10).build(5).unwrap();
    let parnet = net.as_parnet().expect("a ParNet");
    let (images, _) = batch(2, 9);
    let x = Tensor::from_vec(images, [2, 3, 16, 16]).unwrap();
    let ctx = parnet_core::nn::Ctx::eval();
    let streams: Vec<Tensor> = (0..3)
        .map(|s| parnet.stream_forward(&x, s, ctx).unwrap())
        .collect();
    let logits = parnet
        .forward_from_streams([&streams[0], &streams[1], &streams[2]], ctx)
        .unwrap();
    assert_eq!(logits.to_vec(), net.forward(&x, ctx).unwrap().to_vec());
    assert!(parnet.stream_forward(&x, 3, ctx).is_err());
    assert!(
        NetworkSpec::new("resnet-20", 10)
            .build(0)
            .unwrap()
            .as_parnet()
            .is_none()
    );
}
