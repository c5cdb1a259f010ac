//! Pooling over the spatial dims of `[N, C, H, W]` tensors: [`avg_pool2d_2x2`] (2x2, stride 2),
//! [`global_avg_pool`] (to `[N, C, 1, 1]`) and [`max_pool2d`] (PyTorch semantics, the ResNet stem).
//!
//! All run on rayon over groups of whole `(n, c)` planes; every output value is computed by one
//! task in a fixed order, so results do not depend on the thread count.

pub mod avg_pool2d;
pub mod global_avg_pool;
pub mod max_pool2d;

pub use avg_pool2d::{
    avg_pool2d_2x2, avg_pool2d_2x2_backward, avg_pool2d_2x2_forward, avg_pool2d_2x2_reference,
};
pub use global_avg_pool::{
    global_avg_pool, global_avg_pool_backward, global_avg_pool_forward, global_avg_pool_reference,
    plane_sum_f64,
};
pub use max_pool2d::{
    MaxPool2dParams, max_pool2d, max_pool2d_backward, max_pool2d_forward, max_pool2d_reference,
};

/// `(n, c, h, w)` of a rank-4 tensor, or a shape error naming `op`.
pub(crate) fn nchw(
    op: &'static str,
    x: &crate::tensor::Tensor,
) -> crate::error::Result<(usize, usize, usize, usize)> {
    x.shape().nchw().ok_or_else(|| {
        crate::error::shape_error(op, "expected a rank-4 [N, C, H, W] tensor", &[x.dims()])
    })
}
