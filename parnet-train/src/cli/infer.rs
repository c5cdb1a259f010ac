//! `parnet infer`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use parnet_core::Tensor;
use parnet_core::io::{read_tensors, write_tensors};
use parnet_core::nn::Ctx;
use parnet_core::nn::state::NamedTensor;

use crate::model_io::{ModelSpec, load_model};

/// Reads `input` (N,3,H,W) from `input_path`, runs the model, writes `logits` (N,K) to
/// `output_path`. Returns the logits' shape.
pub fn infer_file(
    spec: &ModelSpec,
    weights: &Path,
    input_path: &Path,
    output_path: &Path,
    fused: bool,
) -> Result<Vec<usize>> {
    let (tensors, _) =
        read_tensors(input_path).with_context(|| format!("reading {}", input_path.display()))?;
    let input = tensors
        .into_iter()
        .find(|t| t.name == "input")
        .ok_or_else(|| anyhow!("{}: no tensor named `input`", input_path.display()))?;
    if input.shape.len() != 4 || input.shape[1] != 3 {
        bail!(
            "{}: `input` must have shape (N, 3, H, W), got {:?}",
            input_path.display(),
            input.shape
        );
    }
    let model = load_model(spec, weights, fused)?;
    let x = Tensor::from_vec(input.data, input.shape)?;
    let logits = model.forward(&x, Ctx::eval())?;
    let shape = logits.dims().to_vec();
    let out = NamedTensor {
        name: "logits".into(),
        shape: shape.clone(),
        data: logits.to_vec(),
        integer: false,
    };
    write_tensors(output_path, &[out], &HashMap::new())?;
    Ok(shape)
}
