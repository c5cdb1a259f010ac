//! Helpers of the command-line tests: run the binary, read its JSON, a tiny ParNet, its weights
//! file and a tiny training run's config, and the check that a failure is clean.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use parnet_core::models::{Network, NetworkSpec};
use parnet_train::checkpoint::save_weights;
use parnet_train::config::TrainConfig;

pub fn parnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parnet"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `parnet` with `args` (which ask for `--json`), checks it succeeded, parses its output.
pub fn parnet_json(args: &[&str]) -> serde_json::Value {
    let out = parnet(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `parnet-cifar` at width x0.0625 (8/16/32/64 channels).
pub fn tiny_parnet_cifar_spec() -> NetworkSpec {
    NetworkSpec {
        width_mult: Some(0.0625),
        ..NetworkSpec::new("parnet-cifar", 10)
    }
}

/// [`tiny_parnet_cifar_spec`], seed 3.
pub fn tiny_parnet_cifar() -> Box<dyn Network> {
    tiny_parnet_cifar_spec().build(3).unwrap()
}

/// Saves `model` (built from `spec`) with the metadata that describes it.
pub fn save_model(model: &dyn Network, spec: &NetworkSpec, path: &Path) {
    let md = spec.to_metadata().unwrap();
    save_weights(model, &md, &Default::default(), path).unwrap();
}

/// [`tiny_parnet_cifar`] saved as `dir/w.safetensors`; returns its path.
pub fn tiny_weights(dir: &Path) -> PathBuf {
    let path = dir.join("w.safetensors");
    save_model(
        tiny_parnet_cifar().as_ref(),
        &tiny_parnet_cifar_spec(),
        &path,
    );
    path
}

/// A one-epoch run of [`tiny_parnet_cifar_spec`]'s width on 128 synthetic images (64 for
/// validation), batch 32, training into `tmp/run`.
pub fn tiny_run_config(tmp: &Path) -> TrainConfig {
    let mut cfg = TrainConfig::load(None).unwrap();
    cfg.model.width_mult = Some(0.0625);
    cfg.data.synthetic_train = 128;
    cfg.data.synthetic_val = 64;
    cfg.train.epochs = 1.0;
    cfg.train.batch_size = 32;
    cfg.train.out = tmp.join("run");
    cfg
}

/// Writes `cfg` as TOML to `path`.
pub fn write_config(cfg: &TrainConfig, path: &Path) {
    std::fs::write(path, cfg.to_toml().unwrap()).unwrap();
}

pub fn assert_clean_failure(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
}
