//! `parnet import`: a PyTorch checkpoint (the official ParNet `*.pth.tar`, a timm training
//! checkpoint, or a bare state dict) to our safetensors weights of any registry network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use parnet_core::io::{CheckpointWeights, read_pytorch_state_dict};
use parnet_core::models::NetworkSpec;
use parnet_core::nn::state::load_module_tensors;
use parnet_data::transforms::{CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD};

use super::args::{ModelArgs, check_output_path};
use crate::checkpoint::{fmt3, save_weights};

pub use parnet_data::transforms::IMAGENET_CROP_PCT;

/// Options of `parnet import`.
#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The network the checkpoint holds (required: a state dict does not name its network).
    #[command(flatten)]
    pub model: ModelArgs,
    /// A `torch.save` file: zip (PyTorch 1.6+) or legacy format; a bare state dict or a dict
    /// with `state_dict` / `state_dict_ema` (timm); `module.` prefixes are removed.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Take the EMA weights (`state_dict_ema`), as the official results do.
    #[arg(long)]
    pub ema: bool,
    /// Where to write the weights (safetensors, training form; `parnet fuse` makes the deploy
    /// form).
    #[arg(long)]
    pub output: PathBuf,
}

/// Runs `parnet import`.
pub fn run(args: &ImportArgs) -> Result<()> {
    let spec = args.model.spec()?;
    let report = import_checkpoint(&spec, &args.checkpoint, args.ema, &args.output)?;
    crate::say!(
        "imported {} tensors ({} parameters) from {} of {} ({} format); wrote {}",
        report.tensors,
        report.params,
        report.source,
        args.checkpoint.display(),
        report.format,
        args.output.display()
    );
    Ok(())
}

/// What [`import_checkpoint`] read.
#[derive(Debug)]
pub struct ImportReport {
    pub tensors: usize,
    pub params: usize,
    pub source: &'static str,
    pub format: String,
}

/// Reads the checkpoint's state dict into `spec`'s network (every missing, unexpected and
/// mis-shaped tensor is listed on a mismatch, and nothing is written) and writes the weights
/// atomically with the network's metadata, the evaluation normalisation and crop, and where they
/// came from.
pub fn import_checkpoint(
    spec: &NetworkSpec,
    checkpoint: &Path,
    ema: bool,
    output: &Path,
) -> Result<ImportReport> {
    check_output_path(output, &[checkpoint])?;
    let which = if ema {
        CheckpointWeights::Ema
    } else {
        CheckpointWeights::Raw
    };
    let state = read_pytorch_state_dict(checkpoint, which)?;
    let model = spec.build(0)?;
    load_module_tensors(model.as_ref(), &state.tensors, checkpoint).with_context(|| {
        format!(
            "not a checkpoint of {} (read {} of the file)",
            describe(spec),
            state.source
        )
    })?;
    let imagenet = parnet_core::models::default_num_classes(&spec.name) == 1000;
    let (mean, std) = if imagenet {
        (IMAGENET_MEAN, IMAGENET_STD)
    } else {
        (CIFAR10_MEAN, CIFAR10_STD)
    };
    let mut extra = HashMap::from([
        ("mean".to_string(), fmt3(mean)),
        ("std".to_string(), fmt3(std)),
        (
            "image_size".to_string(),
            model.default_image_size().to_string(),
        ),
        (
            "imported_from".to_string(),
            format!("{} ({})", file_name(checkpoint), state.source),
        ),
    ]);
    if imagenet {
        extra.insert("crop_pct".to_string(), IMAGENET_CROP_PCT.to_string());
    }
    if output.exists() && !output.is_file() {
        bail!("--output {} is not a file", output.display());
    }
    save_weights(model.as_ref(), &spec.to_metadata()?, &extra, output)?;
    Ok(ImportReport {
        tensors: state.tensors.len(),
        params: model.num_params(),
        source: state.source,
        format: state.format,
    })
}

fn describe(spec: &NetworkSpec) -> String {
    let mut text = format!("{} with {} classes", spec.name, spec.num_classes);
    if let Some(m) = spec.width_mult {
        text += &format!(" at width x{m}");
    }
    text
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
