//! Weights files: a model's state written with `io::save_module` and read back by name, the
//! refusals of mismatched, corrupt and missing files, and atomic writes. (These tests use a real
//! ParNet, which sits above `io`, so they live here.)

use std::collections::HashMap;

use parnet_core::io::{
    load_module, read_metadata, read_tensors, save_module, write_atomic, write_tensors,
};
use parnet_core::models::parnet::{Layout, ParNet, ParNetConfig};
use parnet_core::nn::state::{NamedTensor, module_tensors};
use parnet_core::nn::testing::perturb_batch_norms;

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
    assert_eq!(read_metadata(&path).unwrap(), meta);
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
    let err = read_metadata(&path).unwrap_err().to_string();
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
