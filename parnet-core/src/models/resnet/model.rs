//! The whole ResNet: stem, stages of residual blocks, global average pool, linear classifier.

use super::block::ResidualBlock;
use super::{ResNetConfig, Stem};
use crate::Param;
use crate::error::{Result, shape_error};
use crate::models::Network;
use crate::nn::{BatchNorm2d, Conv2d, Ctx, Init, Linear, Module, StateBuffer};
use crate::ops::activation::relu;
use crate::ops::conv2d::Conv2dParams;
use crate::ops::pool::{MaxPool2dParams, global_avg_pool, max_pool2d};
use crate::tensor::Tensor;

/// A ResNet with torchvision parameter names (`conv1`, `bn1`, `layer{s}.{i}.*`, `fc`).
pub struct ResNet {
    pub config: ResNetConfig,
    /// 7x7/2 pad 3 (ImageNet) or 3x3/1 pad 1 (CIFAR), no bias.
    pub conv1: Conv2d,
    pub bn1: BatchNorm2d,
    /// `layers[s]` is `layer{s+1}`.
    pub layers: Vec<Vec<ResidualBlock>>,
    pub fc: Linear,
}

impl ResNet {
    /// A freshly initialised model: PyTorch's default init (convs and the classifier
    /// U(±1/sqrt(fan_in)), BN γ = 1, β = 0), seeded; not torchvision's kaiming-normal.
    pub fn new(config: ResNetConfig, seed: u64) -> Result<ResNet> {
        config.validate()?;
        let init = Init::new(seed);
        let stem_width = config.widths[0];
        let (kernel, params) = match config.stem {
            Stem::ImageNet => (7, Conv2dParams::new(2, 3, 1)),
            Stem::Cifar => (3, Conv2dParams::new(1, 1, 1)),
        };
        let conv1 = Conv2d::new("conv1", 3, stem_width, kernel, params, false, init)?;
        let bn1 = BatchNorm2d::new("bn1", stem_width)?;
        let mut in_channels = stem_width;
        let mut layers = Vec::new();
        for (s, (&blocks, &planes)) in config.blocks.iter().zip(&config.widths).enumerate() {
            let mut stage = Vec::new();
            for i in 0..blocks {
                let stride = if s > 0 && i == 0 { 2 } else { 1 };
                let prefix = format!("layer{}.{i}", s + 1);
                let block =
                    ResidualBlock::new(&prefix, config.block, in_channels, planes, stride, init)?;
                in_channels = block.out_channels;
                stage.push(block);
            }
            layers.push(stage);
        }
        let fc = Linear::new("fc", in_channels, config.num_classes, init)?;
        Ok(ResNet {
            config,
            conv1,
            bn1,
            layers,
            fc,
        })
    }

    fn blocks(&self) -> impl Iterator<Item = &ResidualBlock> {
        self.layers.iter().flatten()
    }

    /// Logits `[N, classes]` for images `[N, 3, H, W]` (any `H, W >= 1`).
    pub fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        match x.shape().nchw() {
            Some((n, 3, h, w)) if n > 0 && h > 0 && w > 0 => {}
            _ => {
                return Err(shape_error(
                    "resnet",
                    "expected an input of shape [N, 3, H, W] with N, H, W > 0",
                    &[x.dims()],
                ));
            }
        }
        let mut y = relu(
            &self
                .bn1
                .forward(&self.conv1.forward(x, ctx.track_grad)?, ctx)?,
        );
        if self.config.stem == Stem::ImageNet {
            y = max_pool2d(&y, MaxPool2dParams::RESNET_STEM)?;
        }
        for block in self.blocks() {
            y = block.forward(&y, ctx)?;
        }
        let pooled = global_avg_pool(&y)?;
        let (n, c) = (pooled.dims()[0], pooled.dims()[1]);
        self.fc.forward(&pooled.reshape([n, c])?, ctx.track_grad)
    }

    /// Multiply-adds per image (convs, projections and the classifier) at `h x w`.
    pub fn macs_at(&self, h: usize, w: usize) -> usize {
        let mut size = self.conv1.out_size(h, w);
        let mut total = self.conv1.macs(size.0, size.1);
        if self.config.stem == Stem::ImageNet {
            let pool = MaxPool2dParams::RESNET_STEM;
            size = (pool.out_len(size.0), pool.out_len(size.1));
        }
        for block in self.blocks() {
            let (m, out) = block.macs(size);
            total += m;
            size = out;
        }
        total + self.fc.in_features * self.fc.out_features
    }

    /// Longest input-to-output path in conv and linear layers: the stem conv, each block's
    /// longest path (projection shortcuts run in parallel and do not lengthen it), the classifier.
    pub fn depth(&self) -> usize {
        1 + self.blocks().map(ResidualBlock::depth).sum::<usize>() + 1
    }
}

impl Module for ResNet {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        self.conv1.visit_params(f);
        self.bn1.visit_params(f);
        self.blocks().for_each(|b| b.visit_params(f));
        self.fc.visit_params(f);
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&StateBuffer)) {
        self.bn1.visit_buffers(f);
        self.blocks().for_each(|b| b.visit_buffers(f));
    }
}

impl Network for ResNet {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        ResNet::forward(self, x, ctx)
    }

    fn depth(&self) -> usize {
        ResNet::depth(self)
    }

    fn macs(&self, image_size: usize) -> usize {
        self.macs_at(image_size, image_size)
    }
}
