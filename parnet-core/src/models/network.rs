//! The interface of every model: images `[N, 3, H, W]` to logits `[N, classes]`, the counts of
//! `parnet info`, and the deploy form.

use super::info::ModelInfo;
use crate::Tensor;
use crate::error::{Result, invalid};
use crate::exec::graph::{Graph, GraphBuilder, ValueId, ValueShape};
use crate::exec::{ExecOptions, Executor};
use crate::nn::{Ctx, Module};

/// An image classifier: `[N, 3, H, W]` images to `[N, classes]` logits.
pub trait Network: Module + Send + Sync {
    /// A short name (`parnet-cifar`, `resnet-20`, ...).
    fn name(&self) -> &str;
    fn num_classes(&self) -> usize;
    fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor>;
    /// Parameters and multiply-adds of the training graph and of the deploy form, depth, and
    /// every layer's output shape, at a square `image_size` input (a positive multiple of
    /// [`Network::input_multiple`]). The same whichever form `self` is in.
    fn info(&self, image_size: usize) -> ModelInfo;
    /// Whether this is the deploy form ([`Network::deploy`]).
    fn is_deploy(&self) -> bool;
    /// The deploy form: structurally reparameterized (ParNet-style networks, spec 5) or with
    /// every BN folded into its conv (the ResNets); the same function in eval mode.
    fn deploy(&self) -> Result<Box<dyn Network>>;
    /// Appends the deploy form's computation to `graph`, reading the image `input`; returns the
    /// logits. Only deploy forms lower (the executor runs what [`Network::deploy`] gives).
    fn lower(&self, graph: &mut GraphBuilder, input: ValueId) -> Result<ValueId> {
        let _ = (graph, input);
        Err(invalid(
            "exec",
            format!("{} cannot be lowered to the executor", self.name()),
        ))
    }
    /// This network as a [`ParNet`](crate::models::parnet::ParNet) (whose streams can run in
    /// separate processes), if it is one.
    fn as_parnet(&self) -> Option<&crate::models::parnet::ParNet> {
        None
    }
    /// The input size the network is defined for (224 for ImageNet layouts, 32 for CIFAR).
    fn default_image_size(&self) -> usize;
    /// Input height and width must be multiples of this.
    fn input_multiple(&self) -> usize {
        1
    }
    /// Length of the longest input-to-output path in layers (convs and linear layers; spec 4).
    fn depth(&self) -> usize {
        self.info(self.default_image_size()).depth
    }
    /// Multiply-adds per image at a square `image_size` input (convs and linear layers) of this
    /// form.
    fn macs(&self, image_size: usize) -> usize {
        let info = self.info(image_size);
        if self.is_deploy() {
            info.macs_fused
        } else {
            info.macs_train
        }
    }
}

impl<'a> dyn Network + 'a {
    /// The executor of the deploy form (this network reparameterized first if it is in training
    /// form), planned for `batch` images of `height x width`.
    pub fn executor(
        &self,
        batch: usize,
        (height, width): (usize, usize),
        options: &ExecOptions,
    ) -> Result<Executor> {
        Executor::new(
            &self.deploy_graph((height, width))?,
            batch,
            options,
            self.name(),
        )
    }

    /// The deploy form lowered to the executor's graph for images of `height x width` (this
    /// network reparameterized first if it is in training form).
    pub fn deploy_graph(&self, (height, width): (usize, usize)) -> Result<Graph> {
        let m = self.input_multiple();
        if height == 0 || width == 0 || !height.is_multiple_of(m) || !width.is_multiple_of(m) {
            return Err(invalid(
                "exec",
                format!(
                    "{}: images of {height}x{width}; it takes sizes that are positive multiples of {m}",
                    self.name()
                ),
            ));
        }
        let deployed;
        let net: &dyn Network = if self.is_deploy() {
            self
        } else {
            deployed = self.deploy()?;
            deployed.as_ref()
        };
        let (mut builder, x) = GraphBuilder::new(ValueShape {
            channels: 3,
            height,
            width,
        });
        let out = net.lower(&mut builder, x)?;
        Ok(builder.finish(out))
    }
}
