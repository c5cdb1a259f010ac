//! Models built from the engine's layers, and the [`Network`] interface the training loop and the
//! benchmarks use for all of them.

pub mod parnet;
pub mod parnet_sweep;
pub mod registry;
pub mod resnet;
pub mod sequential_parnet;

pub use registry::{NetworkSpec, network_from_metadata};

use crate::Tensor;
use crate::error::Result;
use crate::nn::{Ctx, Module};

/// An image classifier: `[N, 3, H, W]` images to `[N, classes]` logits.
pub trait Network: Module + Send + Sync {
    /// A short name (`parnet-cifar`, `resnet-20`, ...).
    fn name(&self) -> &str;
    fn num_classes(&self) -> usize;
    fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor>;
    /// Length of the longest input-to-output path in layers (convs and linear layers; spec 4).
    fn depth(&self) -> usize;
    /// Multiply-adds per image at a square `image_size` input (convs and linear layers).
    fn macs(&self, image_size: usize) -> usize;
    /// Input height and width must be multiples of this.
    fn input_multiple(&self) -> usize {
        1
    }
    /// The deploy form (structurally reparameterized); networks without one say so.
    fn deploy(&self) -> Result<Box<dyn Network>> {
        Err(crate::error::invalid(
            "model",
            format!("{} has no reparameterized deploy form", self.name()),
        ))
    }
}

impl Network for parnet::ParNet {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        parnet::ParNet::forward(self, x, ctx)
    }

    fn depth(&self) -> usize {
        self.info(self.config.default_image_size()).depth
    }

    fn input_multiple(&self) -> usize {
        self.config.size_multiple()
    }

    fn deploy(&self) -> Result<Box<dyn Network>> {
        Ok(Box::new(self.fused()?))
    }

    fn macs(&self, image_size: usize) -> usize {
        let info = self.info(image_size);
        if self.is_fused() {
            info.macs_fused
        } else {
            info.macs_train
        }
    }
}
