//! Weights and tensors in safetensors files, written atomically (temporary file, then rename).
//! What a module's state is ([`crate::nn::state`]) is decided in `nn`; this is the file format.
//! PyTorch checkpoints are read (for `parnet import`), never written.

mod pytorch;
mod safetensors_io;

pub use pytorch::{CheckpointWeights, PytorchStateDict, read_pytorch_state_dict};

pub use safetensors_io::{
    load_module, read_metadata, read_tensors, save_module, write_atomic, write_tensors,
};
