//! SGD with momentum, Nesterov and weight decay, exactly as `torch.optim.SGD`.

use crate::Param;
use crate::error::{Result, invalid};
use crate::nn::state::NamedTensor;

/// Hyper-parameters of [`Sgd`] (the learning rate is given at each step by the schedule).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub momentum: f32,
    pub dampening: f32,
    pub nesterov: bool,
    pub weight_decay: f32,
}

impl Default for SgdConfig {
    /// The official ImageNet recipe: momentum 0.9, Nesterov, weight decay 1e-4 (spec 7.1).
    fn default() -> Self {
        SgdConfig {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: true,
            weight_decay: 1e-4,
        }
    }
}

/// Whether weight decay applies to a parameter: not to 1-D tensors (BN γ/β, biases) nor to
/// anything named `*.bias`, as timm's `add_weight_decay` in the official recipe.
pub fn decays(p: &Param) -> bool {
    p.shape().rank() > 1 && !p.name().ends_with(".bias")
}

/// One optimiser over a fixed list of parameters.
pub struct Sgd {
    pub config: SgdConfig,
    params: Vec<Param>,
    decay: Vec<bool>,
    /// Momentum buffers, created on the first step as in PyTorch.
    momentum: Vec<Option<Vec<f32>>>,
}

impl Sgd {
    /// Weight decay where [`decays`] says so.
    pub fn new(params: Vec<Param>, config: SgdConfig) -> Result<Sgd> {
        if config.nesterov && (config.momentum <= 0.0 || config.dampening != 0.0) {
            return Err(invalid(
                "sgd",
                "Nesterov momentum needs momentum > 0 and dampening 0",
            ));
        }
        if config.momentum < 0.0 || config.weight_decay < 0.0 {
            return Err(invalid(
                "sgd",
                "momentum and weight decay must be non-negative",
            ));
        }
        let decay = params.iter().map(decays).collect();
        let momentum = vec![None; params.len()];
        Ok(Sgd {
            config,
            params,
            decay,
            momentum,
        })
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// One update with learning rate `lr`, from the gradients accumulated in the parameters.
    /// Parameters without a gradient are skipped (their momentum is left as it is).
    pub fn step(&mut self, lr: f32) {
        let c = self.config;
        for ((p, &decay), buf) in self.params.iter().zip(&self.decay).zip(&mut self.momentum) {
            p.update(|w, g| {
                let Some(g) = g else { return };
                let wd = if decay { c.weight_decay } else { 0.0 };
                if c.momentum == 0.0 {
                    w.iter_mut()
                        .zip(g)
                        .for_each(|(w, &g)| *w -= lr * (g + wd * *w));
                    return;
                }
                match buf {
                    None => {
                        let b: Vec<f32> = w.iter().zip(g).map(|(&w, &g)| g + wd * w).collect();
                        for ((w, &b), &g) in w.iter_mut().zip(&b).zip(g) {
                            let d = if c.nesterov {
                                g + wd * *w + c.momentum * b
                            } else {
                                b
                            };
                            *w -= lr * d;
                        }
                        *buf = Some(b);
                    }
                    Some(b) => {
                        for ((w, b), &g) in w.iter_mut().zip(b.iter_mut()).zip(g) {
                            let d_p = g + wd * *w;
                            *b = c.momentum * *b + (1.0 - c.dampening) * d_p;
                            let d = if c.nesterov {
                                d_p + c.momentum * *b
                            } else {
                                *b
                            };
                            *w -= lr * d;
                        }
                    }
                }
            });
        }
    }

    /// Clears every parameter's gradient.
    pub fn zero_grad(&self) {
        self.params.iter().for_each(|p| p.zero_grad());
    }

    /// The momentum buffers as `<param name>.momentum_buffer` (for checkpoints).
    pub fn state(&self) -> Vec<NamedTensor> {
        self.params
            .iter()
            .zip(&self.momentum)
            .filter_map(|(p, b)| {
                b.as_ref().map(|b| NamedTensor {
                    name: format!("{}.momentum_buffer", p.name()),
                    shape: p.shape().dims().to_vec(),
                    data: b.clone(),
                    integer: false,
                })
            })
            .collect()
    }

    /// Restores momentum buffers written by [`Sgd::state`]; tensors of other names are ignored.
    pub fn load_state(&mut self, tensors: &[NamedTensor]) -> Result<()> {
        for (p, buf) in self.params.iter().zip(&mut self.momentum) {
            let key = format!("{}.momentum_buffer", p.name());
            *buf = match tensors.iter().find(|t| t.name == key) {
                Some(t) if t.data.len() == p.numel() => Some(t.data.clone()),
                Some(t) => {
                    return Err(invalid(
                        "sgd",
                        format!(
                            "{key}: {} values for a parameter of {}",
                            t.data.len(),
                            p.numel()
                        ),
                    ));
                }
                None => None,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Buffer;

    fn param(name: &str, v: &[f32], shape: &[usize]) -> Param {
        Param::new(name, Buffer::from_slice(v), shape.to_vec()).unwrap()
    }

    fn set_grad(p: &Param, g: &[f32]) {
        p.zero_grad();
        p.tensor().backward_with(Buffer::from_slice(g)).unwrap();
    }

    /// Hand-computed torch.optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01):
    /// w0 = 1, g = 0.5 every step.
    /// step 1: d = 0.5 + 0.01 = 0.51; buf = 0.51; nesterov d = 0.51 + 0.9*0.51 = 0.969; w = 0.9031
    /// step 2: d = 0.5 + 0.009031 = 0.509031; buf = 0.9*0.51 + 0.509031 = 0.968031;
    ///         d = 0.509031 + 0.9*0.968031 = 1.3802589; w = 0.9031 - 0.13802589 = 0.76507411
    #[test]
    fn nesterov_with_weight_decay_matches_hand_computation() {
        let w = param("w", &[1.0, 1.0, 1.0, 1.0], &[2, 2]);
        let b = param("b.bias", &[1.0], &[1]);
        let mut sgd = Sgd::new(
            vec![w.clone(), b.clone()],
            SgdConfig {
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
                weight_decay: 0.01,
            },
        )
        .unwrap();
        for _ in 0..2 {
            set_grad(&w, &[0.5; 4]);
            set_grad(&b, &[0.5]);
            sgd.step(0.1);
        }
        for v in w.to_vec() {
            assert!((v - 0.765_074_1).abs() < 1e-6, "{v}");
        }
        // No decay on the bias: step1 d = 0.5*1.9 = 0.95, w = 0.905; step2 buf = 0.95, d = 0.5 + 0.855 = 1.355, w = 0.7695
        assert!((b.to_vec()[0] - 0.7695).abs() < 1e-6, "{:?}", b.to_vec());
        assert_eq!(sgd.state().len(), 2);
    }
}
