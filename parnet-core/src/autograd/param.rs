//! `Param`: a named, trainable tensor that an optimiser updates in place.

use std::sync::{Arc, RwLock};

use crate::error::{Result, shape_error};
use crate::tensor::graph::{GradSlot, Link};
use crate::tensor::{Buffer, Shape, Tensor};

/// A handle to a trainable parameter; clones share the same storage and gradient.
#[derive(Clone)]
pub struct Param {
    inner: Arc<ParamInner>,
}

struct ParamInner {
    name: String,
    shape: Shape,
    value: RwLock<Arc<Buffer>>,
    slot: Arc<GradSlot>,
}

impl Param {
    /// A parameter holding `data` (its length must match `shape`).
    pub fn new(name: impl Into<String>, data: Buffer, shape: impl Into<Shape>) -> Result<Param> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(shape_error(
                "Param::new",
                format!("{} values do not fill the shape", data.len()),
                &[shape.dims()],
            ));
        }
        Ok(Param {
            inner: Arc::new(ParamInner {
                name: name.into(),
                shape,
                value: RwLock::new(Arc::new(data)),
                slot: Arc::new(GradSlot::default()),
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn shape(&self) -> &Shape {
        &self.inner.shape
    }

    pub fn numel(&self) -> usize {
        self.inner.shape.numel()
    }

    /// The current value as a leaf of the graph: gradients flowing into it accumulate here.
    pub fn tensor(&self) -> Tensor {
        let data = self
            .inner
            .value
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Tensor::with_link(
            data,
            self.inner.shape.clone(),
            Link::Leaf(self.inner.slot.clone()),
        )
    }

    /// The current value as a constant (inference: nothing is recorded).
    pub fn detached(&self) -> Tensor {
        let data = self
            .inner
            .value
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Tensor::with_link(data, self.inner.shape.clone(), Link::Constant)
    }

    /// The value in graph mode (`track = true`) or as a constant.
    pub fn get(&self, track: bool) -> Tensor {
        if track {
            self.tensor()
        } else {
            self.detached()
        }
    }

    /// A copy of the accumulated gradient, if any.
    pub fn grad(&self) -> Option<Buffer> {
        self.inner.slot.get()
    }

    /// Changes the accumulated gradient in place (e.g. clipping); no-op without a gradient.
    pub fn update_grad(&self, f: impl FnOnce(&mut [f32])) {
        self.inner.slot.with_mut(|g| {
            if let Some(g) = g {
                f(g)
            }
        });
    }

    /// Forgets the accumulated gradient.
    pub fn zero_grad(&self) {
        self.inner.slot.clear();
    }

    /// A copy of the current value.
    pub fn to_vec(&self) -> Vec<f32> {
        self.inner
            .value
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .to_vec()
    }

    /// Updates the value in place: `f(value, grad)`. The storage is copied first only if a graph
    /// built from the old value is still alive, so a tensor already handed out never changes.
    pub fn update(&self, f: impl FnOnce(&mut [f32], Option<&[f32]>)) {
        let mut value = self.inner.value.write().unwrap_or_else(|e| e.into_inner());
        let data = Arc::make_mut(&mut value);
        self.inner.slot.with(|g| f(data, g));
    }

    /// Replaces the value (e.g. when loading weights); the length must match.
    pub fn set(&self, data: &[f32]) -> Result<()> {
        if data.len() != self.numel() {
            return Err(shape_error(
                "Param::set",
                format!("{}: {} values given", self.name(), data.len()),
                &[self.inner.shape.dims()],
            ));
        }
        self.update(|v, _| v.copy_from_slice(data));
        Ok(())
    }
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({}, {})", self.inner.name, self.inner.shape)
    }
}
