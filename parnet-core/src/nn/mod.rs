//! Layers: parameters plus the op calls that use them.
//!
//! A layer owns [`Param`]s (trainable, named with the official state-dict keys) and
//! [`StateBuffer`]s (BN running statistics). A forward pass takes a [`Ctx`] that says whether the
//! model trains (batch statistics, dropout) and whether a graph is recorded.

mod batch_norm;
mod conv;
mod conv_bn;
mod init;
mod linear;
pub mod state;
#[doc(hidden)]
pub mod testing;

pub use batch_norm::BatchNorm2d;
pub use conv::Conv2d;
pub use conv_bn::ConvBn;
pub use init::Init;
pub use linear::Linear;

use std::sync::{Arc, Mutex};

use crate::Param;
use crate::replicas::BatchSync;
use crate::tensor::Shape;

/// How a forward pass runs.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// Training behaviour: BN uses (and updates) batch statistics, dropout drops.
    pub train: bool,
    /// Record the autograd graph (parameters enter as leaves). Off for inference.
    pub track_grad: bool,
    /// Run independent streams on concurrent rayon tasks (results are identical either way).
    pub parallel_streams: bool,
    /// Seed of this step's random choices (dropout masks).
    pub seed: u64,
    /// Training batch norms take the statistics of the global batch of these replicas
    /// (synchronised batch norm), or of this batch alone (`None`).
    pub batch_sync: BatchSync,
    /// Index of this batch's first image in the global batch of a data-parallel step (0 on
    /// one process): dropout draws the masks the global batch would.
    pub first_sample: usize,
}

impl Ctx {
    /// Training step: batch statistics, dropout, graph recorded, streams in parallel.
    pub fn train(seed: u64) -> Ctx {
        Ctx {
            train: true,
            track_grad: true,
            parallel_streams: true,
            seed,
            batch_sync: None,
            first_sample: 0,
        }
    }

    /// Inference: running statistics, no dropout, no graph.
    pub fn eval() -> Ctx {
        Ctx {
            train: false,
            track_grad: false,
            parallel_streams: true,
            seed: 0,
            batch_sync: None,
            first_sample: 0,
        }
    }

    /// The same context with a derived seed, so that different layers draw different masks.
    pub fn with_seed_offset(self, offset: u64) -> Ctx {
        let mixed = (self.seed ^ offset.wrapping_mul(0x9E37_79B9_7F4A_7C15)).rotate_left(17);
        Ctx {
            seed: mixed,
            ..self
        }
    }
}

/// Non-trainable state saved with the weights (BN running mean and variance).
#[derive(Clone)]
pub struct StateBuffer {
    pub name: String,
    pub shape: Shape,
    /// Stored as int64 in weight files (BN's `num_batches_tracked`, a scalar).
    pub integer: bool,
    pub data: Arc<Mutex<Vec<f32>>>,
}

impl StateBuffer {
    /// A float vector of shape `[len]`.
    pub fn new(name: String, data: Vec<f32>) -> StateBuffer {
        let shape = Shape::new(vec![data.len()]);
        StateBuffer {
            name,
            shape,
            integer: false,
            data: Arc::new(Mutex::new(data)),
        }
    }

    /// An integer counter of shape `[]`.
    pub fn counter(name: String) -> StateBuffer {
        StateBuffer {
            name,
            shape: Shape::new(Vec::new()),
            integer: true,
            data: Arc::new(Mutex::new(vec![0.0])),
        }
    }

    pub fn get(&self) -> Vec<f32> {
        self.data.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, values: &[f32]) {
        let mut d = self.data.lock().unwrap_or_else(|e| e.into_inner());
        d.copy_from_slice(values);
    }
}

/// Something holding named parameters and state.
pub trait Module {
    /// Calls `f` on every parameter, in a fixed order.
    fn visit_params(&self, f: &mut dyn FnMut(&Param));
    /// Calls `f` on every state buffer, in a fixed order.
    fn visit_buffers(&self, _f: &mut dyn FnMut(&StateBuffer)) {}

    /// All parameters, in visit order.
    fn params(&self) -> Vec<Param> {
        let mut out = Vec::new();
        self.visit_params(&mut |p| out.push(p.clone()));
        out
    }

    /// Number of trainable values.
    fn num_params(&self) -> usize {
        let mut n = 0;
        self.visit_params(&mut |p| n += p.numel());
        n
    }

    /// Forgets every accumulated gradient.
    fn zero_grad(&self) {
        self.visit_params(&mut |p| p.zero_grad());
    }
}

/// Joins a key prefix and a name with a dot (`""` prefix gives the name alone).
pub fn join_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A parameter with the same name and a copy of the values (independent storage).
pub fn copy_param(p: &Param) -> Param {
    Param::new(
        p.name(),
        crate::tensor::Buffer::from_vec(p.to_vec()),
        p.shape().clone(),
    )
    .expect("a copy has the original's shape")
}
