//! The backward walk: reverse topological order, parallel over independent branches.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::profile;
use crate::error::{CoreError, Result};
use crate::kernels::parallel::ELEMENTWISE_CHUNK;
use crate::tensor::graph::{BackwardCtx, GradSlot, Link};
use crate::tensor::{Buffer, Tensor};

/// How [`Tensor::backward_with_options`] walks the graph.
#[derive(Clone, Copy, Debug)]
pub struct BackwardOptions {
    /// Run the backward of independent branches on different rayon tasks (default `true`).
    /// Results are bit-identical either way.
    pub parallel: bool,
}

impl Default for BackwardOptions {
    fn default() -> Self {
        BackwardOptions { parallel: true }
    }
}

/// Identifies one gradient contribution: (consumer's discovery index, input position).
/// Contributions are summed in increasing key order. Discovery indices come from a depth-first
/// walk of the graph from the root (inputs in order), so they depend only on the graph's shape,
/// never on which thread created which tensor first.
type ContributionKey = (usize, usize);

struct NodeState {
    tensor: Tensor,
    /// Position in the deterministic discovery order.
    order: usize,
    /// Contributions still to arrive.
    pending: AtomicUsize,
    contributions: Mutex<Vec<(ContributionKey, Buffer)>>,
}

struct Walk {
    nodes: HashMap<u64, NodeState>,
    leaves: Mutex<Vec<(usize, Arc<GradSlot>, Buffer)>>,
    parallel: bool,
}

impl Tensor {
    /// Backpropagates from a one-element tensor (dLoss/dLoss = 1).
    pub fn backward(&self) -> Result<()> {
        if self.numel() != 1 {
            return Err(CoreError::Autograd(format!(
                "backward() needs a one-element tensor, got shape {}; use backward_with",
                self.shape()
            )));
        }
        self.backward_with_options(Buffer::filled(1, 1.0), BackwardOptions::default())
    }

    /// Backpropagates `grad` (dLoss/dSelf, same length as `self`).
    pub fn backward_with(&self, grad: Buffer) -> Result<()> {
        self.backward_with_options(grad, BackwardOptions::default())
    }

    /// Backpropagates `grad` with explicit walk options.
    pub fn backward_with_options(&self, grad: Buffer, options: BackwardOptions) -> Result<()> {
        if grad.len() != self.numel() {
            return Err(CoreError::Autograd(format!(
                "gradient of length {} for a tensor of shape {}",
                grad.len(),
                self.shape()
            )));
        }
        if !self.requires_grad() {
            return Err(CoreError::Autograd(
                "the tensor does not require a gradient (no parameter or leaf reaches it)".into(),
            ));
        }
        let walk = Walk::new(self, options.parallel);
        walk.deliver(self.inner.id, (0, 0), grad);
        if walk.parallel {
            rayon::in_place_scope(|scope| walk.run_parallel(self.inner.id, scope));
        } else {
            walk.run_sequential(self.inner.id);
        }
        let mut leaves = walk.leaves.into_inner().unwrap_or_else(|e| e.into_inner());
        leaves.sort_by_key(|(order, _, _)| *order);
        for (_, slot, g) in leaves {
            slot.accumulate(&g);
        }
        Ok(())
    }
}

impl Walk {
    fn new(root: &Tensor, parallel: bool) -> Walk {
        let mut nodes: HashMap<u64, NodeState> = HashMap::new();
        let mut stack = vec![root.clone()];
        nodes.insert(root.inner.id, NodeState::new(root.clone(), 0));
        // Root receives one contribution (the seed gradient).
        nodes[&root.inner.id].pending.store(1, Ordering::Relaxed);
        while let Some(t) = stack.pop() {
            if let Link::Op(node) = &t.inner.link {
                for input in node.inputs.iter().filter(|i| i.requires_grad()) {
                    let id = input.inner.id;
                    let next_order = nodes.len();
                    let state = nodes.entry(id).or_insert_with(|| {
                        stack.push(input.clone());
                        NodeState::new(input.clone(), next_order)
                    });
                    *state.pending.get_mut() += 1;
                }
            }
        }
        Walk {
            nodes,
            leaves: Mutex::new(Vec::new()),
            parallel,
        }
    }

    /// Adds a contribution; returns true when the node has all of them.
    fn deliver(&self, id: u64, key: ContributionKey, grad: Buffer) -> bool {
        let state = &self.nodes[&id];
        state
            .contributions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, grad));
        state.pending.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Sums a ready node's contributions in key order.
    fn total_grad(&self, id: u64) -> Buffer {
        let state = &self.nodes[&id];
        let mut parts = std::mem::take(
            &mut *state
                .contributions
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        parts.sort_by_key(|(k, _)| *k);
        let mut parts = parts.into_iter().map(|(_, g)| g);
        let mut total = parts
            .next()
            .expect("a ready node has at least one contribution");
        for g in parts {
            total
                .par_chunks_mut(ELEMENTWISE_CHUNK)
                .zip(g.par_chunks(ELEMENTWISE_CHUNK))
                .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b));
        }
        total
    }

    /// Runs one ready node's backward and returns the inputs that became ready.
    fn step(&self, id: u64) -> Vec<u64> {
        let started = profile::enabled().then(std::time::Instant::now);
        let grad = self.total_grad(id);
        if let Some(start) = started {
            profile::add_backward("gradient sums", start.elapsed());
        }
        let state = &self.nodes[&id];
        let tensor = &state.tensor;
        match &tensor.inner.link {
            Link::Constant => Vec::new(),
            Link::Leaf(slot) => {
                self.leaves.lock().unwrap_or_else(|e| e.into_inner()).push((
                    state.order,
                    slot.clone(),
                    grad,
                ));
                Vec::new()
            }
            Link::Op(node) => {
                let needs: Vec<bool> = node.inputs.iter().map(|t| t.requires_grad()).collect();
                let grads = if node.op.passes_gradient_through() {
                    pass_through(grad, &needs)
                } else {
                    let ctx = BackwardCtx {
                        inputs: &node.inputs,
                        output: tensor,
                        grad_output: &grad,
                        needs: &needs,
                    };
                    let started = profile::enabled().then(std::time::Instant::now);
                    let grads = node.op.backward(&ctx);
                    if let Some(start) = started {
                        profile::add_backward(node.op.name(), start.elapsed());
                    }
                    grads
                };
                assert_eq!(
                    grads.len(),
                    node.inputs.len(),
                    "{}: backward returned the wrong number of gradients",
                    node.op.name()
                );
                let mut ready = Vec::new();
                for (pos, (input, g)) in node.inputs.iter().zip(grads).enumerate() {
                    if !input.requires_grad() {
                        continue;
                    }
                    let g = g.unwrap_or_else(|| {
                        panic!("{}: no gradient for input {pos}", node.op.name())
                    });
                    assert_eq!(
                        g.len(),
                        input.numel(),
                        "{}: gradient {pos} has the wrong length",
                        node.op.name()
                    );
                    if self.deliver(input.inner.id, (state.order, pos), g) {
                        ready.push(input.inner.id);
                    }
                }
                ready
            }
        }
    }

    fn run_sequential(&self, root: u64) {
        let mut ready = vec![root];
        while let Some(id) = ready.pop() {
            let mut next = self.step(id);
            // Any visit order gives the same sums (contributions are keyed); keep one anyway.
            next.sort_unstable();
            ready.extend(next);
        }
    }

    fn run_parallel<'s>(&'s self, root: u64, scope: &rayon::Scope<'s>) {
        let mut current = Some(root);
        while let Some(id) = current {
            let mut next = self.step(id);
            // Continue on this task with one branch, hand the others to the pool.
            current = next.pop();
            for other in next {
                scope.spawn(move |s| self.run_parallel(other, s));
            }
        }
    }
}

/// The input gradients of an op that passes dLoss/dOutput through: the last input that needs a
/// gradient takes `grad`, the others get copies.
fn pass_through(grad: Buffer, needs: &[bool]) -> Vec<Option<Buffer>> {
    let last = needs.iter().rposition(|&n| n);
    let mut grad = Some(grad);
    needs
        .iter()
        .enumerate()
        .map(|(i, &need)| match (need, Some(i) == last) {
            (false, _) => None,
            (true, false) => grad.as_deref().map(Buffer::from_slice),
            (true, true) => grad.take(),
        })
        .collect()
}

impl NodeState {
    fn new(tensor: Tensor, order: usize) -> NodeState {
        NodeState {
            tensor,
            order,
            pending: AtomicUsize::new(0),
            contributions: Mutex::new(Vec::new()),
        }
    }
}
