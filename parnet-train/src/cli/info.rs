//! `parnet info`: parameters, multiply-adds and depth of any network, and every layer's output
//! shape, read off its plan (no weights are run).

use std::fmt::Write;

use anyhow::{Result, bail};
use clap::Args;
use parnet_core::models::info::ModelInfo;
use parnet_core::models::{Network, NetworkSpec};
use serde_json::{Value, json};

use super::args::ModelArgs;

/// Options of `parnet info`.
#[derive(Args, Debug, Clone)]
pub struct InfoArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Square input size (default: the network's, 224 or 32).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Prints the report of `args`.
pub fn run(args: &InfoArgs) -> Result<()> {
    let spec = args.model.spec()?;
    if args.json {
        crate::say!(
            "{}",
            serde_json::to_string_pretty(&info_json(&spec, args.image_size)?)?
        );
    } else {
        crate::say!("{}", info_text(&spec, args.image_size)?.trim_end());
    }
    Ok(())
}

fn model_info(spec: &NetworkSpec, image_size: Option<usize>) -> Result<ModelInfo> {
    crate::limits::check_network_fits(spec)?;
    let model: Box<dyn Network> = spec.build(0)?;
    let size = image_size.unwrap_or(model.default_image_size());
    crate::limits::check_image_size(size)?;
    let m = model.input_multiple();
    if size == 0 || !size.is_multiple_of(m) {
        bail!(
            "--image-size {size}: {} needs a positive multiple of {m}",
            spec.name
        );
    }
    Ok(model.info(size))
}

/// A human-readable report: totals, then one line per layer.
pub fn info_text(spec: &NetworkSpec, image_size: Option<usize>) -> Result<String> {
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
        "{:<26} {:>18} {:>12} {:>12}",
        "layer", "output (C,H,W)", "params", "MACs"
    )?;
    for l in &info.layers {
        let shape = format!("{:?}", l.out_shape);
        writeln!(
            s,
            "{:<26} {:>18} {:>12} {:>12}",
            l.name, shape, l.params_train, l.macs_train
        )?;
    }
    Ok(s)
}

/// The same report as JSON.
pub fn info_json(spec: &NetworkSpec, image_size: Option<usize>) -> Result<Value> {
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
