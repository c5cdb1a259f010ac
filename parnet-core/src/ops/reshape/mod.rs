//! Reshape: the same values under another shape (no copy; the gradient is reshaped back).

use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, shape_error};
use crate::tensor::graph::{Link, OpNode};
use crate::tensor::{Buffer, Shape, Tensor};

impl Tensor {
    /// The same data under another shape with the same number of elements (no copy); see
    /// [`reshape`].
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        reshape(self, shape.into())
    }
}

/// `x` viewed as `shape` (same number of elements). The data is shared, not copied.
pub fn reshape(x: &Tensor, shape: Shape) -> Result<Tensor> {
    if shape.numel() != x.numel() {
        return Err(shape_error(
            "reshape",
            "element counts differ",
            &[x.dims(), shape.dims()],
        ));
    }
    let link = if x.requires_grad() {
        Link::Op(OpNode {
            op: Box::new(ReshapeBackward),
            inputs: vec![x.clone()],
        })
    } else {
        Link::Constant
    };
    Ok(Tensor::with_link(x.buffer().clone(), shape, link))
}

struct ReshapeBackward;

impl BackwardOp for ReshapeBackward {
    fn name(&self) -> &'static str {
        "reshape"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        vec![Some(Buffer::from_slice(ctx.grad_output))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn reshape_shares_data_and_passes_gradient() {
        let x = random_values(24, 1.0, 1);
        check_gradients(
            "reshape",
            &[GradInput::new(x.clone(), &[2, 3, 4])],
            |t| t[0].reshape([6, 4]).unwrap(),
            |v| v[0].clone(),
            GradTolerance::default(),
            2,
        );
        let t = Tensor::from_vec(to_f32(&x), [2, 3, 4]).unwrap();
        let r = t.reshape([4, 6]).unwrap();
        assert!(std::sync::Arc::ptr_eq(t.buffer(), r.buffer()));
        assert!(t.reshape([5, 5]).is_err());
    }
}
