//! The fusion block (spec 2.5): `MultiBatchNorm2d` (two BNs), interleaving concat, a groups-2
//! block (which ends with the channel shuffle).

use super::block::RepBlock;
use super::config::Activation;
use super::plan::FusionSpec;
use crate::Param;
use crate::error::Result;
use crate::exec::graph::{Affine, GraphBuilder, ValueId};
use crate::nn::{BatchNorm2d, Ctx, Init, Module, StateBuffer};
use crate::ops::channel::interleave_channels;
use crate::tensor::Tensor;

pub struct FusionBlock {
    /// `<prefix>.0.b1`, applied to the current stream's output.
    pub bn_stream: BatchNorm2d,
    /// `<prefix>.0.b2`, applied to the merged features from the previous stage.
    pub bn_previous: BatchNorm2d,
    /// `<prefix>.2.block`.
    pub block: RepBlock,
}

impl FusionBlock {
    pub fn new(
        spec: &FusionSpec,
        activation: Activation,
        double_gate: bool,
        init: Init,
    ) -> Result<FusionBlock> {
        Ok(FusionBlock {
            bn_stream: BatchNorm2d::new(&format!("{}.0.b1", spec.prefix), spec.channels)?,
            bn_previous: BatchNorm2d::new(&format!("{}.0.b2", spec.prefix), spec.channels)?,
            block: RepBlock::new(&spec.block, activation, double_gate, init)?,
        })
    }

    /// `(stream, previous)`, both `[N, C, H, W]` -> `[N, cout, H/s, W/s]`.
    pub fn forward(&self, stream: &Tensor, previous: &Tensor, ctx: Ctx) -> Result<Tensor> {
        let a = self.bn_stream.forward(stream, ctx)?;
        let b = self.bn_previous.forward(previous, ctx)?;
        self.block.forward(&interleave_channels(&a, &b)?, ctx)
    }

    /// Appends the deploy fusion to `g`: the two BNs and the interleave in one node, then the
    /// block.
    pub fn lower(
        &self,
        g: &mut GraphBuilder,
        stream: ValueId,
        previous: ValueId,
    ) -> Result<ValueId> {
        let z = g.interleave(
            (stream, Affine::from_f64(self.bn_stream.eval_affine())),
            (previous, Affine::from_f64(self.bn_previous.eval_affine())),
        )?;
        self.block.lower(g, z)
    }

    /// The deploy form (only the block changes).
    pub fn fused(&self) -> Result<FusionBlock> {
        Ok(FusionBlock {
            bn_stream: self.bn_stream.deep_clone(),
            bn_previous: self.bn_previous.deep_clone(),
            block: self.block.fused()?,
        })
    }
}

impl Module for FusionBlock {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        self.bn_stream.visit_params(f);
        self.bn_previous.visit_params(f);
        self.block.visit_params(f);
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&StateBuffer)) {
        self.bn_stream.visit_buffers(f);
        self.bn_previous.visit_buffers(f);
        self.block.visit_buffers(f);
    }
}
