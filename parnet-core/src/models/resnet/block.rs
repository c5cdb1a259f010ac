//! Residual blocks in the torchvision layout: `BasicBlock` (two 3x3 convs) and `Bottleneck`
//! (1x1, 3x3, 1x1 with expansion 4 and the stride on the 3x3, torchvision "v1.5"), each with an
//! optional projection shortcut `downsample` (1x1 conv with the block's stride + BN).

use super::BlockKind;
use crate::Param;
use crate::error::Result;
use crate::exec::graph::{Epilogue, GraphBuilder, Residual, ValueId};
use crate::kernels::activation::Activation;
use crate::models::conv_unit::ConvUnit;
use crate::models::info::LayerInfo;
use crate::models::parnet::block::not_deploy;
use crate::models::parnet::model::lower_conv;
use crate::nn::{ConvBn, Ctx, Init, Module, StateBuffer, join_name};
use crate::ops::activation::relu;
use crate::ops::add;
use crate::ops::conv2d::Conv2dParams;
use crate::tensor::Tensor;

/// A conv (no bias, padding `kernel / 2`, one group) and its BN, under torchvision's names.
pub(super) fn resnet_conv_bn(
    conv_name: &str,
    bn_name: &str,
    (cin, cout, kernel, stride): (usize, usize, usize, usize),
    init: Init,
) -> Result<ConvUnit> {
    let params = Conv2dParams::new(stride, kernel / 2, 1);
    let cb = ConvBn::with_names(conv_name, bn_name, (cin, cout, kernel), params, init)?;
    Ok(ConvUnit::Train(cb))
}

/// One residual block: `relu(main(x) + shortcut(x))`, where `main` is the conv/BN chain with a
/// ReLU between consecutive pairs and `shortcut` is the identity or the projection.
pub struct ResidualBlock {
    pub kind: BlockKind,
    /// `conv1/bn1, conv2/bn2` (basic) or `conv1/bn1 .. conv3/bn3` (bottleneck).
    pub main: Vec<ConvUnit>,
    /// `downsample.0` (1x1 conv, stride s) and `downsample.1` (BN): present when the stride is
    /// not 1 or the channel count changes (torchvision's rule; option B of He et al.).
    pub downsample: Option<ConvUnit>,
    pub in_channels: usize,
    pub out_channels: usize,
    pub stride: usize,
}

impl ResidualBlock {
    /// `prefix` like `layer2.0`; `planes` is the stage width (output `planes * expansion`).
    pub fn new(
        prefix: &str,
        kind: BlockKind,
        in_channels: usize,
        planes: usize,
        stride: usize,
        init: Init,
    ) -> Result<ResidualBlock> {
        let out_channels = planes * kind.expansion();
        // (cin, cout, kernel, stride) of each main-path conv.
        let shapes = match kind {
            BlockKind::Basic => vec![(in_channels, planes, 3, stride), (planes, planes, 3, 1)],
            BlockKind::Bottleneck => vec![
                (in_channels, planes, 1, 1),
                (planes, planes, 3, stride),
                (planes, out_channels, 1, 1),
            ],
        };
        let main = shapes
            .into_iter()
            .enumerate()
            .map(|(i, shape)| {
                let conv = join_name(prefix, &format!("conv{}", i + 1));
                let bn = join_name(prefix, &format!("bn{}", i + 1));
                resnet_conv_bn(&conv, &bn, shape, init)
            })
            .collect::<Result<Vec<_>>>()?;
        let downsample = if stride != 1 || in_channels != out_channels {
            Some(resnet_conv_bn(
                &join_name(prefix, "downsample.0"),
                &join_name(prefix, "downsample.1"),
                (in_channels, out_channels, 1, stride),
                init,
            )?)
        } else {
            None
        };
        Ok(ResidualBlock {
            kind,
            main,
            downsample,
            in_channels,
            out_channels,
            stride,
        })
    }

    /// `x [N, in, H, W]` -> `[N, out, H', W']` with `H' = (H - 1) / stride + 1`.
    pub fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        let last = self.main.len() - 1;
        let mut y = x.clone();
        for (i, pair) in self.main.iter().enumerate() {
            y = pair.forward(&y, ctx)?;
            if i < last {
                y = relu(&y);
            }
        }
        let shortcut = match &self.downsample {
            Some(projection) => projection.forward(x, ctx)?,
            None => x.clone(),
        };
        Ok(relu(&add(&y, &shortcut)?))
    }

    /// Appends the deploy block to `g` on input `x`: the main convs with ReLU between them, the
    /// projection (if any), and the last conv's epilogue adding the shortcut and applying ReLU.
    pub fn lower(&self, g: &mut GraphBuilder, x: ValueId) -> Result<ValueId> {
        let shortcut = match &self.downsample {
            Some(projection) => lower_unit(g, x, projection, Epilogue::none())?,
            None => x,
        };
        let last = self.main.len() - 1;
        let mut y = x;
        for (i, unit) in self.main.iter().enumerate() {
            let epilogue = if i < last {
                Epilogue::activation(Activation::Relu)
            } else {
                Epilogue {
                    residual: Some(Residual {
                        value: shortcut,
                        affine: None,
                    }),
                    ..Epilogue::activation(Activation::Relu)
                }
            };
            y = lower_unit(g, y, unit, epilogue)?;
        }
        Ok(y)
    }

    /// The deploy form: every BN folded into its conv.
    pub fn deploy(&self) -> Result<ResidualBlock> {
        Ok(ResidualBlock {
            kind: self.kind,
            main: self
                .main
                .iter()
                .map(ConvUnit::deploy)
                .collect::<Result<_>>()?,
            downsample: self.downsample.as_ref().map(ConvUnit::deploy).transpose()?,
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            stride: self.stride,
        })
    }

    /// Appends the block's convs (main path, projection) and its residual sum to `layers`, on an
    /// `hw` input from layer `input`; returns the sum's index.
    pub fn push_layers(
        &self,
        layers: &mut Vec<LayerInfo>,
        input: usize,
        hw: (usize, usize),
    ) -> usize {
        let mut prev = input;
        let mut size = hw;
        for unit in &self.main {
            let (info, out) = conv_layer_info(unit, prev, size);
            layers.push(info);
            prev = layers.len() - 1;
            size = out;
        }
        let shortcut = match &self.downsample {
            Some(projection) => {
                layers.push(conv_layer_info(projection, input, hw).0);
                layers.len() - 1
            }
            None => input,
        };
        let name = self.main[0].conv().weight.name();
        let prefix = name.rsplit_once(".conv1").map_or(name, |(p, _)| p);
        layers.push(LayerInfo {
            name: format!("{prefix} (sum)"),
            out_shape: [self.out_channels, size.0, size.1],
            params_train: 0,
            params_fused: 0,
            macs_train: 0,
            macs_fused: 0,
            inputs: vec![prev, shortcut],
            counts_for_depth: false,
        });
        layers.len() - 1
    }
}

/// Appends a deploy-form conv unit to `g`.
pub(super) fn lower_unit(
    g: &mut GraphBuilder,
    x: ValueId,
    unit: &ConvUnit,
    epilogue: Epilogue,
) -> Result<ValueId> {
    match unit {
        ConvUnit::Deploy(c) => lower_conv(g, x, c, epilogue),
        ConvUnit::Train(_) => Err(not_deploy(unit.conv().weight.name())),
    }
}

/// One conv (+ BN) as a layer of the table, on an `hw` input from layer `input`; and its output
/// size. The deploy form keeps the conv's parameters and gains a bias in place of the BN.
pub(super) fn conv_layer_info(
    unit: &ConvUnit,
    input: usize,
    hw: (usize, usize),
) -> (LayerInfo, (usize, usize)) {
    let conv = unit.conv();
    let (macs, out) = conv.macs_at(hw);
    let weights = conv.weight.numel();
    let cout = conv.out_channels;
    let info = LayerInfo {
        name: conv.weight.name().trim_end_matches(".weight").to_string(),
        out_shape: [cout, out.0, out.1],
        params_train: weights + 2 * cout,
        params_fused: weights + cout,
        macs_train: macs,
        macs_fused: macs,
        inputs: vec![input],
        counts_for_depth: true,
    };
    (info, out)
}

impl Module for ResidualBlock {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        self.main.iter().for_each(|p| p.visit_params(f));
        if let Some(projection) = &self.downsample {
            projection.visit_params(f);
        }
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&StateBuffer)) {
        self.main.iter().for_each(|p| p.visit_buffers(f));
        if let Some(projection) = &self.downsample {
            projection.visit_buffers(f);
        }
    }
}
