//! Weight files and checkpoints, all safetensors, all written atomically.
//!
//! - A weights file holds a model's tensors under their official names and, in its metadata, the
//!   network's description ([`MODEL_METADATA_KEYS`], from the registry) and its `form` (`train`
//!   or `fused`), so that later commands need nothing else to rebuild the model
//!   ([`load_network`]).
//! - A checkpoint also holds the optimiser's momentum (`optim.<name>.momentum_buffer`) and the
//!   EMA weights (`ema.<name>`), and in its metadata the data normalisation and the position in
//!   the run.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use parnet_core::io::{read_tensors, write_tensors};
use parnet_core::models::{
    MODEL_METADATA_KEYS, Network, NetworkSpec, metadata_describes_network, network_from_metadata,
};
use parnet_core::nn::Module;
use parnet_core::nn::state::{NamedTensor, load_module_tensors, module_tensors};
use parnet_core::optim::{Ema, Sgd};

/// The `form` metadata value.
pub fn form(deploy: bool) -> &'static str {
    if deploy { "fused" } else { "train" }
}

/// A network loaded from a weights file or a checkpoint.
pub struct LoadedNetwork {
    pub model: Box<dyn Network>,
    /// The metadata describing the network (the file's own keys when it had them, else the
    /// spec's), without `form`: what to write beside its weights.
    pub model_metadata: HashMap<String, String>,
    /// Everything the file's metadata holds.
    pub file_metadata: HashMap<String, String>,
}

/// Loads the weights in `path` (plain weights or a training checkpoint, whose optimiser and EMA
/// tensors are left aside) into the network `spec` describes or, without a spec, the one the
/// file's metadata records, in whichever form the file holds (its `form`, or for files without
/// one, the form whose tensor names it carries). With `deploy`, the result is the deploy form
/// either way.
pub fn load_network(
    spec: Option<&NetworkSpec>,
    path: &Path,
    deploy: bool,
) -> Result<LoadedNetwork> {
    if !path.exists() {
        bail!("weights file {} does not exist", path.display());
    }
    let file = read(path)?;
    let described = metadata_describes_network(&file.metadata);
    let (train, model_metadata) = match spec {
        Some(spec) => (spec.build(0)?, spec.to_metadata()?),
        None if described => {
            let mut md = file.metadata.clone();
            md.remove("form");
            let train = network_from_metadata(&md)
                .with_context(|| format!("{} does not describe its model", path.display()))?;
            md.retain(|k, _| MODEL_METADATA_KEYS.contains(&k.as_str()));
            (train, md)
        }
        None => bail!(
            "{} does not say which model it holds; name it with --model (and --classes, \
             --width-mult, --activation as it was built)",
            path.display()
        ),
    };
    let file_is_deploy = match file.metadata.get("form").map(String::as_str) {
        Some("fused") => true,
        Some(_) => false,
        None => {
            let names: std::collections::HashSet<&str> =
                file.model.iter().map(|t| t.name.as_str()).collect();
            let mut all_present = true;
            train.visit_params(&mut |p| all_present &= names.contains(p.name()));
            !all_present
        }
    };
    let model = if file_is_deploy {
        train.deploy()?
    } else {
        train
    };
    let name = model.name().to_string();
    load_module_tensors(model.as_ref(), &file.model, path)
        .with_context(|| format!("loading {} into {name}", path.display()))?;
    let model = if deploy && !file_is_deploy {
        model.deploy()?
    } else {
        model
    };
    Ok(LoadedNetwork {
        model,
        model_metadata,
        file_metadata: file.metadata,
    })
}

/// Writes a model's weights with `model_metadata` (see [`LoadedNetwork::model_metadata`]), its
/// `form`, and `extra` metadata, atomically.
pub fn save_weights(
    model: &dyn Network,
    model_metadata: &HashMap<String, String>,
    extra: &HashMap<String, String>,
    path: &Path,
) -> Result<()> {
    let mut md = extra.clone();
    md.extend(model_metadata.clone());
    md.insert("form".to_string(), form(model.is_deploy()).to_string());
    write_tensors(path, &module_tensors(model), &md)
        .with_context(|| format!("writing {}", path.display()))
}

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

pub fn fmt3(v: [f32; 3]) -> String {
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
