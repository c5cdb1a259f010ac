//! Checkpoints: one safetensors file holding the model (official names), the optimiser's
//! momentum (`optim.<name>.momentum_buffer`), the EMA weights (`ema.<name>`), and in its metadata
//! the model description, the data normalisation and the position in the run. Written atomically.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use parnet_core::io::{read_tensors, write_tensors};
use parnet_core::nn::Module;
use parnet_core::nn::state::{NamedTensor, load_module_tensors, module_tensors};
use parnet_core::optim::{Ema, Sgd};

use crate::model_io::form;

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunPosition {
    /// Epochs fully done.
    pub epoch: usize,
    /// Batches done in the current (unfinished) epoch; 0 at an epoch boundary.
    pub step_in_epoch: usize,
    /// Optimiser steps so far.
    pub global_step: u64,
    /// Best validation top-1 so far (0 before the first evaluation).
    pub best_val_top1: f64,
}

/// What a checkpoint describes besides the tensors.
pub struct CheckpointMeta {
    pub position: RunPosition,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub image_size: usize,
    /// The resolved run configuration (TOML).
    pub config_toml: String,
    /// Training plus validation images of the run's data (checked when the validation split
    /// is rebuilt from the config).
    pub data_images: usize,
}

/// The metadata key of [`CheckpointMeta::data_images`].
pub const DATA_IMAGES_KEY: &str = "data_images";

fn fmt3(v: [f32; 3]) -> String {
    format!("{},{},{}", v[0], v[1], v[2])
}

/// Parses `a,b,c` into three floats.
pub fn parse3(s: &str) -> Result<[f32; 3]> {
    let v: Vec<f32> = s
        .split(',')
        .map(|x| x.trim().parse::<f32>())
        .collect::<Result<_, _>>()?;
    v.try_into()
        .map_err(|_| anyhow!("expected three comma-separated numbers, got {s:?}"))
}

/// Writes a checkpoint atomically.
/// `model_metadata` describes the network (see [`parnet_core::models::NetworkSpec::to_metadata`]).
pub fn save(
    path: &Path,
    model: &dyn Module,
    model_metadata: &HashMap<String, String>,
    sgd: &Sgd,
    ema: Option<&Ema>,
    meta: &CheckpointMeta,
) -> Result<()> {
    let mut tensors = module_tensors(model);
    tensors.extend(sgd.state().into_iter().map(|t| NamedTensor {
        name: format!("optim.{}", t.name),
        ..t
    }));
    if let Some(ema) = ema {
        tensors.extend(ema.tensors().iter().map(|t| NamedTensor {
            name: format!("ema.{}", t.name),
            ..t.clone()
        }));
    }
    let mut md = model_metadata.clone();
    md.insert("form".to_string(), form(false).to_string());
    let p = meta.position;
    md.extend([
        ("epoch".to_string(), p.epoch.to_string()),
        ("step_in_epoch".to_string(), p.step_in_epoch.to_string()),
        ("global_step".to_string(), p.global_step.to_string()),
        ("best_val_top1".to_string(), p.best_val_top1.to_string()),
        ("mean".to_string(), fmt3(meta.mean)),
        ("std".to_string(), fmt3(meta.std)),
        ("image_size".to_string(), meta.image_size.to_string()),
        ("config".to_string(), meta.config_toml.clone()),
        (DATA_IMAGES_KEY.to_string(), meta.data_images.to_string()),
    ]);
    write_tensors(path, &tensors, &md)
        .with_context(|| format!("writing checkpoint {}", path.display()))
}

/// The parts of a checkpoint file, split by prefix.
pub struct CheckpointFile {
    pub model: Vec<NamedTensor>,
    pub optim: Vec<NamedTensor>,
    pub ema: Vec<NamedTensor>,
    pub metadata: HashMap<String, String>,
}

/// Reads a checkpoint (or a plain weights file: then `optim` and `ema` are empty).
pub fn read(path: &Path) -> Result<CheckpointFile> {
    let (tensors, metadata) =
        read_tensors(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let (mut model, mut optim, mut ema) = (Vec::new(), Vec::new(), Vec::new());
    for t in tensors {
        if let Some(rest) = t.name.strip_prefix("optim.") {
            optim.push(NamedTensor {
                name: rest.to_string(),
                ..t
            });
        } else if let Some(rest) = t.name.strip_prefix("ema.") {
            ema.push(NamedTensor {
                name: rest.to_string(),
                ..t
            });
        } else {
            model.push(t);
        }
    }
    Ok(CheckpointFile {
        model,
        optim,
        ema,
        metadata,
    })
}

impl CheckpointFile {
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("the checkpoint has no `{key}` in its metadata"))
    }

    pub fn position(&self) -> Result<RunPosition> {
        Ok(RunPosition {
            epoch: self.meta("epoch")?.parse()?,
            step_in_epoch: self.meta("step_in_epoch")?.parse()?,
            global_step: self.meta("global_step")?.parse()?,
            best_val_top1: self.meta("best_val_top1")?.parse()?,
        })
    }

    /// Loads the model tensors into `model` (all names and shapes must match).
    pub fn load_model(&self, model: &dyn Module, path: &Path) -> Result<()> {
        load_module_tensors(model, &self.model, path)?;
        Ok(())
    }
}
