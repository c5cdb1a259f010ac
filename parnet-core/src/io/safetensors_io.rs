//! safetensors reading and writing, and loading a [`Module`]'s parameters and buffers by name.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{CoreError, Result};
use crate::nn::Module;

/// A tensor read from or written to a file. Integer tensors (`integer`) are stored as int64.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    pub integer: bool,
}

fn weights_err(path: &Path, detail: impl Into<String>) -> CoreError {
    CoreError::Weights {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then
/// renamed over the target. A crash leaves either the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |p: &Path, source| CoreError::Io {
        path: p.to_path_buf(),
        source,
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
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
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

fn f16_to_f32(h: u16) -> f32 {
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
    let bytes = std::fs::read(path).map_err(|source| CoreError::Io {
        path: path.to_path_buf(),
        source,
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

/// The first [`LISTED_NAMES`] of `names` joined by `sep`, then how many more there are.
fn first_few(names: &[impl AsRef<str>], sep: &str) -> String {
    let shown: Vec<&str> = names.iter().take(LISTED_NAMES).map(AsRef::as_ref).collect();
    let mut text = shown.join(sep);
    if names.len() > LISTED_NAMES {
        text += &format!("{sep}... and {} more", names.len() - LISTED_NAMES);
    }
    text
}

/// How many tensor names a mismatch error lists per kind.
const LISTED_NAMES: usize = 8;

/// Loads `module` from tensors already read (`path` names them in errors); the same checks as
/// [`load_module`].
pub fn load_module_tensors(
    module: &dyn Module,
    tensors: &[NamedTensor],
    path: &Path,
) -> Result<()> {
    let mut by_name: BTreeMap<&str, &NamedTensor> =
        tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut expected: Vec<(String, Vec<usize>)> = Vec::new();
    module.visit_params(&mut |p| expected.push((p.name().to_string(), p.shape().dims().to_vec())));
    module.visit_buffers(&mut |b| expected.push((b.name.clone(), b.shape.dims().to_vec())));

    let mut missing = Vec::new();
    let mut misshaped = Vec::new();
    for (name, shape) in &expected {
        match by_name.remove(name.as_str()) {
            None => missing.push(name.clone()),
            Some(t) if &t.shape != shape => {
                misshaped.push(format!("{name}: file {:?}, model {:?}", t.shape, shape))
            }
            Some(_) => {}
        }
    }
    let unexpected: Vec<&str> = by_name.keys().copied().collect();
    if !(missing.is_empty() && misshaped.is_empty() && unexpected.is_empty()) {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!(
                "{} missing: {}",
                missing.len(),
                first_few(&missing, ", ")
            ));
        }
        if !unexpected.is_empty() {
            parts.push(format!(
                "{} unexpected: {}",
                unexpected.len(),
                first_few(&unexpected, ", ")
            ));
        }
        if !misshaped.is_empty() {
            parts.push(format!(
                "{} with the wrong shape: {}",
                misshaped.len(),
                first_few(&misshaped, "; ")
            ));
        }
        return Err(weights_err(
            path,
            format!("does not match the model: {}", parts.join("; ")),
        ));
    }
    let lookup: HashMap<&str, &NamedTensor> =
        tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut result = Ok(());
    module.visit_params(&mut |p| {
        if let Err(e) = p.set(&lookup[p.name()].data) {
            result = Err(e);
        }
    });
    module.visit_buffers(&mut |b| b.set(&lookup[b.name.as_str()].data));
    result
}

/// The module's parameters and buffers as named tensors (what [`save_module`] writes).
pub fn module_tensors(module: &dyn Module) -> Vec<NamedTensor> {
    let mut tensors = Vec::new();
    module.visit_params(&mut |p| {
        tensors.push(NamedTensor {
            name: p.name().to_string(),
            shape: p.shape().dims().to_vec(),
            data: p.to_vec(),
            integer: false,
        })
    });
    module.visit_buffers(&mut |b| {
        tensors.push(NamedTensor {
            name: b.name.clone(),
            shape: b.shape.dims().to_vec(),
            data: b.get(),
            integer: b.integer,
        })
    });
    tensors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::parnet::{Layout, ParNet, ParNetConfig};
    use crate::testing::perturb_batch_norms;

    fn tiny(seed: u64) -> ParNet {
        ParNet::new(
            ParNetConfig::custom("t", Layout::Cifar, [8, 16, 16, 24], 3).unwrap(),
            seed,
        )
        .unwrap()
    }

    #[test]
    fn save_then_load_restores_every_parameter_and_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let a = tiny(1);
        perturb_batch_norms(&a, 2);
        let meta = HashMap::from([("model".to_string(), "t".to_string())]);
        save_module(&a, &path, &meta).unwrap();
        let b = tiny(9);
        assert_ne!(module_tensors(&a), module_tensors(&b));
        assert_eq!(load_module(&b, &path).unwrap(), meta);
        assert_eq!(module_tensors(&a), module_tensors(&b));
        let (tensors, _) = read_tensors(&path).unwrap();
        let counter = tensors
            .iter()
            .find(|t| t.name.ends_with("num_batches_tracked"))
            .unwrap();
        assert!(counter.integer && counter.shape.is_empty());
    }

    #[test]
    fn a_mismatched_file_is_refused_with_every_problem_listed_and_nothing_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let mut tensors = module_tensors(&tiny(1));
        let missing = tensors.remove(0).name;
        let reshaped = tensors[3].name.clone();
        tensors[3].shape = vec![tensors[3].data.len()];
        tensors[3].shape.push(1);
        tensors.push(NamedTensor {
            name: "extra.weight".into(),
            shape: vec![2],
            data: vec![1.0, 2.0],
            integer: false,
        });
        write_tensors(&path, &tensors, &HashMap::new()).unwrap();
        let target = tiny(5);
        let before = module_tensors(&target);
        let err = load_module(&target, &path).unwrap_err().to_string();
        for needle in [
            missing.as_str(),
            reshaped.as_str(),
            "extra.weight",
            "1 missing",
            "1 unexpected",
            "1 with the wrong shape",
        ] {
            assert!(err.contains(needle), "{needle:?} not in {err}");
        }
        assert!(err.contains(path.to_str().unwrap()));
        assert_eq!(module_tensors(&target), before);
    }

    #[test]
    fn corrupt_and_missing_files_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        std::fs::write(&path, b"not a safetensors file at all").unwrap();
        let err = read_tensors(&path).unwrap_err().to_string();
        assert!(err.contains("bad.safetensors"), "{err}");
        assert!(read_tensors(&dir.path().join("none.safetensors")).is_err());
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn mismatch_lists_are_cut_after_a_few_names() {
        let names: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        assert_eq!(first_few(&names[..2], ", "), "t0, t1");
        let listed = first_few(&names, ", ");
        assert!(listed.starts_with("t0, t1, "), "{listed}");
        assert!(listed.ends_with("t7, ... and 12 more"), "{listed}");
    }
}
