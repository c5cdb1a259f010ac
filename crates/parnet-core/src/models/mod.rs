//! Models built from the engine's layers, and the [`Network`] interface the training loop and the
//! benchmarks use for all of them.

pub mod parnet;
pub mod parnet_sweep;
pub mod resnet;
pub mod sequential_parnet;

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

    fn macs(&self, image_size: usize) -> usize {
        let info = self.info(image_size);
        if self.is_fused() {
            info.macs_fused
        } else {
            info.macs_train
        }
    }
}
