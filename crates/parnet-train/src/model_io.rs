//! Building models by name and moving their weights in and out of safetensors files.
//!
//! A weights file written here carries metadata (`model`, `classes`, `activation`, `widths`,
//! `form`) so that later commands need nothing else to rebuild the model.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use parnet_core::io::{load_module, read_tensors, save_module};
use parnet_core::models::parnet::{Activation, Layout, ParNet, ParNetConfig};

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

/// The metadata saved with a model's weights: enough to rebuild the model.
pub fn weights_metadata(model: &ParNet) -> HashMap<String, String> {
    let c = &model.config;
    let layout = match c.layout {
        Layout::ImageNet => "imagenet",
        Layout::Cifar => "cifar",
    };
    HashMap::from([
        ("model".to_string(), c.name.clone()),
        ("layout".to_string(), layout.to_string()),
        (
            "widths".to_string(),
            c.widths.map(|w| w.to_string()).join(","),
        ),
        ("stem_width".to_string(), c.stem_width.to_string()),
        ("classes".to_string(), c.num_classes.to_string()),
        ("activation".to_string(), c.activation.name().to_string()),
        ("double_gate".to_string(), c.double_gate.to_string()),
        ("dropout".to_string(), c.dropout.to_string()),
        (
            "form".to_string(),
            if model.is_fused() { "fused" } else { "train" }.to_string(),
        ),
    ])
}

/// Rebuilds the configuration recorded by [`weights_metadata`].
pub fn config_from_metadata(md: &HashMap<String, String>) -> Result<ParNetConfig> {
    let get = |k: &str| {
        md.get(k)
            .map(String::as_str)
            .ok_or_else(|| anyhow::anyhow!("no `{k}` in the file's metadata"))
    };
    let layout = match get("layout")? {
        "imagenet" => Layout::ImageNet,
        "cifar" => Layout::Cifar,
        other => bail!("unknown layout {other:?} in the file's metadata"),
    };
    let widths: Vec<usize> = get("widths")?
        .split(',')
        .map(|w| w.trim().parse())
        .collect::<Result<_, _>>()?;
    let widths: [usize; 4] = widths
        .try_into()
        .map_err(|_| anyhow::anyhow!("`widths` must hold four numbers"))?;
    let mut cfg = ParNetConfig::custom(get("model")?, layout, widths, get("classes")?.parse()?)?;
    cfg.stem_width = get("stem_width")?.parse()?;
    cfg.activation = Activation::parse(get("activation")?)?;
    cfg.double_gate = get("double_gate")?.parse()?;
    cfg.dropout = get("dropout")?.parse()?;
    Ok(cfg)
}

/// A model shaped as the metadata says (in the recorded form), ready to receive the weights.
pub fn model_from_metadata(md: &HashMap<String, String>) -> Result<ParNet> {
    let model = ParNet::new(config_from_metadata(md)?, 0)?;
    if md.get("form").map(String::as_str) == Some("fused") {
        Ok(model.fused()?)
    } else {
        Ok(model)
    }
}

/// Whether a weights file holds the deploy (fused) form.
pub fn file_is_fused(path: &Path) -> Result<bool> {
    let (tensors, _) = read_tensors(path)?;
    Ok(tensors.iter().any(|t| t.name.contains("rbr_reparam")))
}

/// Builds the model described by `spec` and loads `weights` into it, in whichever form the file
/// holds; with `fused`, the result is the deploy model either way.
pub fn load_model(spec: &ModelSpec, weights: &Path, fused: bool) -> Result<ParNet> {
    if !weights.exists() {
        bail!("weights file {} does not exist", weights.display());
    }
    let cfg = spec.config()?;
    let file_fused = file_is_fused(weights)?;
    let mut model = ParNet::new(cfg, 0)?;
    if file_fused {
        model = model.fused()?;
    }
    load_module(&model, weights)
        .with_context(|| format!("loading {} into {}", weights.display(), spec.name))?;
    if fused && !file_fused {
        model = model.fused()?;
    }
    Ok(model)
}

/// Saves a model's weights with their metadata (atomically).
pub fn save_model(model: &ParNet, path: &Path) -> Result<()> {
    save_module(model, path, &weights_metadata(model))?;
    Ok(())
}
