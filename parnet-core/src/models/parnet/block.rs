//! The generic ParNet block (spec 2.2), in its training form (3x3 conv+BN, 1x1 conv+BN) and its
//! reparameterized form (one 3x3 conv with bias, spec 5).

use super::config::Activation;
use super::plan::BlockSpec;
use crate::Param;
use crate::error::Result;
use crate::exec::graph::{Affine, Epilogue, GateOn, GraphBuilder, Residual, ValueId};
use crate::nn::{BatchNorm2d, Conv2d, ConvBn, Ctx, Init, Module, StateBuffer, join_name};
use crate::ops::activation::sigmoid;
use crate::ops::batch_norm::batch_norm2d_train_gap_synced;
use crate::ops::conv2d::Conv2dParams;
use crate::ops::elementwise::{mul_channel, scale};
use crate::ops::pool::{avg_pool2d_2x2, global_avg_pool};
use crate::ops::rep_merge::{BnParams, IdentityBranch, rep_merge_train_synced};
use crate::ops::{add, channel::channel_shuffle};
use crate::reparam;
use crate::tensor::Tensor;

/// The conv branches of a block. (The deploy form is smaller; blocks are few, so no boxing.)
#[allow(clippy::large_enum_variant)]
pub enum Branches {
    /// Training form: `rbr_dense` (3x3 conv+BN) and `rbr_1x1` (1x1 conv+BN, after a 2x2 average
    /// pool when the stride is 2; key `rbr_1x1.1.*` then, as in the official code).
    Train { dense: ConvBn, one_by_one: ConvBn },
    /// Deploy form: `rbr_reparam`, one 3x3 conv with bias.
    Fused { conv: Conv2d },
}

/// One block: conv branches, optional gated identity BN (case A), SE gate, activation, and a
/// channel shuffle after the activation when grouped.
pub struct RepBlock {
    pub spec: BlockSpec,
    pub branches: Branches,
    /// `rbr_identity`: present exactly in case A.
    pub identity: Option<BatchNorm2d>,
    /// `se.cvsig.conv`: 1x1, no bias, groups as the block.
    pub se: Conv2d,
    pub activation: Activation,
    /// Gate factor of case B (2 as in the official code, or 1).
    pub gate_factor: f32,
}

impl RepBlock {
    pub fn new(
        spec: &BlockSpec,
        activation: Activation,
        double_gate: bool,
        init: Init,
    ) -> Result<RepBlock> {
        let p = |name: &str| join_name(&spec.prefix, name);
        let dense = ConvBn::new(
            &p("rbr_dense"),
            spec.cin,
            spec.cout,
            3,
            Conv2dParams::new(spec.stride, 1, spec.groups),
            init,
        )?;
        let one_prefix = if spec.stride == 1 {
            p("rbr_1x1")
        } else {
            p("rbr_1x1.1")
        };
        let one_by_one = ConvBn::new(
            &one_prefix,
            spec.cin,
            spec.cout,
            1,
            Conv2dParams::new(1, 0, spec.groups),
            init,
        )?;
        let identity = if spec.has_identity() {
            Some(BatchNorm2d::new(&p("rbr_identity"), spec.cin)?)
        } else {
            None
        };
        let se = Conv2d::new(
            &p("se.cvsig.conv"),
            spec.cin,
            spec.cout,
            1,
            Conv2dParams::new(1, 0, spec.groups),
            false,
            init,
        )?;
        Ok(RepBlock {
            spec: spec.clone(),
            branches: Branches::Train { dense, one_by_one },
            identity,
            se,
            activation,
            gate_factor: if double_gate { 2.0 } else { 1.0 },
        })
    }

    /// `x [N, cin, H, W]` -> `[N, cout, H/s, W/s]`.
    pub fn forward(&self, x: &Tensor, ctx: Ctx) -> Result<Tensor> {
        if let (true, Branches::Train { dense, one_by_one }) = (ctx.train, &self.branches) {
            return self.forward_train_merged(x, dense, one_by_one, ctx);
        }
        let convs = match &self.branches {
            Branches::Train { dense, one_by_one } => {
                let d = dense.forward(x, ctx)?;
                let pooled;
                let one_in = if self.spec.stride == 2 {
                    pooled = avg_pool2d_2x2(x)?;
                    &pooled
                } else {
                    x
                };
                add(&d, &one_by_one.forward(one_in, ctx)?)?
            }
            Branches::Fused { conv } => conv.forward(x, ctx.track_grad)?,
        };
        let y = match &self.identity {
            // Case A: the gate multiplies the BN'd identity only; its GAP is of the BN output.
            Some(bn) => {
                let i = bn.forward(x, ctx)?;
                let gate = sigmoid(&self.se.forward(&global_avg_pool(&i)?, ctx.track_grad)?);
                add(&convs, &mul_channel(&i, &gate)?)?
            }
            // Case B: the gate multiplies the conv sum; its GAP is of the raw input.
            None => {
                let mut gate = sigmoid(&self.se.forward(&global_avg_pool(x)?, ctx.track_grad)?);
                if self.gate_factor != 1.0 {
                    gate = scale(&gate, self.gate_factor);
                }
                mul_channel(&convs, &gate)?
            }
        };
        let y = self.activation.apply(&y);
        if self.spec.groups > 1 {
            channel_shuffle(&y, 2)
        } else {
            Ok(y)
        }
    }

    /// The training forward with batch statistics: the two convolutions, the SSE gate, then one
    /// fused op for the normalisations, the gating, the sum and the activation
    /// ([`rep_merge_train_synced`]); the same values as the op-by-op forward above.
    fn forward_train_merged(
        &self,
        x: &Tensor,
        dense: &ConvBn,
        one_by_one: &ConvBn,
        ctx: Ctx,
    ) -> Result<Tensor> {
        let track = ctx.track_grad;
        let d = dense.conv.forward(x, track)?;
        let one = if self.spec.stride == 2 {
            one_by_one.conv.forward(&avg_pool2d_2x2(x)?, track)?
        } else {
            one_by_one.conv.forward(x, track)?
        };
        let (dense_gamma, dense_beta) = dense.bn.affine_params(track);
        let (one_gamma, one_beta) = one_by_one.bn.affine_params(track);
        fn bn_params<'a>(
            (gamma, beta): (&'a Tensor, &'a Tensor),
            bn: &BatchNorm2d,
        ) -> BnParams<'a> {
            BnParams {
                gamma,
                beta,
                eps: bn.eps,
            }
        }
        // Case A: the gate multiplies the BN'd identity, and its GAP is of the BN output (whose
        // batch moments the merge reuses). Case B: the gate multiplies the conv sum, and its GAP
        // is of the raw input.
        let identity = match &self.identity {
            Some(bn) => {
                let (gamma, beta) = bn.affine_params(track);
                let (gap, moments) =
                    batch_norm2d_train_gap_synced(x, &gamma, &beta, bn.eps, ctx.batch_sync)?;
                bn.record_batch(&moments.stats);
                Some((bn, gamma, beta, gap, moments))
            }
            None => None,
        };
        let gate = match &identity {
            Some((.., gap, _)) => sigmoid(&self.se.forward(gap, track)?),
            None => {
                let gate = sigmoid(&self.se.forward(&global_avg_pool(x)?, track)?);
                if self.gate_factor != 1.0 {
                    scale(&gate, self.gate_factor)
                } else {
                    gate
                }
            }
        };
        let (y, stats) = rep_merge_train_synced(
            &d,
            bn_params((&dense_gamma, &dense_beta), &dense.bn),
            &one,
            bn_params((&one_gamma, &one_beta), &one_by_one.bn),
            &gate,
            identity
                .as_ref()
                .map(|(bn, gamma, beta, _, moments)| IdentityBranch {
                    x,
                    bn: bn_params((gamma, beta), bn),
                    moments,
                }),
            self.activation,
            ctx.batch_sync,
        )?;
        dense.bn.record_batch(&stats[0]);
        one_by_one.bn.record_batch(&stats[1]);
        if self.spec.groups > 1 {
            channel_shuffle(&y, 2)
        } else {
            Ok(y)
        }
    }

    /// Whether this block is in deploy form.
    pub fn is_fused(&self) -> bool {
        matches!(self.branches, Branches::Fused { .. })
    }

    /// The deploy form: `rbr_reparam` (3x3 conv with bias) replaces `rbr_dense` and `rbr_1x1`
    /// ([`reparam::merge_branches`]); identity BN and SE are copied. A fused block is returned as
    /// a copy.
    pub fn fused(&self) -> Result<RepBlock> {
        let spec = &self.spec;
        let conv = match &self.branches {
            Branches::Fused { conv } => conv.deep_clone(),
            Branches::Train { dense, one_by_one } => reparam::merge_branches(
                &join_name(&spec.prefix, "rbr_reparam"),
                dense,
                one_by_one,
                spec.stride,
                spec.groups,
            )?,
        };
        Ok(RepBlock {
            spec: spec.clone(),
            branches: Branches::Fused { conv },
            identity: self.identity.as_ref().map(|bn| bn.deep_clone()),
            se: self.se.deep_clone(),
            activation: self.activation,
            gate_factor: self.gate_factor,
        })
    }
}

impl RepBlock {
    /// Appends the deploy block to `g` on input `x` (spec 2.2 and 5): the SE gate, then the
    /// reparameterized conv whose epilogue adds the gated identity BN (case A) or gates the sum
    /// (case B) and applies the activation; then the shuffle of a grouped block.
    pub fn lower(&self, g: &mut GraphBuilder, x: ValueId) -> Result<ValueId> {
        let Branches::Fused { conv } = &self.branches else {
            return Err(not_deploy(&self.spec.prefix));
        };
        let spec = &self.spec;
        let se = self.se.weight.to_vec();
        let epilogue = match &self.identity {
            Some(bn) => {
                let affine = Affine::from_f64(bn.eval_affine());
                let gate = g.se_gate(x, Some(affine.clone()), se, (spec.cout, spec.groups), 1.0)?;
                Epilogue {
                    gate: Some((gate, GateOn::Residual)),
                    residual: Some(Residual {
                        value: x,
                        affine: Some(affine),
                    }),
                    activation: Some(self.activation),
                }
            }
            None => {
                let gate = g.se_gate(x, None, se, (spec.cout, spec.groups), self.gate_factor)?;
                Epilogue {
                    gate: Some((gate, GateOn::Sum)),
                    residual: None,
                    activation: Some(self.activation),
                }
            }
        };
        let bias = conv
            .bias
            .as_ref()
            .map_or(vec![0.0; spec.cout], |b| b.to_vec());
        let y = g.conv(
            x,
            conv.weight.to_vec(),
            bias,
            (spec.cout, 3, 3),
            spec.stride,
            1,
            spec.groups,
            epilogue,
        )?;
        if spec.groups > 1 {
            g.shuffle(y, spec.groups)
        } else {
            Ok(y)
        }
    }
}

/// The error of lowering a training-form layer.
pub(crate) fn not_deploy(what: &str) -> crate::error::CoreError {
    crate::error::invalid(
        "exec",
        format!("{what} is in training form; the executor runs the deploy form (Network::deploy)"),
    )
}

impl Module for RepBlock {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        match &self.branches {
            Branches::Train { dense, one_by_one } => {
                dense.visit_params(f);
                one_by_one.visit_params(f);
            }
            Branches::Fused { conv } => conv.visit_params(f),
        }
        if let Some(bn) = &self.identity {
            bn.visit_params(f);
        }
        self.se.visit_params(f);
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&StateBuffer)) {
        if let Branches::Train { dense, one_by_one } = &self.branches {
            dense.visit_buffers(f);
            one_by_one.visit_buffers(f);
        }
        if let Some(bn) = &self.identity {
            bn.visit_buffers(f);
        }
    }
}
