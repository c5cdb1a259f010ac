//! Weights and tensors in safetensors files, written atomically (temporary file, then rename).
//! What a module's state is ([`crate::nn::state`]) is decided in `nn`; this is the file format.

mod safetensors_io;

pub use safetensors_io::{
    load_module, read_metadata, read_tensors, save_module, write_atomic, write_tensors,
};
