//! The deep baselines: ResNet-18/34/50 in the torchvision layout (He et al. 2016, torchvision's
//! `resnet.py`, Bottleneck "v1.5" with the stride on the 3x3 conv) and the CIFAR ResNet-20/56 of
//! He et al. 2016 section 4.2. (The registry, `models::registry`, builds them by name.)
//!
//! - ImageNet stem: 7x7/2 conv (64) + BN + ReLU + 3x3/2 max pool (padding 1); four stages of
//!   widths 64/128/256/512 (x4 output for the bottleneck), the first block of stages 2-4 with
//!   stride 2.
//! - CIFAR stem: 3x3 conv (16) + BN + ReLU; three stages of `n` basic blocks with widths
//!   16/32/64, the first block of stages 2 and 3 with stride 2. Where the shape changes the
//!   shortcut is a projection, 1x1 conv + BN (option B); elsewhere the identity. `n = 3` gives
//!   ResNet-20 (272,474 parameters with 10 classes) and `n = 9` ResNet-56 (855,770): the counts
//!   of the paper's option-B networks follow from this definition without adjustment.
//! - Head: global average pool, linear layer (`fc`).
//!
//! Initialisation is PyTorch's default (see [`ResNet::new`]), the same as the ParNet models.

mod block;
mod model;

pub use block::ResidualBlock;
pub use model::ResNet;

use crate::error::{Result, invalid};

/// Which residual block a ResNet is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3x3 convs (ResNet-18/34 and the CIFAR ResNets).
    Basic,
    /// 1x1 -> 3x3 (stride) -> 1x1 (x4 channels) (ResNet-50).
    Bottleneck,
}

impl BlockKind {
    /// Output channels per unit of stage width.
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// The stem (and with it the stage layout) of a ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stem {
    /// 7x7/2 conv + BN + ReLU + 3x3/2 max pool.
    ImageNet,
    /// 3x3/1 conv + BN + ReLU.
    Cifar,
}

/// Everything that defines a ResNet.
#[derive(Clone, Debug, PartialEq)]
pub struct ResNetConfig {
    pub name: String,
    pub stem: Stem,
    pub block: BlockKind,
    /// Blocks per stage.
    pub blocks: Vec<usize>,
    /// Stage widths (`planes`); the stem has `widths[0]` channels.
    pub widths: Vec<usize>,
    pub num_classes: usize,
}

/// The ResNet names accepted by [`ResNetConfig::from_name`].
pub const RESNET_VARIANTS: [&str; 5] = [
    "resnet-18",
    "resnet-34",
    "resnet-50",
    "resnet-20",
    "resnet-56",
];

/// The deep baselines of the study: the ResNets and the sequential ParNet.
pub const BASELINES: [&str; 6] = [
    "resnet-18",
    "resnet-34",
    "resnet-50",
    "resnet-20",
    "resnet-56",
    "sequential-parnet-cifar",
];

impl ResNetConfig {
    /// A named ResNet with `num_classes` outputs.
    pub fn from_name(name: &str, num_classes: usize) -> Result<ResNetConfig> {
        let imagenet = vec![64, 128, 256, 512];
        let cifar = vec![16, 32, 64];
        let (stem, block, blocks, widths) = match name {
            "resnet-18" => (Stem::ImageNet, BlockKind::Basic, vec![2, 2, 2, 2], imagenet),
            "resnet-34" => (Stem::ImageNet, BlockKind::Basic, vec![3, 4, 6, 3], imagenet),
            "resnet-50" => (
                Stem::ImageNet,
                BlockKind::Bottleneck,
                vec![3, 4, 6, 3],
                imagenet,
            ),
            "resnet-20" => (Stem::Cifar, BlockKind::Basic, vec![3; 3], cifar),
            "resnet-56" => (Stem::Cifar, BlockKind::Basic, vec![9; 3], cifar),
            other => {
                return Err(invalid(
                    "model",
                    format!(
                        "unknown ResNet {other:?}; known: {}",
                        RESNET_VARIANTS.join(", ")
                    ),
                ));
            }
        };
        let config = ResNetConfig {
            name: name.to_string(),
            stem,
            block,
            blocks,
            widths,
            num_classes,
        };
        config.validate()?;
        Ok(config)
    }

    /// Rejects empty or zero-sized layouts.
    pub fn validate(&self) -> Result<()> {
        if self.num_classes == 0 {
            return Err(invalid("model", "the class count must be positive"));
        }
        if self.blocks.is_empty()
            || self.blocks.len() != self.widths.len()
            || self.blocks.contains(&0)
            || self.widths.contains(&0)
        {
            return Err(invalid(
                "model",
                format!(
                    "{}: blocks {:?} and widths {:?} must be non-empty, of equal length and positive",
                    self.name, self.blocks, self.widths
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
