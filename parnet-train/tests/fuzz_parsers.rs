//! Random and damaged bytes fed to every parser a user's file reaches here (safetensors headers
//! and tensors, checkpoint metadata, TOML configs): always an error, never a panic. The data
//! parsers (CIFAR binary, pack header, images) have the same tests in parnet-data's `fuzz.rs`.

mod common;

use std::collections::HashMap;
use std::path::Path;

use parnet_core::io::{read_metadata, read_tensors};
use parnet_train::checkpoint;
use parnet_train::config::TrainConfig;
use proptest::prelude::*;

/// A small valid checkpoint-like weights file, as bytes.
fn valid_weights_bytes(dir: &Path) -> Vec<u8> {
    let path = dir.join("w.safetensors");
    let model = common::tiny_parnet_cifar();
    common::save_model(model.as_ref(), &common::tiny_parnet_cifar_spec(), &path);
    std::fs::read(&path).unwrap()
}

fn every_reader(path: &Path) {
    let _ = read_tensors(path);
    let _ = read_metadata(path);
    if let Ok(file) = checkpoint::read(path) {
        let _ = file.position();
    }
    let _ = checkpoint::load_network(None, path, false);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn weight_readers_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        every_reader(&path);
    }

    #[test]
    fn weight_readers_never_panic_on_damaged_files(
        cut in 0.0f64..1.0,
        flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = valid_weights_bytes(dir.path());
        let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let flipped = !flips.is_empty();
        for (at, value) in flips {
            // Damage the header (where the parser's decisions are) more often than the data.
            let i = (at * header_end.min(bytes.len()) as f64) as usize;
            bytes[i] = value;
        }
        bytes.truncate((cut * bytes.len() as f64) as usize);
        let path = dir.path().join("x.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        every_reader(&path);
        if !flipped {
            prop_assert!(read_tensors(&path).is_err(), "a truncated file was accepted");
        }
    }

    #[test]
    fn checkpoint_metadata_of_any_value_is_an_error_not_a_panic(
        key in prop_oneof![Just("position"), Just("config"), Just("model"), Just("classes"),
                           Just("mean"), Just("std"), Just("image_size"), Just("width_mult")],
        value in ".{0,40}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let model = common::tiny_parnet_cifar();
        let mut md: HashMap<String, String> = common::tiny_parnet_cifar_spec().to_metadata().unwrap();
        md.insert(key.to_string(), value);
        parnet_train::checkpoint::save_weights(model.as_ref(), &md, &HashMap::new(), &path).unwrap();
        every_reader(&path);
    }

    #[test]
    fn config_parser_never_panics(text in ".{0,300}") {
        let _ = TrainConfig::from_toml(&text, "fuzz").map(|c| c.validate());
    }

    #[test]
    fn config_parser_never_panics_on_damaged_configs(at in 0.0f64..1.0, insert in ".{0,12}", cut in 0.0f64..1.0) {
        let mut text = TrainConfig::load(None).unwrap().to_toml().unwrap();
        let mut i = (at * text.len() as f64) as usize;
        while !text.is_char_boundary(i) { i -= 1; }
        text.insert_str(i, &insert);
        let mut end = (cut * text.len() as f64) as usize;
        while !text.is_char_boundary(end) { end -= 1; }
        text.truncate(end.max(i));
        let _ = TrainConfig::from_toml(&text, "fuzz").map(|c| c.validate());
    }
}
