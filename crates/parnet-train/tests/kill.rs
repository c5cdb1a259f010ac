//! A training process killed with SIGKILL at a random moment leaves a run directory that is
//! still loadable and resumable (checkpoints are written to a temporary file, then renamed).

use std::process::Command;
use std::time::{Duration, Instant};

use parnet_train::checkpoint;

#[cfg(unix)]
#[test]
fn sigkill_at_a_random_moment_leaves_a_resumable_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let config = tmp.path().join("tiny.toml");
    let mut cfg = parnet_train::config::TrainConfig::load(None).unwrap();
    cfg.model.width_mult = Some(0.0625);
    cfg.data.synthetic_train = 256;
    cfg.data.synthetic_val = 64;
    cfg.train.epochs = 40.0;
    cfg.train.batch_size = 32;
    cfg.train.out = dir.clone();
    std::fs::write(&config, cfg.to_toml().unwrap()).unwrap();
    let exe = env!("CARGO_BIN_EXE_parnet");
    let mut child = Command::new(exe)
        .args(["train", "--quiet", "--config"])
        .arg(&config)
        .spawn()
        .unwrap();
    // Wait for the first checkpoint, then kill at a pseudo-random moment after it (possibly in
    // the middle of writing a later one).
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
    // Finish quickly: resume for one more epoch.
    let mut resumed_cfg =
        parnet_train::config::TrainConfig::load(Some(&dir.join("config.toml"))).unwrap();
    resumed_cfg.train.epochs = (pos.epoch + 1) as f64;
    std::fs::write(dir.join("config.toml"), resumed_cfg.to_toml().unwrap()).unwrap();
    let status = Command::new(exe)
        .args(["train", "--quiet", "--resume"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let after = checkpoint::read(&last).unwrap().position().unwrap();
    assert_eq!(after.epoch, pos.epoch + 1);
}
