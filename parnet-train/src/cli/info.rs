//! `parnet info`.

use std::fmt::Write;

use anyhow::{Result, bail};
use parnet_core::models::parnet::{ModelInfo, Plan};
use serde_json::{Value, json};

use crate::model_io::ModelSpec;

fn model_info(spec: &ModelSpec, image_size: Option<usize>) -> Result<ModelInfo> {
    let cfg = spec.config()?;
    let size = image_size.unwrap_or(cfg.default_image_size());
    let m = cfg.size_multiple();
    if size == 0 || !size.is_multiple_of(m) {
        bail!(
            "--image-size {size}: {} needs a positive multiple of {m}",
            cfg.name
        );
    }
    Ok(Plan::new(&cfg).info(size))
}

/// A human-readable report: totals, then one line per layer.
pub fn info_text(spec: &ModelSpec, image_size: Option<usize>) -> Result<String> {
    let info = model_info(spec, image_size)?;
    let mut s = String::new();
    let size = info.image_size;
    writeln!(s, "model {} (input {size}x{size})", spec.name)?;
    writeln!(
        s,
        "parameters: {} (training graph), {} (fused)",
        info.params_train, info.params_fused
    )?;
    writeln!(
        s,
        "multiply-adds: {:.3} G (training graph), {:.3} G (fused)",
        info.macs_train as f64 / 1e9,
        info.macs_fused as f64 / 1e9
    )?;
    writeln!(s, "depth: {}", info.depth)?;
    writeln!(
        s,
        "{:<22} {:>18} {:>12} {:>12}",
        "layer", "output (C,H,W)", "params", "MACs"
    )?;
    for l in &info.layers {
        let shape = format!("{:?}", l.out_shape);
        writeln!(
            s,
            "{:<22} {:>18} {:>12} {:>12}",
            l.name, shape, l.params_train, l.macs_train
        )?;
    }
    Ok(s)
}

/// The same report as JSON.
pub fn info_json(spec: &ModelSpec, image_size: Option<usize>) -> Result<Value> {
    let info = model_info(spec, image_size)?;
    let layers: Vec<Value> = info
        .layers
        .iter()
        .map(|l| {
            json!({
                "name": l.name, "output_shape": l.out_shape,
                "params_train": l.params_train, "params_fused": l.params_fused,
                "macs_train": l.macs_train, "macs_fused": l.macs_fused,
            })
        })
        .collect();
    Ok(json!({
        "model": spec.name, "image_size": info.image_size,
        "params_train": info.params_train, "params_fused": info.params_fused,
        "macs_train": info.macs_train, "macs_fused": info.macs_fused,
        "depth": info.depth, "layers": layers,
    }))
}
