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

use std::sync::{Arc, Mutex};

use crate::tensor::{Buffer, Shape, Tensor};

/// How a tensor is connected to the graph.
pub(crate) enum Link {
    /// No gradient flows here.
    Constant,
    /// A leaf (parameter or user input) that collects its gradient in the slot.
    Leaf(Arc<GradSlot>),
    /// The result of an op on tensors of which at least one requires a gradient.
    Op(OpNode),
}

pub(crate) struct OpNode {
    pub(crate) op: Box<dyn BackwardOp>,
    pub(crate) inputs: Vec<Tensor>,
}

/// Where a leaf's gradient accumulates (across several `backward` calls, as in PyTorch).
#[derive(Default)]
pub(crate) struct GradSlot {
    grad: Mutex<Option<Buffer>>,
}

impl GradSlot {
    pub(crate) fn accumulate(&self, g: &[f32]) {
        let mut slot = self.grad.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_mut() {
            Some(acc) => acc.iter_mut().zip(g).for_each(|(a, b)| *a += b),
            None => *slot = Some(Buffer::from_slice(g)),
        }
    }

    pub(crate) fn get(&self) -> Option<Buffer> {
        self.grad.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(Option<&[f32]>) -> R) -> R {
        let slot = self.grad.lock().unwrap_or_else(|e| e.into_inner());
        f(slot.as_deref())
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(Option<&mut [f32]>) -> R) -> R {
        let mut slot = self.grad.lock().unwrap_or_else(|e| e.into_inner());
        f(slot.as_deref_mut())
    }

    pub(crate) fn clear(&self) {
        *self.grad.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// What a backward function is given.
pub struct BackwardCtx<'a> {
    /// The op's inputs, in the order the op received them.
    pub inputs: &'a [Tensor],
    /// The op's output (its value, e.g. for sigmoid's backward).
    pub output: &'a Tensor,
    /// dLoss/dOutput, same length as the output.
    pub grad_output: &'a [f32],
    pub(crate) needs: &'a [bool],
}

impl BackwardCtx<'_> {
    /// Whether input `i` wants a gradient (skip computing it otherwise).
    pub fn needs_grad(&self, i: usize) -> bool {
        self.needs[i]
    }
}

/// The backward half of an op: from dLoss/dOutput to dLoss/dInput for every input.
pub trait BackwardOp: Send + Sync {
    fn name(&self) -> &'static str;

    /// One entry per input: `Some(grad)` (same length as the input) where
    /// [`BackwardCtx::needs_grad`] is true, `None` elsewhere.
    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>>;

    /// True when every input's gradient is dLoss/dOutput itself (same length), as for `add`. The
    /// walk then hands the output's gradient buffer to the last input that needs one and copies
    /// it for the others, instead of calling [`backward`](Self::backward).
    fn passes_gradient_through(&self) -> bool {
        false
    }
}

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

#[cfg(test)]
mod tests;
