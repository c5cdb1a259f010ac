//! Residual blocks in the torchvision layout: `BasicBlock` (two 3x3 convs) and `Bottleneck`
//! (1x1, 3x3, 1x1 with expansion 4 and the stride on the 3x3, torchvision "v1.5"), each with an
//! optional projection shortcut `downsample` (1x1 conv with the block's stride + BN).

use super::BlockKind;
use crate::Param;
use crate::error::Result;
use crate::nn::{ConvBn, Ctx, Init, Module, StateBuffer, join_name};
use crate::ops::activation::relu;
use crate::ops::add;
use crate::ops::conv2d::Conv2dParams;
use crate::tensor::Tensor;

/// A conv (no bias, padding `kernel / 2`, one group) and its BN, under torchvision's names.
fn resnet_conv_bn(
    conv_name: &str,
    bn_name: &str,
    (cin, cout, kernel, stride): (usize, usize, usize, usize),
    init: Init,
) -> Result<ConvBn> {
    let params = Conv2dParams::new(stride, kernel / 2, 1);
    ConvBn::with_names(conv_name, bn_name, (cin, cout, kernel), params, init)
}

/// One residual block: `relu(main(x) + shortcut(x))`, where `main` is the conv/BN chain with a
/// ReLU between consecutive pairs and `shortcut` is the identity or the projection.
pub struct ResidualBlock {
    pub kind: BlockKind,
    /// `conv1/bn1, conv2/bn2` (basic) or `conv1/bn1 .. conv3/bn3` (bottleneck).
    pub main: Vec<ConvBn>,
    /// `downsample.0` (1x1 conv, stride s) and `downsample.1` (BN): present when the stride is
    /// not 1 or the channel count changes (torchvision's rule; option B of He et al.).
    pub downsample: Option<ConvBn>,
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

    /// Multiply-adds per image (main path and projection) for an `h x w` input, and the output
    /// size.
    pub fn macs(&self, hw: (usize, usize)) -> (usize, (usize, usize)) {
        let (mut total, mut size) = (0, hw);
        for pair in &self.main {
            let (m, out) = pair.macs(size);
            total += m;
            size = out;
        }
        if let Some(projection) = &self.downsample {
            total += projection.macs(hw).0;
        }
        (total, size)
    }

    /// Layers on the longest path through the block: the main path, or the projection (one
    /// conv, in parallel) if that were longer.
    pub fn depth(&self) -> usize {
        self.main.len().max(usize::from(self.downsample.is_some()))
    }
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
