//! "Sequential ParNet": the blocks and widths of `parnet-cifar` (any width multiplier) with the
//! three streams stacked one after another instead of side by side. It answers "what if the same
//! budget bought depth instead of parallel streams?": about the same parameters, exactly the same
//! multiply-adds (for widths in the ratio 1:2:4), depth 20 instead of 12.
//!
//! The chain, keys `blocks.{i}.*` (generic ParNet blocks, spec 2.2; widths `w0, w1, w2, wL`):
//!
//! | blocks | what | resolution (32 input) | ParNet counterpart |
//! |---|---|---|---|
//! | 0-2 | 3 -> w0 (case B), w0 -> w0 twice | 32 | `inits.0.{0,1,2}` |
//! | 3 | 1 block w0 | 32 | stream 0 (3 blocks) |
//! | 4 | w0 -> w1, stride 2 | 16 | `downsamples_2.0` |
//! | 5-11 | 7 blocks w1 | 16 | stream 1 (4 blocks) |
//! | 12 | w1 -> w2, stride 2 | 8 | the fusion `downsamples_2.1` on a single input |
//! | 13-17 | 5 blocks w2 | 8 | stream 2 (4 blocks) + the fusion `combine` on a single input |
//! | `final` | 1x1 conv + BN + act, w2 -> wL | 8 | `combine.3` |
//! | `head.fc` | GAP -> dropout -> linear | | `head.fc` |
//!
//! How the budget is kept:
//! - A fusion block on one input: the groups-2 block of `downsamples_2.1` (2·w1 -> w2) has the
//!   same convolutions, parameter for parameter and multiply-add for multiply-add, as a groups-1
//!   block w1 -> w2 on the stream-1 output; the same holds for `combine` (2·w2 -> w2) and a
//!   w2 -> w2 block, which, having Cin = Cout and stride 1, is a stream block (case A, with the
//!   gated identity BN). The fusion BNs (two per fusion) disappear; the stand-in for `combine`
//!   gains an identity BN.
//! - The two stem blocks that only fed streams 1 and 2 (`inits.1`: w0 -> w1 at 32, `inits.2`:
//!   w1 -> w2 at 16) have no place in a chain. Their budget, ≈ 110·w0² parameters and the
//!   multiply-adds of one stream block (≈ 10240·w0² at 32x32), is spent by moving two blocks
//!   from stage 1 (≈ 11·w0² parameters each) to stage 2 (≈ 44·w0² each) and adding one more
//!   there: -2·11 + 3·44 = 110 and -2 + 3 = 1 stream block of multiply-adds (every stream block
//!   costs the same at its resolution). For `parnet-cifar` (128/256/512/1024, 10 classes):
//!   22,379,914 parameters vs 22,381,962 and 2,723,834,240 multiply-adds, identical. For widths
//!   not in the ratio 1:2:4 (rounded width multipliers) the match is close, not exact.
//!
//! Depth: 18 blocks + the final 1x1 + the classifier = 20 (ParNet: 12).

use crate::Param;
use crate::error::{Result, invalid, shape_error};
use crate::exec::graph::{GraphBuilder, ValueId};
use crate::models::Network;
use crate::models::info::{LayerInfo, ModelInfo};
use crate::models::parnet::block::RepBlock;
use crate::models::parnet::model::{FinalLayer, lower_chain, lower_head};
use crate::models::parnet::plan::BlockSpec;
use crate::models::parnet::{Layout, ParNetConfig};
use crate::nn::{Ctx, Init, Linear, Module, StateBuffer};
use crate::ops::dropout::dropout_from;
use crate::ops::pool::global_avg_pool;
use crate::tensor::Tensor;

/// The network's name.
pub const SEQUENTIAL_PARNET_CIFAR: &str = "sequential-parnet-cifar";

/// The chain of blocks for a CIFAR-layout config (see the module docs).
pub fn sequential_plan(config: &ParNetConfig) -> Result<Vec<BlockSpec>> {
    if config.layout != Layout::Cifar {
        return Err(invalid(
            "model",
            format!(
                "{}: the sequential ParNet is defined for the CIFAR layout only",
                config.name
            ),
        ));
    }
    let [w0, w1, w2, _] = config.widths;
    let [s0, s1, s2] = config.stream_blocks();
    let mut specs = Vec::new();
    let mut push = |cin: usize, cout: usize, stride: usize| {
        let prefix = format!("blocks.{}", specs.len());
        specs.push(BlockSpec {
            prefix,
            cin,
            cout,
            stride,
            groups: 1,
        });
    };
    push(3, w0, 1);
    push(w0, w0, 1);
    push(w0, w0, 1);
    (0..s0 - 2).for_each(|_| push(w0, w0, 1));
    push(w0, w1, 2);
    (0..s1 + 3).for_each(|_| push(w1, w1, 1));
    push(w1, w2, 2);
    (0..s2 + 1).for_each(|_| push(w2, w2, 1));
    Ok(specs)
}

/// The sequential ParNet (see the module docs).
pub struct SequentialParNet {
    pub config: ParNetConfig,
    pub specs: Vec<BlockSpec>,
    pub blocks: Vec<RepBlock>,
    /// `final`: 1x1 conv + BN (training form) or the folded conv (deploy form); never a block.
    pub final_layer: FinalLayer,
    pub head: Linear,
}

impl SequentialParNet {
    /// A freshly initialised model (PyTorch default init, seeded) from a CIFAR-layout config;
    /// activation, gate factor and dropout are taken from the config.
    pub fn new(config: ParNetConfig, seed: u64) -> Result<SequentialParNet> {
        let specs = sequential_plan(&config)?;
        let init = Init::new(seed);
        let blocks = specs
            .iter()
            .map(|s| RepBlock::new(s, config.activation, config.double_gate, init))
            .collect::<Result<Vec<_>>>()?;
        let [_, _, w2, wl] = config.widths;
        let final_layer = FinalLayer::conv1x1("final", w2, wl, init)?;
        Ok(SequentialParNet {
            head: Linear::new("head.fc", wl, config.num_classes, init)?,
            config,
            specs,
            blocks,
            final_layer,
        })
    }

    /// Whether the model is in deploy (reparameterized) form.
    pub fn is_fused(&self) -> bool {
        self.blocks[0].is_fused()
    }

    /// Logits `[N, classes]` for images `[N, 3, H, W]`, H and W multiples of 4.
    pub fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        let m = self.config.size_multiple();
        match x.shape().nchw() {
            Some((n, 3, h, w)) if n > 0 && h > 0 && w > 0 && h % m == 0 && w % m == 0 => {}
            _ => {
                return Err(shape_error(
                    "sequential_parnet",
                    format!("expected [N, 3, H, W] with N > 0 and H, W positive multiples of {m}"),
                    &[x.dims()],
                ));
            }
        }
        let mut y = x.clone();
        for block in &self.blocks {
            y = block.forward(&y, ctx)?;
        }
        let y = self.final_layer.forward(&y, ctx, self.config.activation)?;
        let pooled = global_avg_pool(&y)?;
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

    /// The deploy model: every block reparameterized (spec 5), the final conv's BN folded.
    pub fn fused(&self) -> Result<SequentialParNet> {
        let final_layer = self.final_layer.fused()?;
        Ok(SequentialParNet {
            config: self.config.clone(),
            specs: self.specs.clone(),
            blocks: self
                .blocks
                .iter()
                .map(RepBlock::fused)
                .collect::<Result<_>>()?,
            final_layer,
            head: self.head.deep_clone(),
        })
    }

    /// Every block, the final 1x1 conv and the classifier: one chain.
    pub fn info_at(&self, image_size: usize) -> ModelInfo {
        let mut layers: Vec<LayerInfo> = Vec::new();
        let mut hw = image_size;
        for spec in &self.specs {
            let input = layers.len().checked_sub(1);
            layers.push(spec.layer_info(input, hw));
            hw /= spec.stride;
        }
        let [_, _, w2, wl] = self.config.widths;
        let last = layers.len() - 1;
        layers.push(LayerInfo::conv1x1_bn("final", w2, wl, hw, last));
        let (features, classes) = (self.head.in_features, self.head.out_features);
        layers.push(LayerInfo::classifier(
            "head.fc",
            features,
            classes,
            last + 1,
        ));
        ModelInfo::from_layers(image_size, layers)
    }
}

impl Module for SequentialParNet {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        self.blocks.iter().for_each(|b| b.visit_params(f));
        self.final_layer.visit_params(f);
        self.head.visit_params(f);
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&StateBuffer)) {
        self.blocks.iter().for_each(|b| b.visit_buffers(f));
        self.final_layer.visit_buffers(f);
    }
}

impl Network for SequentialParNet {
    fn name(&self) -> &str {
        SEQUENTIAL_PARNET_CIFAR
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        SequentialParNet::forward(self, x, ctx)
    }

    fn info(&self, image_size: usize) -> ModelInfo {
        self.info_at(image_size)
    }

    fn is_deploy(&self) -> bool {
        self.is_fused()
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

    fn lower(&self, g: &mut GraphBuilder, x: ValueId) -> Result<ValueId> {
        let z = lower_chain(g, &self.blocks, x)?;
        let z = self.final_layer.lower(g, z, self.config.activation)?;
        lower_head(g, z, &self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::parnet::{ParNet, Plan};
    use crate::nn::testing::perturb_batch_norms;
    use crate::ops::loss::cross_entropy;
    use crate::testing::{random_values, to_f32};

    fn cifar(mult: f64) -> ParNetConfig {
        let c = ParNetConfig::from_name("parnet-cifar", 10).unwrap();
        if mult == 1.0 {
            c
        } else {
            c.with_width_mult(mult).unwrap()
        }
    }

    fn images(n: usize, size: usize, seed: u64) -> Tensor {
        let len = n * 3 * size * size;
        Tensor::from_vec(to_f32(&random_values(len, 1.0, seed)), [n, 3, size, size]).unwrap()
    }

    #[test]
    fn budget_matches_parnet_cifar() {
        let model = SequentialParNet::new(cifar(1.0), 0).unwrap();
        let parallel = Plan::new(&cifar(1.0)).info(32);
        assert_eq!(parallel.params_train, 22_381_962);
        assert_eq!(model.num_params(), 22_379_914);
        assert_eq!(model.macs(32), 2_723_834_240);
        assert_eq!(model.macs(32), parallel.macs_train);
        // Rounded width multipliers break the 1:2:4 ratio; the budgets stay close.
        for mult in [0.25, 0.3, 0.5, 0.75, 1.0] {
            let cfg = cifar(mult);
            let parallel = Plan::new(&cfg).info(32);
            let model = SequentialParNet::new(cfg.clone(), 0).unwrap();
            let fused = model.fused().unwrap();
            let ratio = |a: usize, b: usize| a as f64 / b as f64;
            for (what, r) in [
                ("params", ratio(model.num_params(), parallel.params_train)),
                (
                    "fused params",
                    ratio(fused.num_params(), parallel.params_fused),
                ),
                ("MACs", ratio(model.macs(32), parallel.macs_train)),
                ("fused MACs", ratio(fused.macs(32), parallel.macs_fused)),
            ] {
                assert!(
                    (r - 1.0).abs() < 0.01,
                    "x{mult} {:?}: {what} ratio {r}",
                    cfg.widths
                );
            }
        }
    }

    #[test]
    fn depth_is_20_against_parnet_12() {
        let model = SequentialParNet::new(cifar(0.25), 0).unwrap();
        assert_eq!(model.blocks.len(), 18);
        assert_eq!(Network::depth(&model), 20);
        let parnet = ParNet::new(cifar(0.25), 0).unwrap();
        assert_eq!(Network::depth(&parnet), 12);
        let strides: Vec<usize> = model.specs.iter().map(|s| s.stride).collect();
        assert_eq!(strides.iter().filter(|&&s| s == 2).count(), 2);
        assert_eq!((strides[4], strides[12]), (2, 2));
    }

    #[test]
    fn forward_shapes_names_and_input_checks() {
        let model = SequentialParNet::new(cifar(0.125), 3).unwrap();
        let out = model.forward(&images(2, 32, 1), Ctx::eval()).unwrap();
        assert_eq!(out.dims(), &[2, 10]);
        assert!(out.data().iter().all(|v| v.is_finite()));
        assert!(model.forward(&images(1, 30, 1), Ctx::eval()).is_err());
        assert!(
            model
                .forward(&Tensor::zeros([1, 1, 32, 32]), Ctx::eval())
                .is_err()
        );
        let mut names = Vec::new();
        model.visit_params(&mut |p| names.push(p.name().to_string()));
        model.visit_buffers(&mut |b| names.push(b.name.clone()));
        for key in [
            "blocks.0.rbr_dense.conv.weight",
            "blocks.4.rbr_1x1.1.conv.weight",
            "blocks.12.se.cvsig.conv.weight",
            "blocks.17.rbr_identity.weight",
            "final.conv.weight",
            "final.bn.running_var",
            "head.fc.bias",
        ] {
            assert!(names.iter().any(|n| n == key), "missing {key}");
        }
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        let imagenet = ParNetConfig::from_name("parnet-s", 10).unwrap();
        assert!(SequentialParNet::new(imagenet, 0).is_err());
    }

    #[test]
    fn training_step_reaches_every_parameter_and_is_deterministic() {
        let run = |seed: u64| {
            let model = SequentialParNet::new(cifar(0.125), seed).unwrap();
            let logits = model.forward(&images(2, 16, 7), Ctx::train(5)).unwrap();
            cross_entropy(&logits, &[3, 8], 0.0)
                .unwrap()
                .backward()
                .unwrap();
            let mut grads = Vec::new();
            model.visit_params(&mut |p| {
                let g = p
                    .grad()
                    .unwrap_or_else(|| panic!("{} has no gradient", p.name()));
                assert!(g.iter().all(|v| v.is_finite()), "{}", p.name());
                grads.extend(g.iter().map(|v| v.to_bits()));
            });
            let out: Vec<u32> = logits.data().iter().map(|v| v.to_bits()).collect();
            (out, grads)
        };
        let (a, b, c) = (run(1), run(1), run(2));
        assert_eq!(a, b, "same seed, same outputs and gradients");
        assert_ne!(a.0, c.0, "another seed gives another model");
    }

    #[test]
    fn fused_model_agrees_in_eval_mode() {
        let model = SequentialParNet::new(cifar(0.125), 4).unwrap();
        perturb_batch_norms(&model, 9);
        let fused = model.fused().unwrap();
        assert!(fused.is_fused() && fused.num_params() < model.num_params());
        let x = images(2, 32, 3);
        let a = model.forward(&x, Ctx::eval()).unwrap();
        let b = fused.forward(&x, Ctx::eval()).unwrap();
        let scale = a.data().iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (u, v) in a.data().iter().zip(b.data()) {
            assert!((u - v).abs() <= 1e-4 * scale + 1e-5, "{u} vs {v}");
        }
    }
}
