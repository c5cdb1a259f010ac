//! How a tensor links into the autograd graph: the node types that a [`Tensor`] holds. The walk
//! over them, and the ops that build them, live above (`autograd`, `ops`).

use std::sync::{Arc, Mutex};

use super::{Buffer, Tensor};

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
