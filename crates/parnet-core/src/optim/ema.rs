//! Exponential moving average of a model's weights and buffers (timm's `ModelEmaV2`).

use crate::io::{NamedTensor, module_tensors};
use crate::nn::Module;

/// `ema = decay·ema + (1 − decay)·current` after every step, for parameters and float buffers
/// (BN running statistics); integer buffers (`num_batches_tracked`) are copied.
pub struct Ema {
    pub decay: f32,
    values: Vec<NamedTensor>,
}

impl Ema {
    /// Starts from a copy of the module's current values.
    pub fn new(module: &dyn Module, decay: f32) -> Ema {
        Ema {
            decay,
            values: module_tensors(module),
        }
    }

    /// Moves the average towards the module's current values.
    pub fn update(&mut self, module: &dyn Module) {
        let d = self.decay;
        let mut i = 0;
        let values = &mut self.values;
        let mut mix = |cur: &[f32], integer: bool| {
            let e = &mut values[i].data;
            if integer {
                e.copy_from_slice(cur);
            } else {
                e.iter_mut()
                    .zip(cur)
                    .for_each(|(e, &c)| *e = d * *e + (1.0 - d) * c);
            }
            i += 1;
        };
        module.visit_params(&mut |p| p.update(|w, _| mix(w, false)));
        module.visit_buffers(&mut |b| mix(&b.get(), b.integer));
    }

    /// Writes the averaged values into `module` (same structure as the one averaged).
    pub fn copy_to(&self, module: &dyn Module) {
        let mut it = self.values.iter();
        module.visit_params(&mut |p| {
            let v = it.next().expect("same structure");
            p.update(|w, _| w.copy_from_slice(&v.data));
        });
        module.visit_buffers(&mut |b| b.set(&it.next().expect("same structure").data));
    }

    /// The averaged values by name (for checkpoints).
    pub fn tensors(&self) -> &[NamedTensor] {
        &self.values
    }

    /// Restores values written by [`Ema::tensors`] (matched by name; lengths must agree).
    pub fn load(&mut self, tensors: &[NamedTensor]) -> crate::Result<()> {
        for v in &mut self.values {
            match tensors.iter().find(|t| t.name == v.name) {
                Some(t) if t.data.len() == v.data.len() => v.data.copy_from_slice(&t.data),
                _ => {
                    return Err(crate::error::invalid(
                        "ema",
                        format!("no stored average for {}", v.name),
                    ));
                }
            }
        }
        Ok(())
    }
}
