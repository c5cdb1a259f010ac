//! Weights and tensors in safetensors files, written atomically (temporary file, then rename).

mod safetensors_io;

pub use safetensors_io::{
    NamedTensor, load_module, load_module_tensors, module_tensors, read_tensors, save_module,
    write_atomic, write_tensors,
};
