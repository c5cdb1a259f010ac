//! The sweep network built from its [`SweepPlan`], with the streams on concurrent rayon tasks.

use super::plan::SweepPlan;
use super::spec::SweepSpec;
use crate::Param;
use crate::error::{Result, shape_error};
use crate::exec::graph::{GraphBuilder, ValueId};
use crate::models::Network;
use crate::models::info::ModelInfo;
use crate::models::parnet::block::RepBlock;
use crate::models::parnet::fusion::FusionBlock;
use crate::models::parnet::model::{FinalLayer, lower_chain, lower_head};
use crate::nn::{Ctx, Init, Linear, Module, StateBuffer};
use crate::ops::pool::global_avg_pool;
use crate::tensor::Tensor;

/// Non-identity gates are doubled, as in ParNet's default (official code).
const DOUBLE_GATE: bool = true;

/// A sweep member with weights (see [`super`] for the topology and key names).
pub struct SweepNet {
    pub spec: SweepSpec,
    pub plan: SweepPlan,
    name: String,
    pub stem: Vec<RepBlock>,
    /// `inits[i - 1]` feeds stream i.
    pub inits: Vec<RepBlock>,
    pub streams: Vec<Vec<RepBlock>>,
    pub down0: Option<RepBlock>,
    pub fusions: Vec<FusionBlock>,
    pub tail: Vec<RepBlock>,
    /// `final`: 1x1 conv + BN (training form) or the folded conv (deploy form).
    pub final_layer: FinalLayer,
    pub head: Linear,
}

fn run_chain(blocks: &[RepBlock], x: Tensor, ctx: Ctx) -> Result<Tensor> {
    blocks.iter().try_fold(x, |x, b| b.forward(&x, ctx))
}

fn fuse_all(blocks: &[RepBlock]) -> Result<Vec<RepBlock>> {
    blocks.iter().map(RepBlock::fused).collect()
}

impl SweepNet {
    /// A freshly initialised member (PyTorch default init, seeded).
    pub fn new(spec: SweepSpec, seed: u64) -> Result<SweepNet> {
        let plan = spec.plan();
        let init = Init::new(seed);
        let act = spec.activation;
        let blocks = |specs: &[_]| {
            specs
                .iter()
                .map(|s| RepBlock::new(s, act, DOUBLE_GATE, init))
                .collect::<Result<Vec<_>>>()
        };
        let (cin, cout) = plan.final_conv;
        Ok(SweepNet {
            name: spec.name(),
            stem: blocks(&plan.stem)?,
            inits: blocks(&plan.inits)?,
            streams: plan
                .streams
                .iter()
                .map(|s| blocks(s))
                .collect::<Result<_>>()?,
            down0: match &plan.down0 {
                Some(d) => Some(RepBlock::new(d, act, DOUBLE_GATE, init)?),
                None => None,
            },
            fusions: plan
                .fusions
                .iter()
                .map(|f| FusionBlock::new(f, act, DOUBLE_GATE, init))
                .collect::<Result<_>>()?,
            tail: blocks(&plan.tail)?,
            final_layer: FinalLayer::conv1x1("final", cin, cout, init)?,
            head: Linear::new("head.fc", plan.head.0, plan.head.1, init)?,
            spec,
            plan,
        })
    }

    /// Whether the model is in deploy (reparameterized) form.
    pub fn is_fused(&self) -> bool {
        self.stem[0].is_fused()
    }

    /// Logits `[N, classes]` for images `[N, 3, H, W]`, H and W positive multiples of
    /// [`SweepSpec::size_multiple`].
    pub fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        let m = self.spec.size_multiple();
        match x.shape().nchw() {
            Some((n, 3, h, w)) if n > 0 && h > 0 && w > 0 && h % m == 0 && w % m == 0 => {}
            _ => {
                return Err(shape_error(
                    "parnet_sweep",
                    format!(
                        "{}: expected [N, 3, H, W] with N > 0 and H, W positive multiples of {m}",
                        self.name
                    ),
                    &[x.dims()],
                ));
            }
        }
        let x0 = run_chain(&self.stem, x.clone(), ctx)?;
        let ys = self.streams_from(0, x0, ctx)?;
        let mut z = match &self.down0 {
            Some(d) => d.forward(&ys[0], ctx)?,
            None => ys[0].clone(),
        };
        for (fusion, y) in self.fusions.iter().zip(&ys[1..]) {
            z = fusion.forward(y, &z, ctx)?;
        }
        let z = run_chain(&self.tail, z, ctx)?;
        let z = self.final_layer.forward(&z, ctx, self.spec.activation)?;
        let pooled = global_avg_pool(&z)?;
        let (n, c) = (pooled.dims()[0], pooled.dims()[1]);
        self.head.forward(&pooled.reshape([n, c])?, ctx.track_grad)
    }

    /// Outputs of streams `i..S` given stream i's input: stream i runs while `inits.{i+1}` goes
    /// on to feed the deeper streams (one after another when `!ctx.parallel_streams`).
    fn streams_from(&self, i: usize, x: Tensor, ctx: Ctx) -> Result<Vec<Tensor>> {
        let stream = |x: Tensor| run_chain(&self.streams[i], x, ctx);
        if i + 1 == self.streams.len() {
            return Ok(vec![stream(x)?]);
        }
        let deeper = |x: &Tensor| self.streams_from(i + 1, self.inits[i].forward(x, ctx)?, ctx);
        let (y, rest) = if ctx.parallel_streams {
            rayon::join(|| stream(x.clone()), || deeper(&x))
        } else {
            (stream(x.clone()), deeper(&x))
        };
        let mut out = vec![y?];
        out.extend(rest?);
        Ok(out)
    }

    /// The deploy model: every block reparameterized (spec 5), the final conv's BN folded.
    pub fn fused(&self) -> Result<SweepNet> {
        Ok(SweepNet {
            spec: self.spec.clone(),
            plan: self.plan.clone(),
            name: self.name.clone(),
            stem: fuse_all(&self.stem)?,
            inits: fuse_all(&self.inits)?,
            streams: self
                .streams
                .iter()
                .map(|s| fuse_all(s))
                .collect::<Result<_>>()?,
            down0: self.down0.as_ref().map(RepBlock::fused).transpose()?,
            fusions: self
                .fusions
                .iter()
                .map(FusionBlock::fused)
                .collect::<Result<_>>()?,
            tail: fuse_all(&self.tail)?,
            final_layer: self.final_layer.fused()?,
            head: self.head.deep_clone(),
        })
    }

    /// Every plain block (not the fusion blocks), in forward order.
    fn blocks(&self) -> impl Iterator<Item = &RepBlock> {
        self.stem
            .iter()
            .chain(&self.inits)
            .chain(self.streams.iter().flatten())
            .chain(&self.down0)
    }
}

impl Module for SweepNet {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        self.blocks().for_each(|b| b.visit_params(f));
        self.fusions.iter().for_each(|b| b.visit_params(f));
        self.tail.iter().for_each(|b| b.visit_params(f));
        self.final_layer.visit_params(f);
        self.head.visit_params(f);
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&StateBuffer)) {
        self.blocks().for_each(|b| b.visit_buffers(f));
        self.fusions.iter().for_each(|b| b.visit_buffers(f));
        self.tail.iter().for_each(|b| b.visit_buffers(f));
        self.final_layer.visit_buffers(f);
    }
}

impl Network for SweepNet {
    /// The spec's name, e.g. `sweep-s3-b4-w32`.
    fn name(&self) -> &str {
        &self.name
    }

    fn num_classes(&self) -> usize {
        self.spec.num_classes
    }

    fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        SweepNet::forward(self, x, ctx)
    }

    fn info(&self, image_size: usize) -> ModelInfo {
        self.plan.info(image_size)
    }

    fn is_deploy(&self) -> bool {
        self.is_fused()
    }

    fn deploy(&self) -> Result<Box<dyn Network>> {
        Ok(Box::new(self.fused()?))
    }

    fn default_image_size(&self) -> usize {
        32
    }

    fn input_multiple(&self) -> usize {
        self.spec.size_multiple()
    }

    fn lower(&self, g: &mut GraphBuilder, x: ValueId) -> Result<ValueId> {
        let mut tap = lower_chain(g, &self.stem, x)?;
        let mut ys = Vec::new();
        for (i, stream) in self.streams.iter().enumerate() {
            ys.push(lower_chain(g, stream, tap)?);
            if let Some(init) = self.inits.get(i) {
                tap = init.lower(g, tap)?;
            }
        }
        let mut z = match &self.down0 {
            Some(d) => d.lower(g, ys[0])?,
            None => ys[0],
        };
        for (fusion, &y) in self.fusions.iter().zip(&ys[1..]) {
            z = fusion.lower(g, y, z)?;
        }
        let z = lower_chain(g, &self.tail, z)?;
        let z = self.final_layer.lower(g, z, self.spec.activation)?;
        lower_head(g, z, &self.head)
    }
}
