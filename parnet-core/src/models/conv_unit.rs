//! A convolution and its batch norm in either form: training (`conv` then `bn`) or deploy (the
//! BN folded into the conv's bias, spec 5.1). ParNet's CIFAR final layer and every conv of the
//! ResNets are one.

use crate::Param;
use crate::error::Result;
use crate::nn::{Conv2d, ConvBn, Ctx, Module, StateBuffer};
use crate::reparam::fold_into_conv;
use crate::tensor::Tensor;

#[allow(clippy::large_enum_variant)]
pub enum ConvUnit {
    /// `bn(conv(x))`, keys `<conv>.weight` and `<bn>.*`.
    Train(ConvBn),
    /// One conv with bias, keys `<conv>.weight` and `<conv>.bias`.
    Deploy(Conv2d),
}

impl ConvUnit {
    pub fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        match self {
            ConvUnit::Train(cb) => cb.forward(x, ctx),
            ConvUnit::Deploy(c) => c.forward(x, ctx.track_grad),
        }
    }

    /// The deploy form (a copy if this already is one).
    pub fn deploy(&self) -> Result<ConvUnit> {
        Ok(ConvUnit::Deploy(match self {
            ConvUnit::Train(cb) => fold_into_conv(cb)?,
            ConvUnit::Deploy(c) => c.deep_clone(),
        }))
    }

    /// The convolution (in the training form, the one before the BN).
    pub fn conv(&self) -> &Conv2d {
        match self {
            ConvUnit::Train(cb) => &cb.conv,
            ConvUnit::Deploy(c) => c,
        }
    }

    pub fn is_deploy(&self) -> bool {
        matches!(self, ConvUnit::Deploy(_))
    }
}

impl Module for ConvUnit {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        match self {
            ConvUnit::Train(cb) => cb.visit_params(f),
            ConvUnit::Deploy(c) => c.visit_params(f),
        }
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&StateBuffer)) {
        if let ConvUnit::Train(cb) = self {
            cb.visit_buffers(f);
        }
    }
}
