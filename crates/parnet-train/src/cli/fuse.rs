//! `parnet fuse`.

use std::path::Path;

use anyhow::Result;
use parnet_core::nn::Module;

use crate::model_io::{ModelSpec, load_model, save_model};

/// Loads training weights, reparameterizes, writes deploy weights. Returns the parameter counts
/// before and after.
pub fn fuse_weights(spec: &ModelSpec, weights: &Path, output: &Path) -> Result<(usize, usize)> {
    let model = load_model(spec, weights, false)?;
    let fused = model.fused()?;
    save_model(&fused, output)?;
    Ok((model.num_params(), fused.num_params()))
}
