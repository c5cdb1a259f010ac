//! Exponential moving average of a model's weights and buffers (timm's `ModelEmaV2`).

use crate::nn::Module;
use crate::nn::state::{NamedTensor, module_tensors};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{BatchNorm2d, Module};

    #[test]
    fn average_moves_by_one_minus_decay_and_copies_counters() {
        let bn = BatchNorm2d::new("bn", 2).unwrap();
        let mut ema = Ema::new(&bn, 0.9);
        // Parameters: gamma 1 -> 3; running mean 0 -> 10; counter 0 -> 5.
        bn.weight.update(|w, _| w.fill(3.0));
        bn.running_mean.set(&[10.0, 10.0]);
        bn.num_batches_tracked.set(&[5.0]);
        ema.update(&bn);
        let shadow = BatchNorm2d::new("bn", 2).unwrap();
        ema.copy_to(&shadow);
        // 0.9 * 1 + 0.1 * 3 = 1.2; 0.9 * 0 + 0.1 * 10 = 1.0; the counter is copied.
        assert!(
            shadow
                .weight
                .to_vec()
                .iter()
                .all(|&v| (v - 1.2).abs() < 1e-6)
        );
        assert!(
            shadow
                .running_mean
                .get()
                .iter()
                .all(|&v| (v - 1.0).abs() < 1e-6)
        );
        assert_eq!(shadow.num_batches_tracked.get(), vec![5.0]);
        // The averaged model is untouched by copy_to's source.
        assert_eq!(bn.weight.to_vec(), vec![3.0, 3.0]);
        let mut restored = Ema::new(&shadow, 0.9);
        restored.load(ema.tensors()).unwrap();
        assert_eq!(restored.tensors(), ema.tensors());
        assert_eq!(shadow.num_params(), 4);
    }
}
