//! What a run directory holds: `config.toml` (the resolved configuration), `last.safetensors`
//! and `best.safetensors` (checkpoints), `metrics.jsonl` and `curves.svg`/`.png`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

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

/// Creates the run directory of a new run and writes its configuration; refuses a directory
/// that already holds a run.
pub(super) fn create(cfg: &TrainConfig) -> Result<PathBuf> {
    let dir = cfg.train.out.clone();
    if last_checkpoint(&dir).exists() {
        bail!(
            "{} already holds a run; continue it with `parnet train --resume {0}` or choose another --out",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    parnet_core::io::write_atomic(&config_path(&dir), cfg.to_toml()?.as_bytes())?;
    Ok(dir)
}

/// The configuration and last checkpoint of the run in `dir`, to resume it.
pub(super) fn open(dir: &Path) -> Result<(TrainConfig, PathBuf)> {
    let cfg = TrainConfig::load(Some(&config_path(dir)))?;
    cfg.validate()?;
    let ck = last_checkpoint(dir);
    if !ck.exists() {
        bail!("{} has no checkpoint to resume from", dir.display());
    }
    Ok((cfg, ck))
}
