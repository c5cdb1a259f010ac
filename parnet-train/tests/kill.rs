//! A training process killed with SIGKILL at a random moment leaves a run directory that is
//! still loadable and resumable (checkpoints are written to a temporary file, then renamed); one
//! sent SIGTERM checkpoints where it is, says how to resume, and exits cleanly.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parnet_train::checkpoint::{self, RunPosition};
use parnet_train::config::TrainConfig;

const EXE: &str = env!("CARGO_BIN_EXE_parnet");

/// A small run of many epochs, written as a config file in `tmp`; returns (config, run dir).
fn long_tiny_run(tmp: &Path) -> (PathBuf, PathBuf) {
    let dir = tmp.join("run");
    let config = tmp.join("tiny.toml");
    let mut cfg = common::tiny_run_config(tmp);
    cfg.data.synthetic_train = 256;
    cfg.train.epochs = 40.0;
    common::write_config(&cfg, &config);
    (config, dir)
}

/// Starts `parnet train --quiet --config config`, its output captured.
fn start_training(config: &Path) -> Child {
    Command::new(EXE)
        .args(["train", "--quiet", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (at most 300 s, while `child` runs) for the run's first checkpoint; returns its path.
fn wait_for_first_checkpoint(child: &mut Child, dir: &Path) -> PathBuf {
    let start = Instant::now();
    let last = dir.join("last.safetensors");
    while !last.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no checkpoint after 300 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "training ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    last
}

/// Resumes the run in `dir` (stopped at `pos`) through the binary for one more epoch; returns
/// where its last checkpoint then stands.
fn resume_for_one_more_epoch(dir: &Path, pos: RunPosition) -> RunPosition {
    let mut cfg = TrainConfig::load(Some(&dir.join("config.toml"))).unwrap();
    cfg.train.epochs = (pos.epoch + 1) as f64;
    std::fs::write(dir.join("config.toml"), cfg.to_toml().unwrap()).unwrap();
    let status = Command::new(EXE)
        .args(["train", "--quiet", "--resume"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    checkpoint::read(&dir.join("last.safetensors"))
        .unwrap()
        .position()
        .unwrap()
}

#[test]
fn sigkill_at_a_random_moment_leaves_a_resumable_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dir) = long_tiny_run(tmp.path());
    let mut child = start_training(&config);
    // Kill at a pseudo-random moment after the first checkpoint (possibly in the middle of
    // writing a later one).
    let last = wait_for_first_checkpoint(&mut child, &dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::thread::sleep(Duration::from_millis(100 + (nanos % 1500) as u64));
    child.kill().unwrap();
    child.wait().unwrap();

    let file = checkpoint::read(&last).expect("the last checkpoint is a complete file");
    let pos = file.position().unwrap();
    assert!(pos.epoch >= 1);
    let after = resume_for_one_more_epoch(&dir, pos);
    assert_eq!(after.epoch, pos.epoch + 1);
}

#[test]
fn sigterm_checkpoints_mid_run_and_exits_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dir) = long_tiny_run(tmp.path());
    let mut child = start_training(&config);
    let last = wait_for_first_checkpoint(&mut child, &dir);
    let first = checkpoint::read(&last).unwrap().position().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let signalled_at = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        signalled_at.elapsed() < Duration::from_secs(60),
        "took {:?} to stop",
        signalled_at.elapsed()
    );
    assert!(stdout.contains("stopped at epoch"), "{stdout}");
    assert!(stdout.contains("resume with --resume"), "{stdout}");
    // The stop checkpoint is newer than the one the run had when it was signalled, and taken
    // mid-epoch: a resumed run continues from that step.
    let stopped = checkpoint::read(&last).unwrap().position().unwrap();
    assert!(
        stopped.global_step > first.global_step,
        "{stopped:?} vs {first:?}"
    );
    assert!(stopped.step_in_epoch > 0, "{stopped:?}");
    let after = resume_for_one_more_epoch(&dir, stopped);
    assert_eq!((after.epoch, after.step_in_epoch), (stopped.epoch + 1, 0));
}

#[test]
fn a_run_directory_in_use_is_refused_and_a_killed_holder_does_not_block_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, dir) = long_tiny_run(tmp.path());
    let mut child = start_training(&config);
    wait_for_first_checkpoint(&mut child, &dir);
    let holder = format!("pid {}", child.id());
    // A second run into the same directory, and a resume of it, while the first trains.
    let second_config = tmp.path().join("second.toml");
    std::fs::copy(&config, &second_config).unwrap();
    for args in [
        vec![
            "train",
            "--quiet",
            "--config",
            second_config.to_str().unwrap(),
        ],
        vec!["train", "--quiet", "--resume", dir.to_str().unwrap()],
    ] {
        let out = Command::new(EXE).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            stderr.contains("in use") && stderr.contains(&holder),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first run was disturbed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The lock file stays behind; the OS lock went with the process.
    assert!(dir.join("train.lock").exists());
    let pos = checkpoint::read(&dir.join("last.safetensors"))
        .unwrap()
        .position()
        .unwrap();
    let after = resume_for_one_more_epoch(&dir, pos);
    assert_eq!(after.epoch, pos.epoch + 1);
}
