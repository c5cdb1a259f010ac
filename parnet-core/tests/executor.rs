//! The executor against the training graph's eval-mode forward, on every kind of registry
//! network, in both forms, at every ISA level and schedule. (Here rather than in `src/exec`,
//! because the networks sit above the executor.)

use parnet_core::Tensor;
use parnet_core::exec::{ExecOptions, Schedule, WinogradChoice};
use parnet_core::kernels::simd::Isa;
use parnet_core::models::{NetworkSpec, example_names};
use parnet_core::nn::Ctx;
use parnet_core::nn::testing::perturb_batch_norms;
use parnet_core::testing::{on_threads, random_values, to_f32};

/// Every registry name at a tiny width, with its input size (ImageNet layouts at 64x64).
fn tiny_specs() -> Vec<(NetworkSpec, usize)> {
    example_names()
        .into_iter()
        .map(|name| {
            let mut spec = NetworkSpec::new(&name, 10);
            if name.starts_with("parnet") || name.starts_with("sequential") {
                spec.width_mult = Some(0.0625);
            }
            let size = if name == "parnet-cifar" || !name.starts_with("parnet") {
                32
            } else {
                64
            };
            (spec, size)
        })
        .collect()
}

fn images(n: usize, size: usize, seed: u64) -> Tensor {
    Tensor::from_vec(
        to_f32(&random_values(n * 3 * size * size, 1.0, seed)),
        [n, 3, size, size],
    )
    .unwrap()
}

/// `|a - b| <= rtol * max|b|` for every element.
fn assert_close_rel(what: &str, a: &[f32], b: &[f32], rtol: f32) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= rtol * scale,
            "{what}[{i}]: executor {x} vs graph {y} (scale {scale})"
        );
    }
}

fn options(winograd: WinogradChoice) -> ExecOptions {
    ExecOptions {
        winograd,
        ..ExecOptions::default()
    }
}

#[test]
fn every_network_matches_its_eval_forward_in_both_forms() {
    for (spec, size) in tiny_specs() {
        let train = spec.build(1).unwrap();
        perturb_batch_norms(train.as_ref(), 2);
        let deploy = train.deploy().unwrap();
        let x = images(2, size, 3);
        let want = deploy.forward(&x, Ctx::eval()).unwrap();
        for (form, net) in [("deploy", deploy.as_ref()), ("train", train.as_ref())] {
            let mut exec = net
                .executor(2, (size, size), &options(WinogradChoice::Off))
                .unwrap();
            let got = exec.forward(&x).unwrap();
            assert_eq!(got.dims(), want.dims(), "{}", spec.name);
            assert_close_rel(
                &format!("{} {form}", spec.name),
                got.data(),
                want.data(),
                1e-5,
            );
        }
    }
}

#[test]
fn winograd_matches_the_eval_forward_on_every_network() {
    for (spec, size) in tiny_specs() {
        let net = spec.build(4).unwrap();
        perturb_batch_norms(net.as_ref(), 5);
        let deploy = net.deploy().unwrap();
        let x = images(2, size, 6);
        let want = deploy.forward(&x, Ctx::eval()).unwrap();
        for choice in [WinogradChoice::F2, WinogradChoice::F4] {
            let mut exec = deploy.executor(2, (size, size), &options(choice)).unwrap();
            let any_winograd = exec
                .conv_kernels()
                .iter()
                .any(|k| k.starts_with("winograd"));
            if spec.name.contains("parnet") || spec.name.starts_with("resnet") {
                assert!(any_winograd, "{} {choice:?}", spec.name);
            }
            let got = exec.forward(&x).unwrap();
            assert_close_rel(
                &format!("{} {choice:?}", spec.name),
                got.data(),
                want.data(),
                1e-4,
            );
        }
    }
}

/// Same bits for every thread count, both schedules, and the two SIMD levels.
#[test]
fn results_do_not_depend_on_threads_schedule_or_simd_level() {
    let spec = NetworkSpec {
        width_mult: Some(0.125),
        ..NetworkSpec::new("parnet-cifar", 10)
    };
    let net = spec.build(7).unwrap();
    perturb_batch_norms(net.as_ref(), 8);
    let x = images(3, 32, 9);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for winograd in [WinogradChoice::Off, WinogradChoice::F4] {
        let mut seen: Option<Vec<u32>> = None;
        for isa in Isa::available().into_iter().filter(|&i| i >= Isa::Avx2) {
            for schedule in [Schedule::Sequential, Schedule::Parallel] {
                for threads in [1, 2, 3] {
                    let opts = ExecOptions {
                        isa: Some(isa),
                        winograd,
                        schedule,
                        ..ExecOptions::default()
                    };
                    let got = on_threads(threads, || {
                        let mut exec = net.executor(3, (32, 32), &opts).unwrap();
                        exec.run(x.data()).unwrap().to_vec()
                    });
                    match &seen {
                        None => seen = Some(bits(&got)),
                        Some(first) => assert!(
                            *first == bits(&got),
                            "{isa:?} {schedule:?} {threads} threads {winograd:?}"
                        ),
                    }
                }
            }
        }
    }
}

#[test]
fn the_portable_level_agrees_within_rounding() {
    let spec = NetworkSpec::new("resnet-20", 10);
    let net = spec.build(10).unwrap().deploy().unwrap();
    let x = images(1, 32, 11);
    let run = |isa| {
        let opts = ExecOptions {
            isa: Some(isa),
            ..ExecOptions::default()
        };
        net.executor(1, (32, 32), &opts)
            .unwrap()
            .run(x.data())
            .unwrap()
            .to_vec()
    };
    assert_close_rel("portable", &run(Isa::Portable), &run(Isa::current()), 1e-5);
}

#[test]
fn repeated_runs_give_the_same_logits_and_bad_inputs_are_errors() {
    let net = NetworkSpec::new("resnet-20", 10).build(12).unwrap();
    let mut exec = net.executor(2, (32, 32), &ExecOptions::default()).unwrap();
    let x = images(2, 32, 13);
    let first = exec.run(x.data()).unwrap().to_vec();
    let other = images(2, 32, 14);
    exec.run(other.data()).unwrap();
    assert_eq!(exec.run(x.data()).unwrap(), &first[..]);
    let err = exec.run(&x.data()[1..]).unwrap_err().to_string();
    assert!(err.contains("input values"), "{err}");
    let err = exec.forward(&images(1, 32, 15)).unwrap_err().to_string();
    assert!(err.contains("re-plan"), "{err}");
    let err = net
        .executor(0, (32, 32), &ExecOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("batch"), "{err}");
    let parnet = NetworkSpec::new("parnet-s", 10).build(0).unwrap();
    let err = parnet
        .executor(1, (100, 100), &ExecOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("multiples of 32"), "{err}");
}

#[test]
fn a_plan_over_the_memory_limit_is_refused_before_it_allocates() {
    let net = NetworkSpec::new("parnet-s", 10).build(0).unwrap();
    let limited = |bytes| ExecOptions {
        memory_limit_bytes: Some(bytes),
        ..ExecOptions::default()
    };
    // ParNet-S at 224 plans about 30 MB per image.
    assert!(net.executor(1, (224, 224), &limited(1 << 30)).is_ok());
    let err = net
        .executor(1, (224, 224), &limited(8 << 20))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("MiB of activations") && err.contains("parnet-s"),
        "{err}"
    );
    // So large that even the lower bound overflows: refused before planning, not wrapped.
    let err = net
        .executor(usize::MAX / 4, (224, 224), &limited(1 << 30))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("more than the address space"), "{err}");
}

#[test]
fn nan_and_infinite_inputs_propagate_without_a_panic() {
    let net = NetworkSpec {
        width_mult: Some(0.0625),
        ..NetworkSpec::new("parnet-cifar", 10)
    }
    .build(16)
    .unwrap();
    let mut exec = net.executor(1, (32, 32), &ExecOptions::default()).unwrap();
    let mut x = images(1, 32, 17).to_vec();
    x[5] = f32::NAN;
    x[9] = f32::INFINITY;
    let logits = exec.run(&x).unwrap();
    assert!(logits.iter().any(|v| !v.is_finite()), "{logits:?}");
}

/// The bound on whole networks: ParNet-S (224x224) logits through Winograd within 1e-4
/// of the graph's eval forward, relative to the largest logit; the direct path within 1e-5.
#[test]
fn parnet_s_logits_through_winograd_stay_within_1e_4() {
    let net = NetworkSpec::new("parnet-s", 1000).build(21).unwrap();
    perturb_batch_norms(net.as_ref(), 22);
    let deploy = net.deploy().unwrap();
    let x = images(1, 224, 23);
    let want = deploy.forward(&x, Ctx::eval()).unwrap();
    for (choice, rtol) in [
        (WinogradChoice::Off, 1e-5),
        (WinogradChoice::F2, 1e-4),
        (WinogradChoice::F4, 1e-4),
    ] {
        let mut exec = deploy.executor(1, (224, 224), &options(choice)).unwrap();
        let winograd = exec
            .conv_kernels()
            .iter()
            .filter(|k| k.starts_with("winograd"))
            .count();
        assert_eq!(winograd > 0, choice != WinogradChoice::Off, "{choice:?}");
        let got = exec.forward(&x).unwrap();
        let scale = want.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let err = got
            .data()
            .iter()
            .zip(want.data())
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!(
            "{choice:?} ({winograd} Winograd convs): max |error| {err:e}, max |logit| {scale:e}, relative {:e}",
            err / scale
        );
        assert_close_rel(
            &format!("parnet-s {choice:?}"),
            got.data(),
            want.data(),
            rtol,
        );
    }
}
