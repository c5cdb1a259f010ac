//! The whole ResNet: stem, stages of residual blocks, global average pool, linear classifier; its
//! deploy form (every BN folded into its conv) and its layer table.

use super::block::{ResidualBlock, conv_layer_info, lower_unit, resnet_conv_bn};
use super::{ResNetConfig, Stem};
use crate::Param;
use crate::error::{Result, shape_error};
use crate::exec::graph::{Epilogue, GraphBuilder, ValueId};
use crate::kernels::activation::Activation;
use crate::models::Network;
use crate::models::conv_unit::ConvUnit;
use crate::models::info::{LayerInfo, ModelInfo};
use crate::models::parnet::model::lower_head;
use crate::nn::{Ctx, Init, Linear, Module, StateBuffer};
use crate::ops::activation::relu;
use crate::ops::pool::{MaxPool2dParams, global_avg_pool, max_pool2d};
use crate::tensor::Tensor;

/// A ResNet with torchvision parameter names (`conv1`, `bn1`, `layer{s}.{i}.*`, `fc`); in the
/// deploy form the BNs are folded into the convs (`conv1.bias`, ...).
pub struct ResNet {
    pub config: ResNetConfig,
    /// `conv1` + `bn1`: 7x7/2 pad 3 (ImageNet) or 3x3/1 pad 1 (CIFAR), no bias.
    pub stem: ConvUnit,
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
        let (kernel, stride) = match config.stem {
            Stem::ImageNet => (7, 2),
            Stem::Cifar => (3, 1),
        };
        let stem = resnet_conv_bn("conv1", "bn1", (3, stem_width, kernel, stride), init)?;
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
            stem,
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
        let mut y = relu(&self.stem.forward(x, ctx)?);
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

    /// The deploy form: every BN folded into its conv (eval statistics).
    pub fn deploy(&self) -> Result<ResNet> {
        Ok(ResNet {
            config: self.config.clone(),
            stem: self.stem.deploy()?,
            layers: self
                .layers
                .iter()
                .map(|stage| stage.iter().map(ResidualBlock::deploy).collect())
                .collect::<Result<_>>()?,
            fc: self.fc.deep_clone(),
        })
    }

    /// Every conv, the stem pool, each residual sum and the classifier, for an `h x w` input.
    /// Projection shortcuts run beside the main path, so the longest path is the stem conv, each
    /// block's main path and the classifier.
    pub fn info_at(&self, h: usize, w: usize) -> ModelInfo {
        let mut layers = Vec::new();
        let (stem, mut size) = conv_layer_info(&self.stem, 0, (h, w));
        layers.push(LayerInfo {
            inputs: Vec::new(),
            ..stem
        });
        if self.config.stem == Stem::ImageNet {
            let pool = MaxPool2dParams::RESNET_STEM;
            size = (pool.out_len(size.0), pool.out_len(size.1));
            layers.push(LayerInfo {
                name: "maxpool".into(),
                out_shape: [self.config.widths[0], size.0, size.1],
                params_train: 0,
                params_fused: 0,
                macs_train: 0,
                macs_fused: 0,
                inputs: vec![0],
                counts_for_depth: false,
            });
        }
        let mut prev = layers.len() - 1;
        for block in self.blocks() {
            prev = block.push_layers(&mut layers, prev, size);
            let [_, ho, wo] = layers[prev].out_shape;
            size = (ho, wo);
        }
        let (features, classes) = (self.fc.in_features, self.fc.out_features);
        layers.push(LayerInfo::classifier("fc", features, classes, prev));
        ModelInfo::from_layers(h, layers)
    }
}

impl Module for ResNet {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        self.stem.visit_params(f);
        self.blocks().for_each(|b| b.visit_params(f));
        self.fc.visit_params(f);
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&StateBuffer)) {
        self.stem.visit_buffers(f);
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

    fn info(&self, image_size: usize) -> ModelInfo {
        self.info_at(image_size, image_size)
    }

    fn is_deploy(&self) -> bool {
        self.stem.is_deploy()
    }

    fn default_image_size(&self) -> usize {
        match self.config.stem {
            Stem::ImageNet => 224,
            Stem::Cifar => 32,
        }
    }

    fn deploy(&self) -> Result<Box<dyn Network>> {
        Ok(Box::new(ResNet::deploy(self)?))
    }

    fn lower(&self, g: &mut GraphBuilder, x: ValueId) -> Result<ValueId> {
        let mut y = lower_unit(g, x, &self.stem, Epilogue::activation(Activation::Relu))?;
        if self.config.stem == Stem::ImageNet {
            let p = MaxPool2dParams::RESNET_STEM;
            y = g.max_pool(y, p.kernel, p.stride, p.padding)?;
        }
        for block in self.blocks() {
            y = block.lower(g, y)?;
        }
        lower_head(g, y, &self.fc)
    }
}
