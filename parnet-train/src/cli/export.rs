//! `parnet export onnx`: any network's deploy form as an ONNX file (opset 17) for other runtimes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use parnet_core::onnx::{ONNX_OPSET, OnnxBatch, OnnxExport, export_onnx};

use super::args::{ModelArgs, check_output_path};
use crate::checkpoint::load_network;
use crate::limits::check_image_size;

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// The deploy form as an ONNX model (training weights are reparameterized first).
    Onnx(ExportOnnxArgs),
}

/// Options of `parnet export onnx`.
#[derive(Args, Debug, Clone)]
pub struct ExportOnnxArgs {
    /// The network (default: the one the weights file records).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Weights or a training checkpoint, in either form.
    #[arg(long)]
    pub weights: PathBuf,
    /// Where to write the `.onnx` file.
    #[arg(long)]
    pub output: PathBuf,
    /// Square input size (default: the network's own, 32 for CIFAR layouts, 224 for ImageNet).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// A fixed batch size (default: a dynamic batch dimension `N`).
    #[arg(long)]
    pub batch: Option<usize>,
}

/// Metadata of the weights file carried into the ONNX file's `metadata_props`, beside the
/// network's description: what a user of the file needs to feed it.
const CARRIED_METADATA: [&str; 3] = ["mean", "std", "image_size"];

pub fn run(what: &ExportCommand) -> Result<()> {
    match what {
        ExportCommand::Onnx(args) => export(args),
    }
}

fn export(args: &ExportOnnxArgs) -> Result<()> {
    check_output_path(&args.output, &[&args.weights])?;
    let spec = args.model.spec_for_file(&args.weights)?;
    let loaded = load_network(spec.as_ref(), &args.weights, true)?;
    let size = args
        .image_size
        .unwrap_or_else(|| loaded.model.default_image_size());
    check_image_size(size)?;
    let batch = match args.batch {
        None => OnnxBatch::Dynamic,
        Some(0) => anyhow::bail!("--batch 0: a fixed batch must be at least 1"),
        Some(n) => OnnxBatch::Fixed(n),
    };
    let mut metadata = loaded.model_metadata.clone();
    for key in CARRIED_METADATA {
        if let Some(v) = loaded.file_metadata.get(key) {
            metadata.insert(key.to_string(), v.clone());
        }
    }
    let export = OnnxExport {
        image_size: (size, size),
        batch,
        metadata,
    };
    export_onnx(loaded.model.as_ref(), &export, &args.output)
        .with_context(|| format!("exporting {} to ONNX", args.weights.display()))?;
    let batch = args.batch.map_or("N".to_string(), |n| n.to_string());
    crate::say!(
        "wrote {} (ONNX opset {ONNX_OPSET}, {}, input [{batch}, 3, {size}, {size}])",
        args.output.display(),
        loaded.model.name()
    );
    Ok(())
}
