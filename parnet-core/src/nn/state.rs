//! A module's state as named tensors (its parameters and buffers under their official names),
//! and loading it back by name with every mismatch listed. Files are `io`'s business.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::Module;
use crate::error::{CoreError, Result};

/// A tensor read from or written to a file. Integer tensors (`integer`) are stored as int64.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    pub integer: bool,
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

/// Loads every parameter and buffer of `module` from `tensors` by name (`path`, where they were
/// read from, names them in errors). The tensors must be exactly the module's, with the module's
/// shapes; otherwise nothing is changed and the error lists every missing, unexpected and
/// mis-shaped tensor.
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
        return Err(CoreError::Weights {
            path: path.to_path_buf(),
            detail: format!("does not match the model: {}", parts.join("; ")),
        });
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

/// The module's parameters and buffers as named tensors (what `io::save_module` writes).
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

    #[test]
    fn mismatch_lists_are_cut_after_a_few_names() {
        let names: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        assert_eq!(first_few(&names[..2], ", "), "t0, t1");
        let listed = first_few(&names, ", ");
        assert!(listed.starts_with("t0, t1, "), "{listed}");
        assert!(listed.ends_with("t7, ... and 12 more"), "{listed}");
    }
}
