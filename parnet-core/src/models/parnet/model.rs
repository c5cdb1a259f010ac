//! The whole network in the forward order of spec 2.11, with the three streams on concurrent
//! rayon tasks.

use super::block::RepBlock;
use super::block::not_deploy;
use super::config::{Activation, ParNetConfig};
use super::fusion::FusionBlock;
use super::plan::{FinalSpec, Plan};
use crate::Param;
use crate::error::{Result, invalid, shape_error};
use crate::exec::graph::{Epilogue, GraphBuilder, ValueId};
use crate::models::Network;
use crate::models::conv_unit::ConvUnit;
use crate::models::info::ModelInfo;
use crate::nn::{ConvBn, Ctx, Init, Linear, Module, StateBuffer};
use crate::ops::conv2d::Conv2dParams;
use crate::ops::dropout::dropout_from;
use crate::ops::pool::global_avg_pool;
use crate::tensor::Tensor;

/// The layer after the last fusion.
#[allow(clippy::large_enum_variant)]
pub enum FinalLayer {
    /// ImageNet: the wide downsampling block.
    Block(RepBlock),
    /// CIFAR: 1x1 conv + BN (folded in the deploy form), then the activation.
    Conv(ConvUnit),
}

impl FinalLayer {
    /// `x` through the layer; the conv is followed by `activation` (the block has its own).
    pub fn forward(&self, x: &Tensor, ctx: Ctx, activation: Activation) -> Result<Tensor> {
        Ok(match self {
            FinalLayer::Block(b) => b.forward(x, ctx)?,
            FinalLayer::Conv(c) => activation.apply(&c.forward(x, ctx)?),
        })
    }

    /// The CIFAR form: a 1x1 conv `cin -> cout` and its BN, keys `<prefix>.conv.*`, `<prefix>.bn.*`.
    pub fn conv1x1(prefix: &str, cin: usize, cout: usize, init: Init) -> Result<FinalLayer> {
        let cb = ConvBn::new(prefix, cin, cout, 1, Conv2dParams::new(1, 0, 1), init)?;
        Ok(FinalLayer::Conv(ConvUnit::Train(cb)))
    }

    /// Appends the deploy layer to `g` (the conv followed by `activation`).
    pub fn lower(
        &self,
        g: &mut GraphBuilder,
        x: ValueId,
        activation: Activation,
    ) -> Result<ValueId> {
        match self {
            FinalLayer::Block(b) => b.lower(g, x),
            FinalLayer::Conv(ConvUnit::Deploy(c)) => {
                lower_conv(g, x, c, Epilogue::activation(activation))
            }
            FinalLayer::Conv(ConvUnit::Train(_)) => Err(not_deploy("the final 1x1 conv")),
        }
    }

    /// The deploy form: the block reparameterized, or the BN folded into the 1x1 conv (same key
    /// prefix as the conv).
    pub fn fused(&self) -> Result<FinalLayer> {
        Ok(match self {
            FinalLayer::Block(b) => FinalLayer::Block(b.fused()?),
            FinalLayer::Conv(c) => FinalLayer::Conv(c.deploy()?),
        })
    }
}

impl Module for FinalLayer {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        match self {
            FinalLayer::Block(b) => b.visit_params(f),
            FinalLayer::Conv(c) => c.visit_params(f),
        }
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&StateBuffer)) {
        match self {
            FinalLayer::Block(b) => b.visit_buffers(f),
            FinalLayer::Conv(c) => c.visit_buffers(f),
        }
    }
}

/// Appends a deploy-form convolution layer (with its bias) to `g`.
pub(crate) fn lower_conv(
    g: &mut GraphBuilder,
    x: ValueId,
    c: &crate::nn::Conv2d,
    epilogue: Epilogue,
) -> Result<ValueId> {
    let bias = c
        .bias
        .as_ref()
        .map_or(vec![0.0; c.out_channels], |b| b.to_vec());
    g.conv(
        x,
        c.weight.to_vec(),
        bias,
        (c.out_channels, c.kernel, c.kernel),
        c.params.stride,
        c.params.padding,
        c.params.groups,
        epilogue,
    )
}

/// Appends a blocks chain to `g`.
pub(crate) fn lower_chain(
    g: &mut GraphBuilder,
    blocks: &[RepBlock],
    x: ValueId,
) -> Result<ValueId> {
    blocks.iter().try_fold(x, |x, b| b.lower(g, x))
}

/// A ParNet: stem, three streams, merge path, head.
pub struct ParNet {
    pub config: ParNetConfig,
    pub plan: Plan,
    pub stem: Vec<RepBlock>,
    pub streams: [Vec<RepBlock>; 3],
    pub down0: RepBlock,
    pub fuse1: FusionBlock,
    pub fuse2: FusionBlock,
    pub final_layer: FinalLayer,
    pub head: Linear,
}

fn run_chain(blocks: &[RepBlock], x: Tensor, ctx: Ctx) -> Result<Tensor> {
    blocks.iter().try_fold(x, |x, b| b.forward(&x, ctx))
}

impl ParNet {
    /// A freshly initialised model (PyTorch default init, seeded).
    pub fn new(config: ParNetConfig, seed: u64) -> Result<ParNet> {
        let plan = Plan::new(&config);
        let init = Init::new(seed);
        let (act, dg) = (config.activation, config.double_gate);
        let block = |s| RepBlock::new(s, act, dg, init);
        let stem = plan.stem.iter().map(block).collect::<Result<Vec<_>>>()?;
        let mut streams: [Vec<RepBlock>; 3] = Default::default();
        for (out, specs) in streams.iter_mut().zip(&plan.streams) {
            *out = specs.iter().map(block).collect::<Result<Vec<_>>>()?;
        }
        let final_layer = match &plan.final_layer {
            FinalSpec::Block(s) => FinalLayer::Block(block(s)?),
            FinalSpec::Conv1x1 { prefix, cin, cout } => {
                FinalLayer::conv1x1(prefix, *cin, *cout, init)?
            }
        };
        Ok(ParNet {
            down0: block(&plan.down0)?,
            fuse1: FusionBlock::new(&plan.fuse1, act, dg, init)?,
            fuse2: FusionBlock::new(&plan.fuse2, act, dg, init)?,
            head: Linear::new("head.fc", plan.head.0, plan.head.1, init)?,
            stem,
            streams,
            final_layer,
            plan,
            config,
        })
    }

    /// Whether the model is in deploy (reparameterized) form.
    pub fn is_fused(&self) -> bool {
        self.down0.is_fused()
    }

    /// Refuses inputs the network cannot take, before any work is done.
    pub fn check_input(&self, x: &Tensor) -> Result<()> {
        let m = self.config.size_multiple();
        match x.shape().nchw() {
            Some((n, 3, h, w)) if n > 0 && h > 0 && w > 0 && h % m == 0 && w % m == 0 => Ok(()),
            Some((_, 3, h, w)) if h % m != 0 || w % m != 0 => Err(shape_error(
                "parnet",
                format!(
                    "{}: input height and width must be multiples of {m} (every stride-2 block needs an even input); got {h}x{w}",
                    self.config.name
                ),
                &[x.dims()],
            )),
            _ => Err(shape_error(
                "parnet",
                "expected an input of shape [N, 3, H, W] with N, H, W > 0",
                &[x.dims()],
            )),
        }
    }

    /// Logits `[N, classes]` for images `[N, 3, H, W]`.
    pub fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        self.check_input(x)?;
        let n_stem = self.stem.len();
        let x0 = run_chain(&self.stem[..n_stem - 2], x.clone(), ctx)?;
        let stream = |s: usize, x: Tensor| run_chain(&self.streams[s], x, ctx);
        // Stream 0 runs while the stem goes on to feed streams 1 and 2.
        let rest = |x0: &Tensor| -> Result<(Tensor, Tensor)> {
            let x1 = self.stem[n_stem - 2].forward(x0, ctx)?;
            let deeper = |x1: &Tensor| -> Result<Tensor> {
                stream(2, self.stem[n_stem - 1].forward(x1, ctx)?)
            };
            let (y1, y2) = if ctx.parallel_streams {
                rayon::join(|| stream(1, x1.clone()), || deeper(&x1))
            } else {
                (stream(1, x1.clone()), deeper(&x1))
            };
            Ok((y1?, y2?))
        };
        let (y0, rest) = if ctx.parallel_streams {
            rayon::join(|| stream(0, x0.clone()), || rest(&x0))
        } else {
            (stream(0, x0.clone()), rest(&x0))
        };
        let (y0, (y1, y2)) = (y0?, rest?);
        self.forward_from_streams([&y0, &y1, &y2], ctx)
    }

    /// The output of stream `s` (0, 1 or 2) for images `x`: the part of the stem it needs, then
    /// the stream; what one process of a stream-parallel forward computes (the official
    /// `SimpNetMultiGPU` recomputes the stem prefix likewise). The same bits as inside
    /// [`ParNet::forward`].
    pub fn stream_forward(&self, x: &Tensor, s: usize, ctx: Ctx) -> Result<Tensor> {
        self.check_input(x)?;
        if s > 2 {
            return Err(invalid(
                "parnet",
                format!("stream {s}: ParNet has streams 0, 1 and 2"),
            ));
        }
        let stem_len = self.stem.len() - 2 + s;
        let x = run_chain(&self.stem[..stem_len], x.clone(), ctx)?;
        run_chain(&self.streams[s], x, ctx)
    }

    /// The logits from the outputs of the three streams ([`ParNet::stream_forward`]): the two
    /// fusions, the final layer, the pool and the classifier.
    pub fn forward_from_streams(&self, [y0, y1, y2]: [&Tensor; 3], ctx: Ctx) -> Result<Tensor> {
        let d0 = self.down0.forward(y0, ctx)?;
        let d1 = self.fuse1.forward(y1, &d0, ctx)?;
        let z = self.fuse2.forward(y2, &d1, ctx)?;
        let z = self.final_layer.forward(&z, ctx, self.config.activation)?;
        let pooled = global_avg_pool(&z)?;
        let (n, c) = (pooled.dims()[0], pooled.dims()[1]);
        let mut features = pooled.reshape([n, c])?;
        if ctx.train && self.config.dropout > 0.0 {
            features = dropout_from(
                &features,
                self.config.dropout,
                ctx.with_seed_offset(1).seed,
                ctx.first_sample * c,
            )?;
        }
        self.head.forward(&features, ctx.track_grad)
    }

    /// The deploy model (spec 5): every block reparameterized, the CIFAR final conv's BN folded.
    pub fn fused(&self) -> Result<ParNet> {
        let fuse_all = |blocks: &[RepBlock]| {
            blocks
                .iter()
                .map(RepBlock::fused)
                .collect::<Result<Vec<_>>>()
        };
        let mut streams: [Vec<RepBlock>; 3] = Default::default();
        for (out, blocks) in streams.iter_mut().zip(&self.streams) {
            *out = fuse_all(blocks)?;
        }
        let final_layer = self.final_layer.fused()?;
        Ok(ParNet {
            config: self.config.clone(),
            plan: self.plan.clone(),
            stem: fuse_all(&self.stem)?,
            streams,
            down0: RepBlock::fused(&self.down0)?,
            fuse1: self.fuse1.fused()?,
            fuse2: self.fuse2.fused()?,
            final_layer,
            head: self.head.deep_clone(),
        })
    }

    /// Sets the dropout probability (0 disables it); must be in [0, 1).
    pub fn set_dropout(&mut self, p: f32) -> Result<()> {
        if !(0.0..1.0).contains(&p) {
            return Err(invalid("parnet", format!("dropout {p} must be in [0, 1)")));
        }
        self.config.dropout = p;
        Ok(())
    }

    fn blocks(&self) -> impl Iterator<Item = &RepBlock> {
        self.stem
            .iter()
            .chain(self.streams.iter().flatten())
            .chain(std::iter::once(&self.down0))
    }
}

impl Module for ParNet {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        self.blocks().for_each(|b| b.visit_params(f));
        self.fuse1.visit_params(f);
        self.fuse2.visit_params(f);
        self.final_layer.visit_params(f);
        self.head.visit_params(f);
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&StateBuffer)) {
        self.blocks().for_each(|b| b.visit_buffers(f));
        self.fuse1.visit_buffers(f);
        self.fuse2.visit_buffers(f);
        self.final_layer.visit_buffers(f);
    }
}

impl Network for ParNet {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        ParNet::forward(self, x, ctx)
    }

    fn info(&self, image_size: usize) -> ModelInfo {
        self.plan.info(image_size)
    }

    fn is_deploy(&self) -> bool {
        self.is_fused()
    }

    fn as_parnet(&self) -> Option<&ParNet> {
        Some(self)
    }

    fn deploy(&self) -> Result<Box<dyn Network>> {
        Ok(Box::new(self.fused()?))
    }

    fn default_image_size(&self) -> usize {
        self.config.default_image_size()
    }

    fn input_multiple(&self) -> usize {
        self.config.size_multiple()
    }

    /// The forward order of spec 2.11: stem, the three streams, the fusions, the final layer, the
    /// head (the executor finds the streams' independence from the graph).
    fn lower(&self, g: &mut GraphBuilder, x: ValueId) -> Result<ValueId> {
        let n_stem = self.stem.len();
        let x0 = lower_chain(g, &self.stem[..n_stem - 2], x)?;
        let y0 = lower_chain(g, &self.streams[0], x0)?;
        let x1 = self.stem[n_stem - 2].lower(g, x0)?;
        let y1 = lower_chain(g, &self.streams[1], x1)?;
        let x2 = self.stem[n_stem - 1].lower(g, x1)?;
        let y2 = lower_chain(g, &self.streams[2], x2)?;
        let d0 = self.down0.lower(g, y0)?;
        let d1 = self.fuse1.lower(g, y1, d0)?;
        let z = self.fuse2.lower(g, y2, d1)?;
        let z = self.final_layer.lower(g, z, self.config.activation)?;
        lower_head(g, z, &self.head)
    }
}

/// Appends the classifier (global average pool, linear layer) to `g`.
pub(crate) fn lower_head(g: &mut GraphBuilder, x: ValueId, head: &Linear) -> Result<ValueId> {
    g.head(x, head.weight.to_vec(), head.bias.to_vec())
}
