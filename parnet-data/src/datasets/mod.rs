//! Dataset implementations and format detection.

pub mod cifar;
pub mod folder;
pub mod open;
pub mod packed;
pub mod synthetic;
