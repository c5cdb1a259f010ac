//! Reverse-mode automatic differentiation.
//!
//! Every tensor produced by an op on a tensor that requires a gradient keeps a [`Link::Op`]: the
//! op's [`BackwardOp`] (holding whatever the backward needs) and the input tensors. A tensor whose
//! inputs are all constant is itself constant and keeps nothing, so a forward pass over detached
//! parameters (inference mode) records no graph and holds no activations.
//!
//! [`Tensor::backward`] walks the graph from a root in reverse topological order. Gradients that
//! reach a tensor from several consumers are summed in the order of the consumers' creation, never
//! in the order they arrive, so the parallel walk (independent branches on different rayon tasks)
//! and the sequential walk give bit-identical results.

mod backward;
mod param;
pub mod profile;

pub use backward::BackwardOptions;
pub use param::Param;

pub use crate::tensor::graph::{BackwardCtx, BackwardOp};

use std::sync::Arc;

use crate::tensor::graph::{Link, OpNode};
use crate::tensor::{Buffer, Shape, Tensor};

impl Tensor {
    /// The output of an op. The backward state is built (by `make_op`) only when one of the inputs
    /// requires a gradient; otherwise the result is a constant and nothing is kept.
    pub fn from_op<O: BackwardOp + 'static>(
        data: Buffer,
        shape: impl Into<Shape>,
        inputs: &[&Tensor],
        make_op: impl FnOnce() -> O,
    ) -> Tensor {
        let shape = shape.into();
        let link = if inputs.iter().any(|t| t.requires_grad()) {
            let op = make_op();
            if profile::enabled() {
                profile::mark_forward(op.name());
            }
            Link::Op(OpNode {
                op: Box::new(op),
                inputs: inputs.iter().map(|t| (*t).clone()).collect(),
            })
        } else {
            Link::Constant
        };
        Tensor::with_link(Arc::new(data), shape, link)
    }
}
