//! `Linear`: `y = x·Wᵀ + b` (PyTorch layout and default initialisation).

use super::{Init, Module, join_name};
use crate::Param;
use crate::error::Result;
use crate::ops::linear::linear;
use crate::tensor::Tensor;

/// Weight `[out, in]` (key `<prefix>.weight`), bias `[out]` (`<prefix>.bias`).
pub struct Linear {
    pub weight: Param,
    pub bias: Param,
    pub in_features: usize,
    pub out_features: usize,
}

impl Linear {
    /// PyTorch's default init: weight and bias U(±1/sqrt(in)).
    pub fn new(
        prefix: &str,
        in_features: usize,
        out_features: usize,
        init: Init,
    ) -> Result<Linear> {
        let bound = 1.0 / (in_features as f32).sqrt();
        let w_name = join_name(prefix, "weight");
        let b_name = join_name(prefix, "bias");
        Ok(Linear {
            weight: Param::new(
                w_name.clone(),
                init.uniform(&w_name, in_features * out_features, bound),
                [out_features, in_features],
            )?,
            bias: Param::new(
                b_name.clone(),
                init.uniform(&b_name, out_features, bound),
                [out_features],
            )?,
            in_features,
            out_features,
        })
    }

    /// x `[N, in]` -> `[N, out]`.
    pub fn forward(&self, x: &Tensor, track: bool) -> Result<Tensor> {
        linear(x, &self.weight.get(track), Some(&self.bias.get(track)))
    }
}

impl Module for Linear {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        f(&self.weight);
        f(&self.bias);
    }
}

impl Linear {
    /// An independent copy.
    pub fn deep_clone(&self) -> Linear {
        Linear {
            weight: super::copy_param(&self.weight),
            bias: super::copy_param(&self.bias),
            ..*self
        }
    }
}
