//! Gradient clipping by global norm (PyTorch's `clip_grad_norm_`).

use crate::nn::Module;

/// Scales all gradients of `model` so that their global L2 norm is at most `max_norm` (by
/// `max_norm / (norm + 1e-6)`, as PyTorch does); returns the norm before clipping. The squares
/// are summed in f64 in visit order.
pub fn clip_grad_norm(model: &dyn Module, max_norm: f32) -> f32 {
    let mut sq = 0.0f64;
    model.visit_params(&mut |p| {
        if let Some(g) = p.grad() {
            sq += g.iter().map(|&v| v as f64 * v as f64).sum::<f64>();
        }
    });
    let norm = sq.sqrt() as f32;
    if norm > max_norm {
        let f = max_norm / (norm + 1e-6);
        model.visit_params(&mut |p| p.update_grad(|g| g.iter_mut().for_each(|v| *v *= f)));
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::clip_grad_norm;
    use crate::Tensor;
    use crate::nn::{Init, Linear, Module};
    use crate::ops::reduce::sum;

    /// A 2 -> 1 linear layer whose gradients after `sum(layer([[2, 2]]))` are dW = [2, 2],
    /// db = [1]: global norm 3.
    fn layer_with_gradients() -> Linear {
        let layer = Linear::new("fc", 2, 1, Init::new(0)).unwrap();
        let x = Tensor::from_vec(vec![2.0, 2.0], [1, 2]).unwrap();
        sum(&layer.forward(&x, true).unwrap()).backward().unwrap();
        layer
    }

    fn grads(layer: &Linear) -> Vec<f32> {
        let mut out = Vec::new();
        layer.visit_params(&mut |p| out.extend(p.grad().unwrap().iter().copied()));
        out
    }

    #[test]
    fn gradient_clipping_scales_to_the_max_norm_and_leaves_small_gradients() {
        let layer = layer_with_gradients();
        assert_eq!(grads(&layer), [2.0, 2.0, 1.0]);
        clip_grad_norm(&layer, 10.0);
        assert_eq!(grads(&layer), [2.0, 2.0, 1.0]);
        // Norm 3 clipped to 1.5: every gradient halves (up to the 1e-6 guard).
        clip_grad_norm(&layer, 1.5);
        let clipped = grads(&layer);
        for (got, want) in clipped.iter().zip([1.0f32, 1.0, 0.5]) {
            assert!((got - want).abs() < 1e-6, "{clipped:?}");
        }
    }
}
