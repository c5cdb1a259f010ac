//! `parnet fuse`: training weights (or a training checkpoint) to the deploy form of any network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use parnet_core::models::NetworkSpec;

use super::args::{ModelArgs, check_output_path};
use crate::checkpoint::{DATA_IMAGES_KEY, load_network, save_weights};

/// Options of `parnet fuse`.
#[derive(Args, Debug, Clone)]
pub struct FuseArgs {
    /// The network (default: the one the weights file records).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Training weights or a training checkpoint.
    #[arg(long)]
    pub weights: PathBuf,
    /// Where to write the deploy weights.
    #[arg(long)]
    pub output: PathBuf,
}

/// Runs `parnet fuse`.
pub fn run(args: &FuseArgs) -> Result<()> {
    check_output_path(&args.output, &[&args.weights])?;
    let spec = args.model.spec_for_file(&args.weights)?;
    let (before, after) = fuse_weights(spec.as_ref(), &args.weights, &args.output)?;
    crate::say!(
        "fused {before} -> {after} parameters; wrote {}",
        args.output.display()
    );
    Ok(())
}

/// Metadata of a training checkpoint that stays true of its deploy weights: the data
/// normalisation, the evaluation crop and origin of imported weights, and the run that trained
/// them (so `parnet eval`, also with `--held-out`, works on the deploy file as on the checkpoint).
const CARRIED_METADATA: [&str; 7] = [
    "mean",
    "std",
    "image_size",
    "crop_pct",
    "imported_from",
    "config",
    DATA_IMAGES_KEY,
];

/// Loads training weights (plain, or a training checkpoint) of `spec` (or of the network the
/// file records), builds the deploy form ([`parnet_core::models::Network::deploy`]), writes it
/// (atomically). Returns the parameter counts before and after.
pub fn fuse_weights(
    spec: Option<&NetworkSpec>,
    weights: &Path,
    output: &Path,
) -> Result<(usize, usize)> {
    let loaded = load_network(spec, weights, false)?;
    let fused = loaded.model.deploy()?;
    let carried: HashMap<String, String> = CARRIED_METADATA
        .iter()
        .filter_map(|&k| Some((k.to_string(), loaded.file_metadata.get(k)?.clone())))
        .collect();
    save_weights(fused.as_ref(), &loaded.model_metadata, &carried, output)?;
    Ok((loaded.model.num_params(), fused.num_params()))
}
