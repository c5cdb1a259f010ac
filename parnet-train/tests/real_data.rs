//! A short training run on the real CIFAR-10 training images (50,000 JPEGs in class folders),
//! found through `PARNET_DATA` or `../shared/data/cifar10/train` beside the workspace, end to end
//! through the `parnet` binary: the configured split, the paper's augmentation, checkpoints, and
//! `parnet eval --held-out` reproducing the logged validation figures. Ignored by default:
//! `cargo test -p parnet-train --test real_data -- --ignored` (`.ci/run` runs it).

use std::path::PathBuf;
use std::process::Command;

use parnet_train::config::TrainConfig;
use parnet_train::metrics::read_log;

fn real_data_dir() -> PathBuf {
    match std::env::var("PARNET_DATA") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/cifar10/train"),
    }
}

#[test]
#[ignore = "needs real CIFAR-10 data (PARNET_DATA)"]
fn a_short_real_cifar10_run_learns_and_its_held_out_split_is_rebuilt_by_eval() {
    let data = real_data_dir();
    assert!(data.is_dir(), "no CIFAR-10 folder at {}", data.display());
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let config = tmp.path().join("short.toml");
    let mut cfg = TrainConfig::load(Some(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/cifar10-hour.toml"),
    ))
    .unwrap();
    // 0.1 epoch (70 steps of 64 from the 45,000 training images) at width x0.125, then the
    // 5,000 held-out images.
    cfg.data.source = data.display().to_string();
    cfg.model.width_mult = Some(0.125);
    cfg.train.epochs = 0.1;
    cfg.train.out = run.clone();
    std::fs::write(&config, cfg.to_toml().unwrap()).unwrap();
    let exe = env!("CARGO_BIN_EXE_parnet");
    let out = Command::new(exe)
        .args(["train", "--quiet", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("45000 training, 5000 validation images"),
        "{stdout}"
    );
    let log = read_log(&run.join("metrics.jsonl")).unwrap();
    let last = log.last().unwrap();
    let val_top1 = last.val_top1.unwrap();
    println!("validation top-1 after 70 steps: {:.2}%", 100.0 * val_top1);
    // Ten classes: chance is 10%. Seed 0 at 2 threads gives 32.0%.
    assert!(
        val_top1 >= 0.2,
        "validation top-1 {val_top1} after 70 steps"
    );

    let out = Command::new(exe)
        .args(["eval", "--held-out", "--json", "--batch-size"])
        .arg(cfg.train.eval_batch_size.to_string())
        .arg("--checkpoint")
        .arg(run.join("last.safetensors"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(eval["images"], 5000);
    assert_eq!(eval["top1"].as_f64(), last.val_top1);
    assert_eq!(eval["loss"].as_f64(), last.val_loss);
}
