//! ONNX export: [`export::export_onnx`] writes a network's deploy form with the messages of
//! [`proto`] (the needed subset of `onnx.proto`, encoded with prost).

pub mod export;
pub mod proto;

pub use export::{ONNX_OPSET, OnnxBatch, OnnxExport, export_onnx, onnx_model};
