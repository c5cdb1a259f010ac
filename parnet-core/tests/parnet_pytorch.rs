//! Whole-model agreement: our ParNet against an independent PyTorch ParNet
//! (`tools/parnet_reference.py`, built from PARNET-SPEC sections 2 and 3 with the official
//! state-dict keys). Fixtures come from `tools/make_model_golden.py` (CI needs no Python): per case
//! a weights file (loaded with `load_module`, which checks every name and shape) and an io file
//! with the input, eval and train logits, the cross-entropy gradients of every parameter and the
//! running statistics after one train-mode forward. PyTorch computed them in float64 from the
//! float32 weights, so the differences measured here are our float32 error.
//!
//! Tolerance: element-wise `|got - want| <= atol * max|want| + rtol * |want|`, the scale being the
//! largest magnitude of the tensor compared:
//! - logits (eval, train, fused eval): rtol 1e-4, atol 1e-5;
//! - gradients: rtol 2e-4, atol 2e-4 (per parameter tensor; measured worst ~1e-5);
//! - running statistics after one step: rtol 1e-4, atol 1e-5.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parnet_core::io::{load_module, read_tensors};
use parnet_core::models::parnet::{Activation, Layout, ParNet, ParNetConfig};
use parnet_core::nn::{Ctx, Module};
use parnet_core::ops::loss::cross_entropy;
use parnet_core::{Param, Tensor};

const LOGITS: (f64, f64) = (1e-4, 1e-5);
const GRADS: (f64, f64) = (2e-4, 2e-4);
const STATS: (f64, f64) = (1e-4, 1e-5);

fn fixture(name: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name]
        .iter()
        .collect()
}

/// Tensors of the io file by name: (values, shape).
fn read_io(path: &Path) -> HashMap<String, (Vec<f32>, Vec<usize>)> {
    let (tensors, _) = read_tensors(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run tools/make_model_golden.py)", path.display()));
    tensors
        .into_iter()
        .map(|t| (t.name, (t.data, t.shape)))
        .collect()
}

/// Checks `got` against `want`; returns the largest error relative to `max|want|`.
fn check(what: &str, got: &[f32], want: &[f32], (rtol, atol): (f64, f64)) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
    let mut worst = 0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g as f64, w as f64);
        let err = (g - w).abs();
        assert!(
            err <= atol * scale + rtol * w.abs(),
            "{what}[{i}]: got {g}, want {w} (|diff| {err:.3e}, max|want| {scale:.3e})"
        );
        if scale > 0.0 {
            worst = worst.max(err / scale);
        }
    }
    worst
}

fn run_case(case: &str, layout: Layout, classes: usize, activation: Activation) {
    let weights = fixture(&format!("parnet_{case}.weights.safetensors"));
    let io = read_io(&fixture(&format!("parnet_{case}.io.safetensors")));
    let get = |k: &str| io.get(k).unwrap_or_else(|| panic!("{case}: no tensor {k}"));

    let mut cfg = ParNetConfig::custom("t", layout, [8, 16, 16, 32], classes).unwrap();
    cfg.activation = activation;
    let model = ParNet::new(cfg, 0).unwrap();
    let meta = load_module(&model, &weights).unwrap();
    assert_eq!(
        meta.get("activation").map(String::as_str),
        Some(activation.name())
    );

    let (x, x_shape) = get("input");
    let x = Tensor::from_vec(x.clone(), x_shape.clone()).unwrap();

    // Eval, unfused and fused.
    let want = &get("logits_eval").0;
    let eval = model.forward(&x, Ctx::eval()).unwrap();
    let e_eval = check(&format!("{case} logits_eval"), eval.data(), want, LOGITS);
    let fused = model.fused().unwrap();
    let fused_logits = fused.forward(&x, Ctx::eval()).unwrap();
    let e_fused = check(
        &format!("{case} fused logits_eval"),
        fused_logits.data(),
        want,
        LOGITS,
    );

    // One train-mode forward + backward of the mean cross-entropy.
    let targets: Vec<usize> = get("targets").0.iter().map(|&t| t as usize).collect();
    let logits = model.forward(&x, Ctx::train(0)).unwrap();
    let e_train = check(
        &format!("{case} logits_train"),
        logits.data(),
        &get("logits_train").0,
        LOGITS,
    );
    let loss = cross_entropy(&logits, &targets, 0.0).unwrap();
    check(
        &format!("{case} loss"),
        loss.data(),
        &get("loss_train").0,
        LOGITS,
    );
    loss.backward().unwrap();

    let mut e_grad = 0f64;
    let mut n_grads = 0;
    model.visit_params(&mut |p: &Param| {
        let key = format!("grad.{}", p.name());
        let grad = p
            .grad()
            .unwrap_or_else(|| panic!("{case}: no gradient for {}", p.name()));
        e_grad = e_grad.max(check(&format!("{case} {key}"), &grad, &get(&key).0, GRADS));
        n_grads += 1;
    });
    let mut e_stats = 0f64;
    let mut n_stats = 0;
    model.visit_buffers(&mut |b| {
        if b.integer {
            assert_eq!(b.get(), vec![1.0], "{case} {}: one batch tracked", b.name);
            return;
        }
        let key = format!("after.{}", b.name);
        e_stats = e_stats.max(check(
            &format!("{case} {key}"),
            &b.get(),
            &get(&key).0,
            STATS,
        ));
        n_stats += 1;
    });
    let n_grad_keys = io.keys().filter(|k| k.starts_with("grad.")).count();
    let n_stat_keys = io.keys().filter(|k| k.starts_with("after.")).count();
    assert_eq!(
        n_grads, n_grad_keys,
        "{case}: every parameter's gradient compared"
    );
    assert_eq!(
        n_stats, n_stat_keys,
        "{case}: every running statistic compared"
    );
    println!(
        "{case}: max error / max|want|: eval {e_eval:.2e}, fused {e_fused:.2e}, train {e_train:.2e}, \
         grads {e_grad:.2e} ({n_grads} tensors), running stats {e_stats:.2e} ({n_stats} tensors)"
    );
}

#[test]
fn parnet_imagenet_silu_matches_pytorch() {
    run_case("imagenet_silu", Layout::ImageNet, 5, Activation::Silu);
}

#[test]
fn parnet_cifar_silu_matches_pytorch() {
    run_case("cifar_silu", Layout::Cifar, 10, Activation::Silu);
}

#[test]
fn parnet_imagenet_relu_matches_pytorch() {
    run_case("imagenet_relu", Layout::ImageNet, 5, Activation::Relu);
}
