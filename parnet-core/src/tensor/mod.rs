//! `Tensor`: an immutable, shared f32 array with a shape and, when it takes part in training, a
//! link into the autograd graph.
//!
//! A tensor's data never changes after creation; ops return new tensors. Cloning a `Tensor` clones
//! a handle (an `Arc`), not the data. Tensors are `Send + Sync`, so independent parts of a graph
//! can be built and differentiated on different rayon tasks.

mod buffer;
pub(crate) mod graph;
mod shape;

pub use buffer::{
    Buffer, POOL_MIN_LEN, clear_pool, pool_capacity_bytes, pooled_bytes, set_pool_capacity_bytes,
};
pub use shape::Shape;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Result, shape_error};
use graph::{GradSlot, Link};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A shared, immutable f32 tensor (row-major, contiguous).
#[derive(Clone)]
pub struct Tensor {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Creation order; orders gradient contributions deterministically.
    pub(crate) id: u64,
    pub(crate) shape: Shape,
    pub(crate) data: Arc<Buffer>,
    pub(crate) link: Link,
}

impl Tensor {
    pub(crate) fn with_link(data: Arc<Buffer>, shape: Shape, link: Link) -> Tensor {
        debug_assert_eq!(
            data.len(),
            shape.numel(),
            "buffer length must match shape {shape}"
        );
        Tensor {
            inner: Arc::new(Inner {
                id: next_id(),
                shape,
                data,
                link,
            }),
        }
    }

    /// A constant tensor (no gradient is tracked for it).
    pub fn new(data: Buffer, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(shape_error(
                "Tensor::new",
                format!("{} values do not fill the shape", data.len()),
                &[shape.dims()],
            ));
        }
        Ok(Self::with_link(Arc::new(data), shape, Link::Constant))
    }

    /// A constant tensor from a vector.
    pub fn from_vec(data: Vec<f32>, shape: impl Into<Shape>) -> Result<Tensor> {
        Self::new(Buffer::from_vec(data), shape)
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Shape>) -> Tensor {
        let shape = shape.into();
        Self::with_link(
            Arc::new(Buffer::zeros(shape.numel())),
            shape,
            Link::Constant,
        )
    }

    /// A leaf that collects its gradient: after `backward`, read it with [`Tensor::grad`].
    pub fn leaf(data: Buffer, shape: impl Into<Shape>) -> Result<Tensor> {
        let t = Self::new(data, shape)?;
        Ok(t.into_leaf())
    }

    /// The same data as a fresh gradient-collecting leaf.
    pub fn into_leaf(self) -> Tensor {
        Self::with_link(
            self.inner.data.clone(),
            self.inner.shape.clone(),
            Link::Leaf(Arc::new(GradSlot::default())),
        )
    }

    /// The same data, cut from the graph (no gradient flows through it).
    pub fn detach(&self) -> Tensor {
        Self::with_link(
            self.inner.data.clone(),
            self.inner.shape.clone(),
            Link::Constant,
        )
    }

    pub fn shape(&self) -> &Shape {
        &self.inner.shape
    }

    pub fn dims(&self) -> &[usize] {
        self.inner.shape.dims()
    }

    pub fn numel(&self) -> usize {
        self.inner.shape.numel()
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.inner.data
    }

    /// The shared buffer (to build a view of the same data without copying).
    pub fn buffer(&self) -> &Arc<Buffer> {
        &self.inner.data
    }

    /// The values as a new vector.
    pub fn to_vec(&self) -> Vec<f32> {
        self.inner.data.to_vec()
    }

    /// Whether gradients flow back through this tensor.
    pub fn requires_grad(&self) -> bool {
        !matches!(self.inner.link, Link::Constant)
    }

    /// The gradient collected by a leaf, if `backward` has reached it.
    pub fn grad(&self) -> Option<Buffer> {
        match &self.inner.link {
            Link::Leaf(slot) => slot.get(),
            _ => None,
        }
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(shape_error("item", "expected one element", &[self.dims()]));
        }
        Ok(self.data()[0])
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor(shape {}, requires_grad {})",
            self.inner.shape,
            self.requires_grad()
        )
    }
}
