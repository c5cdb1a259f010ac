//! PyTorch checkpoints (`torch.save`, the zip format of PyTorch 1.6+ and the legacy pickle
//! stream before it), read with the `pytorch-reader` crate into [`NamedTensor`]s.
//!
//! Accepted layouts: a bare state dict, or timm's training checkpoint, a dict whose
//! `state_dict` (and `state_dict_ema`, the EMA weights) hold the state dict next to other
//! entries (epoch, optimizer, ...). Keys of `nn.DataParallel` / DDP saves (`module.` prefix)
//! lose the prefix.

use std::collections::BTreeSet;
use std::path::Path;

use pytorch_reader::{DType, PytorchReader};

use crate::error::{CoreError, Result};
use crate::nn::state::NamedTensor;

/// Which weights of a timm checkpoint to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointWeights {
    /// `state_dict` (or the whole file, when it is a bare state dict).
    Raw,
    /// `state_dict_ema`, the exponential moving average that timm validates and that the
    /// official ParNet results use.
    Ema,
}

/// The tensors of one state dict in a PyTorch checkpoint.
#[derive(Debug)]
pub struct PytorchStateDict {
    /// Sorted by name, `module.` prefixes removed, converted to f32 (`integer` for int tensors
    /// such as `num_batches_tracked`).
    pub tensors: Vec<NamedTensor>,
    /// Where in the file they were: `state_dict`, `state_dict_ema` or `the whole file`.
    pub source: &'static str,
    /// `zip` or `legacy` (or another container the reader recognised).
    pub format: String,
}

fn checkpoint_err(path: &Path, detail: impl Into<String>) -> CoreError {
    CoreError::Weights {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Reads the state dict that `which` selects from the PyTorch checkpoint at `path`.
pub fn read_pytorch_state_dict(path: &Path, which: CheckpointWeights) -> Result<PytorchStateDict> {
    if !path.is_file() {
        return Err(CoreError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let reader = PytorchReader::new(path).map_err(|e| {
        checkpoint_err(
            path,
            format!("not a readable PyTorch checkpoint (torch.save zip or legacy format): {e}"),
        )
    })?;
    let format = format!("{:?}", reader.metadata().format_type).to_lowercase();
    let names: Vec<String> = reader.keys();
    let top_level: BTreeSet<&str> = names
        .iter()
        .map(|n| n.split('.').next().unwrap_or(n))
        .collect();
    let (prefix, source) = match which {
        CheckpointWeights::Ema if top_level.contains("state_dict_ema") => {
            ("state_dict_ema.", "state_dict_ema")
        }
        CheckpointWeights::Ema => {
            return Err(checkpoint_err(
                path,
                format!(
                    "holds no EMA weights (`state_dict_ema`) to take with --ema; its top-level entries with tensors: {}",
                    listed(&top_level)
                ),
            ));
        }
        CheckpointWeights::Raw if top_level.contains("state_dict") => ("state_dict.", "state_dict"),
        CheckpointWeights::Raw => ("", "the whole file"),
    };
    let mut tensors = Vec::new();
    for name in names.iter().filter(|n| n.starts_with(prefix)) {
        let tensor = reader.get(name).expect("a name the reader listed");
        let key = name[prefix.len()..]
            .strip_prefix("module.")
            .unwrap_or(&name[prefix.len()..]);
        let bytes = tensor
            .read()
            .map_err(|e| checkpoint_err(path, format!("tensor {name}: {e}")))?;
        let (data, integer) = to_f32(tensor.dtype(), &bytes).ok_or_else(|| {
            checkpoint_err(
                path,
                format!("tensor {name}: unsupported dtype {:?}", tensor.dtype()),
            )
        })?;
        tensors.push(NamedTensor {
            name: key.to_string(),
            shape: tensor.shape().to_vec(),
            data,
            integer,
        });
    }
    if tensors.is_empty() {
        return Err(checkpoint_err(path, "holds no tensors"));
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = tensors.windows(2).find(|p| p[0].name == p[1].name) {
        return Err(checkpoint_err(
            path,
            format!(
                "holds {} both with and without the `module.` prefix",
                pair[0].name
            ),
        ));
    }
    Ok(PytorchStateDict {
        tensors,
        source,
        format,
    })
}

fn listed(names: &BTreeSet<&str>) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

/// The elements of `bytes` (native-endian, row-major) as f32, and whether they are integers.
fn to_f32(dtype: DType, bytes: &[u8]) -> Option<(Vec<f32>, bool)> {
    fn each<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
        bytes
            .chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunks of N")))
            .collect()
    }
    Some(match dtype {
        DType::F32 => (each(bytes, f32::from_ne_bytes), false),
        DType::F64 => (each(bytes, |b| f64::from_ne_bytes(b) as f32), false),
        DType::BF16 => (
            each(bytes, |b| {
                f32::from_bits((u16::from_ne_bytes(b) as u32) << 16)
            }),
            false,
        ),
        DType::F16 => (
            each(bytes, |b| {
                super::safetensors_io::f16_to_f32(u16::from_ne_bytes(b))
            }),
            false,
        ),
        DType::I64 => (each(bytes, |b| i64::from_ne_bytes(b) as f32), true),
        DType::I32 => (each(bytes, |b| i32::from_ne_bytes(b) as f32), true),
        DType::I16 => (each(bytes, |b| i16::from_ne_bytes(b) as f32), true),
        DType::I8 => (each(bytes, |b: [u8; 1]| b[0] as i8 as f32), true),
        DType::U8 | DType::Bool => (each(bytes, |b: [u8; 1]| b[0] as f32), true),
        DType::U16 | DType::U32 | DType::U64 => return None,
    })
}
