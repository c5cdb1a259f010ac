//! Building models by name and moving their weights in and out of safetensors files.
//!
//! A weights file written here carries metadata (`model`, `classes`, `activation`, `widths`,
//! `form`) so that later commands need nothing else to rebuild the model.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use parnet_core::io::{read_tensors, save_module};
use parnet_core::models::parnet::{Activation, ParNet, ParNetConfig};
use parnet_core::models::{Network, network_from_metadata};
use parnet_core::nn::state::load_module_tensors;

use crate::checkpoint;

/// What identifies a model apart from its weights.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    pub name: String,
    pub classes: Option<usize>,
    pub activation: Activation,
    pub width_mult: Option<f64>,
}

impl ModelSpec {
    /// The configuration: the named variant with the class count (default 1000 for ImageNet
    /// variants, 10 for `parnet-cifar`), activation and width multiplier applied.
    pub fn config(&self) -> Result<ParNetConfig> {
        let default_classes = if self.name.contains("cifar") {
            10
        } else {
            1000
        };
        let mut cfg = ParNetConfig::from_name(&self.name, self.classes.unwrap_or(default_classes))?;
        if let Some(m) = self.width_mult {
            cfg = cfg.with_width_mult(m)?;
        }
        cfg.activation = self.activation;
        Ok(cfg)
    }
}

/// The metadata saved with a ParNet's weights: enough to rebuild the model.
pub fn weights_metadata(model: &ParNet) -> HashMap<String, String> {
    let mut md = model.config.to_metadata();
    md.insert("form".to_string(), form(model.is_fused()).to_string());
    md
}

/// The `form` metadata value.
pub fn form(fused: bool) -> &'static str {
    if fused { "fused" } else { "train" }
}

/// The network recorded in a weights file's metadata (see
/// [`parnet_core::models::network_from_metadata`]), ready to receive the weights.
pub fn model_from_metadata(md: &HashMap<String, String>) -> Result<Box<dyn Network>> {
    Ok(network_from_metadata(md)?)
}

/// Whether a weights file holds the deploy (fused) form.
pub fn file_is_fused(path: &Path) -> Result<bool> {
    let (tensors, _) = read_tensors(path)?;
    Ok(tensors.iter().any(|t| t.name.contains("rbr_reparam")))
}

/// Builds the model described by `spec` and loads `weights` into it, in whichever form the file
/// holds; with `fused`, the result is the deploy model either way. `weights` may be plain
/// weights or a training checkpoint (its optimiser and EMA tensors are left aside).
pub fn load_model(spec: &ModelSpec, weights: &Path, fused: bool) -> Result<ParNet> {
    Ok(load_model_and_metadata(spec, weights, fused)?.0)
}

/// [`load_model`], also returning the file's metadata.
pub fn load_model_and_metadata(
    spec: &ModelSpec,
    weights: &Path,
    fused: bool,
) -> Result<(ParNet, HashMap<String, String>)> {
    if !weights.exists() {
        bail!("weights file {} does not exist", weights.display());
    }
    let cfg = spec.config()?;
    let file = checkpoint::read(weights)?;
    let file_fused = file.model.iter().any(|t| t.name.contains("rbr_reparam"));
    let mut model = ParNet::new(cfg, 0)?;
    if file_fused {
        model = model.fused()?;
    }
    load_module_tensors(&model, &file.model, weights)
        .with_context(|| format!("loading {} into {}", weights.display(), spec.name))?;
    if fused && !file_fused {
        model = model.fused()?;
    }
    Ok((model, file.metadata))
}

/// Saves a model's weights with their metadata (atomically).
pub fn save_model(model: &ParNet, path: &Path) -> Result<()> {
    save_module(model, path, &weights_metadata(model))?;
    Ok(())
}
