//! `parnet train --resume`: overrides it honours (and says so) or refuses, the fallback from an
//! unreadable `last` checkpoint to `best`, and the NaN stop's message before any checkpoint.

mod common;

use std::path::Path;

use common::{assert_clean_failure, parnet, tiny_run_config, write_config};
use parnet_train::checkpoint;
use parnet_train::config::TrainConfig;
use parnet_train::train::{best_checkpoint, last_checkpoint};

/// A one-epoch tiny run's config in `tmp/tiny.toml`, training into `tmp/run`.
fn write_tiny_run_config(tmp: &Path, lr: f64) -> String {
    let mut cfg = tiny_run_config(tmp);
    cfg.optim.lr = lr;
    let path = tmp.join("tiny.toml");
    write_config(&cfg, &path);
    path.to_str().unwrap().to_string()
}

fn ok(out: std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    format!("{}{stderr}", String::from_utf8_lossy(&out.stdout))
}

#[test]
fn resume_honours_more_epochs_and_refuses_what_cannot_change() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_tiny_run_config(tmp.path(), 0.1);
    ok(parnet(&["train", "--quiet", "--config", &config]));
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    for (flag, value) in [
        ("--lr", "0.5"),
        ("--batch-size", "16"),
        ("--seed", "9"),
        ("--width-mult", "0.125"),
    ] {
        assert_clean_failure(
            &parnet(&["train", "--quiet", "--resume", r, flag, value]),
            &format!("{flag} cannot change mid-run"),
        );
    }
    assert_clean_failure(
        &parnet(&["train", "--quiet", "--resume", r, "--epochs", "0.5"]),
        "has completed 1 epochs",
    );
    let said = ok(parnet(&[
        "train", "--quiet", "--resume", r, "--epochs", "2",
    ]));
    assert!(said.contains("train.epochs 1 -> 2"), "{said}");
    let pos = checkpoint::read(&last_checkpoint(&run))
        .unwrap()
        .position()
        .unwrap();
    assert_eq!((pos.epoch, pos.step_in_epoch), (2, 0));
    let saved = TrainConfig::load(Some(&run.join("config.toml"))).unwrap();
    assert_eq!(saved.train.epochs, 2.0);
}

#[test]
fn an_unreadable_last_checkpoint_falls_back_to_best_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_tiny_run_config(tmp.path(), 0.1);
    ok(parnet(&["train", "--quiet", "--config", &config]));
    let run = tmp.path().join("run");
    assert!(best_checkpoint(&run).exists());
    let last = last_checkpoint(&run);
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() / 2]).unwrap();
    let said = ok(parnet(&[
        "train",
        "--quiet",
        "--resume",
        run.to_str().unwrap(),
        "--epochs",
        "2",
    ]));
    assert!(
        said.contains("resuming from") && said.contains("best.safetensors"),
        "{said}"
    );
    let pos = checkpoint::read(&last).unwrap().position().unwrap();
    assert_eq!(pos.epoch, 2);
    // With both unreadable the error names both.
    for path in [&last, &best_checkpoint(&run)] {
        std::fs::write(path, b"not a checkpoint").unwrap();
    }
    let out = parnet(&["train", "--quiet", "--resume", run.to_str().unwrap()]);
    assert_clean_failure(&out, "no valid checkpoint");
}

#[test]
fn a_nan_before_the_first_checkpoint_says_none_was_written() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_tiny_run_config(tmp.path(), 1e30);
    let out = parnet(&["train", "--quiet", "--config", &config]);
    assert_clean_failure(&out, "no checkpoint was written yet");
    // Epochs are counted from 1, as in the progress lines.
    assert_clean_failure(&out, "at epoch 1, step ");
    assert!(!last_checkpoint(&tmp.path().join("run")).exists());
}

#[test]
fn a_negative_time_limit_is_refused() {
    assert_clean_failure(
        &parnet(&["train", "--quiet", "--time-limit-minutes=-1"]),
        "train.time_limit_minutes",
    );
}
