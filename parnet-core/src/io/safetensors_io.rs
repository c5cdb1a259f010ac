//! safetensors reading and writing (atomically), and a [`Module`]'s state to and from a file.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{CoreError, Result};
use crate::nn::Module;
use crate::nn::state::{NamedTensor, load_module_tensors, module_tensors};

fn weights_err(path: &Path, detail: impl Into<String>) -> CoreError {
    CoreError::Weights {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then
/// renamed over the target. A crash leaves either the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // Errors name the file being written, not its temporary stand-in.
    let io_err = |error| CoreError::Io {
        path: path.to_path_buf(),
        error,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| weights_err(path, "not a file path"))?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io_err)?;
        f.write_all(bytes).map_err(io_err)?;
        f.sync_all().map_err(io_err)?;
        std::fs::rename(&tmp, path).map_err(io_err)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes tensors (f32, or int64 where `integer`) and string metadata to `path` atomically.
pub fn write_tensors(
    path: &Path,
    tensors: &[NamedTensor],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| {
            if t.integer {
                t.data
                    .iter()
                    .flat_map(|&v| (v as i64).to_le_bytes())
                    .collect()
            } else {
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect()
            }
        })
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            let dtype = if t.integer { Dtype::I64 } else { Dtype::F32 };
            TensorView::new(dtype, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| weights_err(path, format!("tensor {}: {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = if metadata.is_empty() {
        None
    } else {
        Some(metadata.clone())
    };
    let out = safetensors::serialize(views, meta).map_err(|e| weights_err(path, e.to_string()))?;
    write_atomic(path, &out)
}

fn to_f32(path: &Path, name: &str, view: &TensorView<'_>) -> Result<(Vec<f32>, bool)> {
    let d = view.data();
    let chunks = |n: usize| d.chunks_exact(n);
    Ok(match view.dtype() {
        Dtype::F32 => (
            chunks(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            false,
        ),
        Dtype::F64 => (
            chunks(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            false,
        ),
        Dtype::F16 => (
            chunks(2)
                .map(|c| f16_to_f32(u16::from_le_bytes(c.try_into().unwrap())))
                .collect(),
            false,
        ),
        Dtype::BF16 => (
            chunks(2)
                .map(|c| f32::from_bits((u16::from_le_bytes(c.try_into().unwrap()) as u32) << 16))
                .collect(),
            false,
        ),
        Dtype::I64 => (
            chunks(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            true,
        ),
        Dtype::I32 => (
            chunks(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            true,
        ),
        other => {
            return Err(weights_err(
                path,
                format!("tensor {name}: unsupported dtype {other:?}"),
            ));
        }
    })
}

pub(super) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = frac;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((f & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// Reads every tensor (converted to f32) and the metadata of a safetensors file.
pub fn read_tensors(path: &Path) -> Result<(Vec<NamedTensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|error| CoreError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| weights_err(path, format!("not a valid safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| weights_err(path, format!("not a valid safetensors file: {e}")))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let (data, integer) = to_f32(path, &name, &view)?;
        out.push(NamedTensor {
            name,
            shape: view.shape().to_vec(),
            data,
            integer,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// The metadata of a safetensors file, reading only its header.
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>> {
    use std::io::Read;
    let io_err = |error| CoreError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| {
        weights_err(
            path,
            "not a valid safetensors file: shorter than its header",
        )
    })?;
    let len = u64::from_le_bytes(len);
    let file_len = file.metadata().map_err(io_err)?.len();
    if len > file_len.saturating_sub(8) || len > 100 << 20 {
        return Err(weights_err(
            path,
            format!("not a valid safetensors file: a header of {len} bytes"),
        ));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(io_err)?;
    let bad =
        |e: serde_json::Error| weights_err(path, format!("not a valid safetensors header: {e}"));
    let mut header: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(bad)?;
    match header.remove("__metadata__") {
        None => Ok(HashMap::new()),
        Some(md) => serde_json::from_value(md).map_err(bad),
    }
}

/// Saves every parameter and state buffer of `module` under its name.
pub fn save_module(
    module: &dyn Module,
    path: &Path,
    metadata: &HashMap<String, String>,
) -> Result<()> {
    write_tensors(path, &module_tensors(module), metadata)
}

/// Loads every parameter and buffer of `module` from `path` by name. The file must hold exactly
/// the module's tensors with the module's shapes; otherwise nothing is changed and the error lists
/// every missing, unexpected and mis-shaped tensor. Returns the file's metadata.
pub fn load_module(module: &dyn Module, path: &Path) -> Result<HashMap<String, String>> {
    let (tensors, meta) = read_tensors(path)?;
    load_module_tensors(module, &tensors, path)?;
    Ok(meta)
}
