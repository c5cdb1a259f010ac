//! What a run directory holds: `config.toml` (the resolved configuration), `last.safetensors`
//! and `best.safetensors` (checkpoints), `metrics.jsonl`, `curves.svg`/`.png`, and
//! `train.lock`, locked by the process training in it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::checkpoint::{self, CheckpointFile};
use crate::config::TrainConfig;

/// The checkpoint written after every epoch and on a stop.
pub fn last_checkpoint(dir: &Path) -> PathBuf {
    dir.join("last.safetensors")
}

/// The checkpoint of the best validation top-1 so far.
pub fn best_checkpoint(dir: &Path) -> PathBuf {
    dir.join("best.safetensors")
}

pub(super) fn config_path(dir: &Path) -> PathBuf {
    dir.join("config.toml")
}

pub(super) fn log_path(dir: &Path) -> PathBuf {
    dir.join("metrics.jsonl")
}

pub(super) fn curves_path(dir: &Path) -> PathBuf {
    dir.join("curves.svg")
}

fn lock_path(dir: &Path) -> PathBuf {
    dir.join("train.lock")
}

/// The lock a training process holds on its run directory while it runs: an OS lock on
/// `train.lock` (holding the holder's pid), released by the OS when the process ends however
/// it ends, so a lock file left by a killed run never blocks its resume.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Locks `dir` for this process, or says which process holds it.
pub fn lock(dir: &Path) -> Result<RunLock> {
    let path = lock_path(dir);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot lock the run directory {}", dir.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "a process that has not written its pid yet".to_string(),
                pid => format!("pid {pid}"),
            };
            bail!(
                "{} is in use: another `parnet train` is training in it ({holder}); wait for it to end or choose another --out",
                dir.display()
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.flush())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(RunLock { _file: file })
}

/// Fails unless a file can be created in `dir` (checked before the first step, not at the
/// first checkpoint).
pub fn check_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".write-check-{}", std::process::id()));
    File::create(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .with_context(|| {
            format!(
                "the run directory {} is not writable; checkpoints could not be saved",
                dir.display()
            )
        })
}

/// Creates the run directory of a new run, locks it and writes its configuration; refuses a
/// directory that already holds a run or that another process trains in.
pub(super) fn create(cfg: &TrainConfig) -> Result<(PathBuf, RunLock)> {
    let dir = cfg.train.out.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = lock(&dir)?;
    check_writable(&dir)?;
    if last_checkpoint(&dir).exists() {
        bail!(
            "{} already holds a run; continue it with `parnet train --resume {0}` or choose another --out",
            dir.display()
        );
    }
    save_config(&dir, cfg)?;
    Ok((dir, lock))
}

/// Writes `cfg` as the run's `config.toml` (atomically).
pub(super) fn save_config(dir: &Path, cfg: &TrainConfig) -> Result<()> {
    parnet_core::io::write_atomic(&config_path(dir), cfg.to_toml()?.as_bytes())?;
    Ok(())
}

/// Locks the run in `dir` and reads its configuration, to resume it.
pub(super) fn open(dir: &Path) -> Result<(TrainConfig, RunLock)> {
    if !config_path(dir).exists() {
        bail!("{} holds no run to resume (no config.toml)", dir.display());
    }
    let lock = lock(dir)?;
    check_writable(dir)?;
    let cfg = TrainConfig::load(Some(&config_path(dir)))?;
    cfg.validate()?;
    Ok((cfg, lock))
}

/// The configuration of the run in `dir`, without locking it (the ranks of a distributed run
/// other than rank 0, which holds the lock).
pub(super) fn read_config(dir: &Path) -> Result<TrainConfig> {
    if !config_path(dir).exists() {
        bail!("{} holds no run to resume (no config.toml)", dir.display());
    }
    let cfg = TrainConfig::load(Some(&config_path(dir)))?;
    cfg.validate()?;
    Ok(cfg)
}

/// The checkpoint to resume the run in `dir` from: `last`, or, when `last` is missing or
/// unreadable, `best` (said on stderr), with its path.
pub(super) fn newest_valid_checkpoint(dir: &Path) -> Result<(CheckpointFile, PathBuf)> {
    let (last, best) = (last_checkpoint(dir), best_checkpoint(dir));
    if !last.exists() && !best.exists() {
        bail!("{} has no checkpoint to resume from", dir.display());
    }
    let last_err = match checkpoint::read(&last).and_then(|f| f.position().map(|_| f)) {
        Ok(file) => return Ok((file, last)),
        Err(e) => e,
    };
    match checkpoint::read(&best).and_then(|f| f.position().map(|p| (f, p))) {
        Ok((file, pos)) => {
            eprintln!(
                "warning: {} cannot be resumed from ({last_err:#}); resuming from {}, the newest valid checkpoint (end of epoch {})",
                last.display(),
                best.display(),
                pos.epoch
            );
            Ok((file, best))
        }
        Err(best_err) if best.exists() => bail!(
            "no valid checkpoint in {}: {last_err:#}; {best_err:#}",
            dir.display()
        ),
        Err(_) => Err(last_err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_that_takes_no_new_file_fails_the_writability_check() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Not even root may create a file in /proc (chmod cannot make a folder unwritable for
        // root, which CI runs as).
        if cfg!(target_os = "linux") {
            let err = format!("{:#}", check_writable(Path::new("/proc/self")).unwrap_err());
            assert!(err.contains("not writable"), "{err}");
        }
    }
}
