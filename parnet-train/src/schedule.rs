//! Learning-rate schedules, evaluated at a fractional epoch (`epoch + step / steps_per_epoch`)
//! so that they can be stepped per iteration or, with whole epochs, per epoch as timm does.

use serde::{Deserialize, Serialize};

/// A schedule and its parameters (the base learning rate comes from the optimiser config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Schedule {
    /// Linear warmup from `warmup_lr`, cosine from `lr` to `min_lr` over `epochs`, then
    /// `cooldown_epochs` at `min_lr` (timm's cosine with warmup and cooldown, spec 7.1).
    Cosine {
        #[serde(default)]
        warmup_epochs: f64,
        #[serde(default)]
        warmup_lr: f64,
        #[serde(default)]
        min_lr: f64,
        #[serde(default)]
        cooldown_epochs: f64,
    },
    /// Multiply by `gamma` every `step_epochs`, after an optional linear warmup.
    Step {
        step_epochs: f64,
        gamma: f64,
        #[serde(default)]
        warmup_epochs: f64,
    },
    /// One-cycle (PyTorch `OneCycleLR`, cosine annealing): from `lr / div_factor` up to `lr` over
    /// `pct_start` of training, then down to `lr / (div_factor · final_div_factor)`.
    OneCycle {
        #[serde(default = "default_pct_start")]
        pct_start: f64,
        #[serde(default = "default_div_factor")]
        div_factor: f64,
        #[serde(default = "default_final_div_factor")]
        final_div_factor: f64,
    },
    /// The base learning rate throughout.
    Constant,
}

fn default_pct_start() -> f64 {
    0.3
}
fn default_div_factor() -> f64 {
    25.0
}
fn default_final_div_factor() -> f64 {
    1e4
}

fn cosine_interp(from: f64, to: f64, t: f64) -> f64 {
    to + 0.5 * (from - to) * (1.0 + (std::f64::consts::PI * t.clamp(0.0, 1.0)).cos())
}

impl Schedule {
    /// Epochs the schedule runs in total, for a main phase of `epochs` (adds cooldown).
    pub fn total_epochs(&self, epochs: f64) -> f64 {
        match self {
            Schedule::Cosine {
                cooldown_epochs, ..
            } => epochs + cooldown_epochs,
            _ => epochs,
        }
    }

    /// Checks the parameters, naming the bad one.
    pub fn validate(&self) -> Result<(), String> {
        let nonneg = |name: &str, v: f64| {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(format!("schedule.{name} must be >= 0, got {v}"))
            }
        };
        match *self {
            Schedule::Cosine {
                warmup_epochs,
                warmup_lr,
                min_lr,
                cooldown_epochs,
            } => {
                nonneg("warmup_epochs", warmup_epochs)?;
                nonneg("warmup_lr", warmup_lr)?;
                nonneg("min_lr", min_lr)?;
                nonneg("cooldown_epochs", cooldown_epochs)
            }
            Schedule::Step {
                step_epochs,
                gamma,
                warmup_epochs,
            } => {
                if step_epochs <= 0.0 {
                    return Err(format!(
                        "schedule.step_epochs must be > 0, got {step_epochs}"
                    ));
                }
                nonneg("gamma", gamma)?;
                nonneg("warmup_epochs", warmup_epochs)
            }
            Schedule::OneCycle {
                pct_start,
                div_factor,
                final_div_factor,
            } => {
                if !(0.0..1.0).contains(&pct_start) {
                    return Err(format!(
                        "schedule.pct_start must be in [0, 1), got {pct_start}"
                    ));
                }
                if div_factor <= 0.0 || final_div_factor <= 0.0 {
                    return Err("schedule.div_factor and final_div_factor must be > 0".into());
                }
                Ok(())
            }
            Schedule::Constant => Ok(()),
        }
    }

    /// Learning rate at fractional epoch `t` of a run whose main phase is `epochs` long.
    pub fn lr(&self, base_lr: f64, t: f64, epochs: f64) -> f64 {
        let epochs = epochs.max(f64::MIN_POSITIVE);
        match *self {
            Schedule::Cosine {
                warmup_epochs,
                warmup_lr,
                min_lr,
                ..
            } => {
                if t < warmup_epochs {
                    warmup_lr + (base_lr - warmup_lr) * t / warmup_epochs
                } else if t >= epochs {
                    min_lr
                } else {
                    cosine_interp(base_lr, min_lr, t / epochs)
                }
            }
            Schedule::Step {
                step_epochs,
                gamma,
                warmup_epochs,
            } => {
                if t < warmup_epochs {
                    base_lr * t / warmup_epochs
                } else {
                    base_lr * gamma.powi((t / step_epochs).floor() as i32)
                }
            }
            Schedule::OneCycle {
                pct_start,
                div_factor,
                final_div_factor,
            } => {
                let initial = base_lr / div_factor;
                let last = initial / final_div_factor;
                let up = pct_start * epochs;
                if t < up {
                    cosine_interp(initial, base_lr, t / up)
                } else {
                    cosine_interp(base_lr, last, (t - up) / (epochs - up))
                }
            }
            Schedule::Constant => base_lr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn cosine_with_warmup_and_cooldown() {
        let s = Schedule::Cosine {
            warmup_epochs: 2.0,
            warmup_lr: 0.01,
            min_lr: 1e-5,
            cooldown_epochs: 10.0,
        };
        close(s.lr(0.1, 0.0, 100.0), 0.01);
        close(s.lr(0.1, 1.0, 100.0), 0.055);
        // Mid-way: min + (base - min)/2.
        close(s.lr(0.1, 50.0, 100.0), 1e-5 + 0.5 * (0.1 - 1e-5));
        close(
            s.lr(0.1, 25.0, 100.0),
            1e-5 + 0.5 * (0.1 - 1e-5) * (1.0 + (std::f64::consts::PI / 4.0).cos()),
        );
        close(s.lr(0.1, 100.0, 100.0), 1e-5);
        close(s.lr(0.1, 105.0, 100.0), 1e-5);
        assert_eq!(s.total_epochs(120.0), 130.0);
        assert_eq!(s.total_epochs(2.5), 12.5);
    }

    #[test]
    fn step_decays_by_gamma() {
        let s = Schedule::Step {
            step_epochs: 30.0,
            gamma: 0.1,
            warmup_epochs: 0.0,
        };
        close(s.lr(0.1, 29.9, 90.0), 0.1);
        close(s.lr(0.1, 30.0, 90.0), 0.010000000000000002);
        close(s.lr(0.1, 65.0, 90.0), 0.1 * 0.1 * 0.1);
    }

    #[test]
    fn one_cycle_goes_up_then_down() {
        let s = Schedule::OneCycle {
            pct_start: 0.25,
            div_factor: 25.0,
            final_div_factor: 1e4,
        };
        close(s.lr(1.0, 0.0, 100.0), 0.04);
        close(s.lr(1.0, 25.0, 100.0), 1.0);
        close(s.lr(1.0, 100.0, 100.0), 0.04 / 1e4);
        assert!(s.lr(1.0, 60.0, 100.0) < 1.0 && s.lr(1.0, 60.0, 100.0) > 0.04 / 1e4);
    }

    #[test]
    fn invalid_parameters_are_named() {
        let s = Schedule::Step {
            step_epochs: 0.0,
            gamma: 0.1,
            warmup_epochs: 0.0,
        };
        assert!(s.validate().unwrap_err().contains("step_epochs"));
    }
}
