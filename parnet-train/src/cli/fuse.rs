//! `parnet fuse`.

use std::path::Path;

use anyhow::Result;
use parnet_core::io::save_module;
use parnet_core::nn::Module;

use crate::checkpoint::DATA_IMAGES_KEY;
use crate::model_io::{ModelSpec, load_model_and_metadata, weights_metadata};

/// Metadata of a training checkpoint that stays true of its deploy weights: the data
/// normalisation and the run that trained them (so `parnet eval`, also with `--held-out`, works
/// on the deploy file as on the checkpoint).
const CARRIED_METADATA: [&str; 5] = ["mean", "std", "image_size", "config", DATA_IMAGES_KEY];

/// Loads training weights (plain, or a training checkpoint), reparameterizes, writes deploy
/// weights (atomically). Returns the parameter counts before and after.
pub fn fuse_weights(spec: &ModelSpec, weights: &Path, output: &Path) -> Result<(usize, usize)> {
    let (model, source_metadata) = load_model_and_metadata(spec, weights, false)?;
    let fused = model.fused()?;
    let mut metadata = weights_metadata(&fused);
    for key in CARRIED_METADATA {
        if let Some(value) = source_metadata.get(key) {
            metadata.insert(key.to_string(), value.clone());
        }
    }
    save_module(&fused, output, &metadata)?;
    Ok((model.num_params(), fused.num_params()))
}
