//! A convolution without bias followed by batch norm: the unit of ParNet's branches, its CIFAR
//! final layer, and every conv of the ResNets.

use super::{BatchNorm2d, Conv2d, Ctx, Init, Module, StateBuffer, join_name};
use crate::Param;
use crate::error::Result;
use crate::ops::conv2d::Conv2dParams;
use crate::tensor::Tensor;

/// `bn(conv(x))`; the conv has no bias.
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm2d,
}

impl ConvBn {
    /// Keys `<prefix>.conv.weight` and `<prefix>.bn.*` (ParNet's names).
    pub fn new(
        prefix: &str,
        cin: usize,
        cout: usize,
        kernel: usize,
        params: Conv2dParams,
        init: Init,
    ) -> Result<ConvBn> {
        Self::with_names(
            &join_name(prefix, "conv"),
            &join_name(prefix, "bn"),
            (cin, cout, kernel),
            params,
            init,
        )
    }

    /// Keys `<conv_name>.weight` and `<bn_name>.*` (torchvision's `conv1`/`bn1`, ...).
    pub fn with_names(
        conv_name: &str,
        bn_name: &str,
        (cin, cout, kernel): (usize, usize, usize),
        params: Conv2dParams,
        init: Init,
    ) -> Result<ConvBn> {
        Ok(ConvBn {
            conv: Conv2d::new(conv_name, cin, cout, kernel, params, false, init)?,
            bn: BatchNorm2d::new(bn_name, cout)?,
        })
    }

    pub fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        self.bn.forward(&self.conv.forward(x, ctx.track_grad)?, ctx)
    }
}

impl Module for ConvBn {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        self.conv.visit_params(f);
        self.bn.visit_params(f);
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&StateBuffer)) {
        self.bn.visit_buffers(f);
    }
}
