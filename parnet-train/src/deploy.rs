//! Running deploy-form networks on the executor (`parnet_core::exec`), planned once per input
//! shape (a data set's last, smaller batch gets its own plan).

use std::collections::HashMap;

use anyhow::Result;
use parnet_core::Tensor;
use parnet_core::exec::{ExecOptions, Executor};
use parnet_core::models::Network;
use parnet_core::nn::Ctx;

use crate::limits::{Pass, check_activations_fit, exec_options};

/// A network and the executors planned for it so far.
pub struct DeployRunner<'a> {
    model: &'a dyn Network,
    options: ExecOptions,
    plans: HashMap<[usize; 4], Executor>,
}

impl<'a> DeployRunner<'a> {
    pub fn new(model: &'a dyn Network, options: ExecOptions) -> Self {
        DeployRunner {
            model,
            options,
            plans: HashMap::new(),
        }
    }

    /// Logits `[N, classes]` of `x` (`[N, 3, H, W]`), planning the shape on first sight.
    pub fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        let dims: [usize; 4] = x.dims().try_into().map_err(|_| {
            anyhow::anyhow!("expected images of shape [N, 3, H, W], got {:?}", x.dims())
        })?;
        let exec = match self.plans.entry(dims) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let exec = self
                    .model
                    .executor(dims[0], (dims[2], dims[3]), &self.options)?;
                e.insert(exec)
            }
        };
        Ok(exec.forward(x)?)
    }
}

/// The forward of `parnet infer` and `parnet eval`: the executor for deploy-form networks, the
/// autograd graph's eval mode for training-form ones (their exact training-time function).
pub enum Forward<'a> {
    Executor(DeployRunner<'a>),
    /// The network and the input shapes whose activations were found to fit in memory.
    Graph(&'a dyn Network, Vec<[usize; 4]>),
}

impl<'a> Forward<'a> {
    pub fn for_model(model: &'a dyn Network) -> Self {
        if model.is_deploy() {
            Forward::Executor(DeployRunner::new(model, exec_options()))
        } else {
            Forward::Graph(model, Vec::new())
        }
    }

    pub fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        match self {
            Forward::Executor(r) => r.forward(x),
            Forward::Graph(m, checked) => {
                if let &[n, _, h, w] = x.dims()
                    && !checked.contains(&[n, 3, h, w])
                {
                    check_activations_fit(*m, n, (h, w), Pass::Inference)?;
                    checked.push([n, 3, h, w]);
                }
                Ok(m.forward(x, Ctx::eval())?)
            }
        }
    }

    /// `executor` or `graph`, for reports.
    pub fn engine(&self) -> &'static str {
        match self {
            Forward::Executor(_) => "executor",
            Forward::Graph(..) => "graph",
        }
    }
}
