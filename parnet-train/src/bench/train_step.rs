//! Training-step throughput (`parnet bench train`) on fixed random inputs, with the protocol of
//! `tools/bench_torch_train.py` so that the two can be read side by side.

use std::fmt;
use std::time::Instant;

use anyhow::{Result, ensure};
use parnet_core::Tensor;
use parnet_core::autograd::profile;
use parnet_core::models::NetworkSpec;
use parnet_core::nn::Init;
use parnet_core::optim::SgdConfig;
use parnet_core::training::{StepOptions, TrainStep};
use serde::Serialize;

use super::latency::median;

/// What one `bench train` case runs.
#[derive(Debug, Clone)]
pub struct TrainStepProtocol {
    pub batch: usize,
    pub image_size: usize,
    /// Untimed steps first (they also size every reused buffer).
    pub warmup: usize,
    pub steps: usize,
    pub seed: u64,
    /// After the timed steps, run as many again with the per-op profiler on.
    pub profile: bool,
}

/// Step times of one case.
#[derive(Debug, Clone, Serialize)]
pub struct TrainStepStats {
    pub model: String,
    pub width_mult: Option<f64>,
    pub params: usize,
    pub batch: usize,
    pub image_size: usize,
    pub threads: usize,
    pub steps: usize,
    pub warmup: usize,
    pub step_ms_median: f64,
    pub step_ms_min: f64,
    pub step_ms_max: f64,
    /// `batch` / median step time.
    pub images_per_s: f64,
    /// Per-op time of the profiled steps (with `profile`), the most expensive first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<OpProfileRow>,
}

/// One op's share of a profiled step (see `parnet_core::autograd::profile`).
#[derive(Debug, Clone, Serialize)]
pub struct OpProfileRow {
    pub op: String,
    pub forward_ms_per_step: f64,
    pub backward_ms_per_step: f64,
    pub calls_per_step: f64,
}

impl fmt::Display for TrainStepStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} x{} batch {} at {}x{}, {} threads: {:.1} ms/step (min {:.1}, max {:.1}, {} steps), {:.1} img/s",
            self.model,
            self.width_mult.unwrap_or(1.0),
            self.batch,
            self.image_size,
            self.image_size,
            self.threads,
            self.step_ms_median,
            self.step_ms_min,
            self.step_ms_max,
            self.steps,
            self.images_per_s
        )?;
        if !self.profile.is_empty() {
            let total: f64 = self
                .profile
                .iter()
                .map(|r| r.forward_ms_per_step + r.backward_ms_per_step)
                .sum();
            writeln!(f)?;
            writeln!(
                f,
                "per-op time per step (forward charged since the previous op on its thread):"
            )?;
            writeln!(f, "| op | forward ms | backward ms | share | calls |")?;
            writeln!(f, "|---|---:|---:|---:|---:|")?;
            for r in &self.profile {
                let ms = r.forward_ms_per_step + r.backward_ms_per_step;
                writeln!(
                    f,
                    "| {} | {:.1} | {:.1} | {:.1}% | {:.0} |",
                    r.op,
                    r.forward_ms_per_step,
                    r.backward_ms_per_step,
                    100.0 * ms / total.max(f64::MIN_POSITIVE),
                    r.calls_per_step
                )?;
            }
            write!(f, "| total | | | {total:.1} ms | |")?;
        }
        Ok(())
    }
}

/// Times training steps of a freshly initialised `spec`: the core's [`TrainStep`] (forward in
/// training mode, cross-entropy, backward, SGD at lr 0.1 with momentum 0.9, Nesterov, weight
/// decay 5e-4) on one fixed batch of inputs uniform in [-1, 1) and fixed labels.
pub fn measure_train_step(spec: &NetworkSpec, p: &TrainStepProtocol) -> Result<TrainStepStats> {
    ensure!(
        p.batch > 0 && p.steps > 0,
        "--batch and --steps must be positive"
    );
    crate::limits::check_image_size(p.image_size)?;
    crate::limits::check_network_fits(spec)?;
    let model = spec.build(p.seed)?;
    ensure!(
        p.image_size > 0 && p.image_size.is_multiple_of(model.input_multiple()),
        "{} needs an image size that is a multiple of {}; got {}",
        spec.name,
        model.input_multiple(),
        p.image_size
    );
    crate::limits::check_activations_fit(
        model.as_ref(),
        p.batch,
        (p.image_size, p.image_size),
        crate::limits::Pass::Training,
    )?;
    let sgd = SgdConfig {
        momentum: 0.9,
        dampening: 0.0,
        nesterov: true,
        weight_decay: 5e-4,
    };
    let mut train = TrainStep::new(model.as_ref(), sgd, None, StepOptions::default())?;
    let len = p.batch * 3 * p.image_size * p.image_size;
    let x = Tensor::new(
        Init::new(p.seed).uniform("bench.input", len, 1.0),
        vec![p.batch, 3, p.image_size, p.image_size],
    )?;
    let classes = model.num_classes();
    let labels: Vec<usize> = (0..p.batch).map(|k| (k * 7 + 3) % classes).collect();
    let mut step = |k: usize, parallel_streams: bool| -> Result<()> {
        profile::restart_forward_clock();
        train.options.parallel_streams = parallel_streams;
        train.run(model.as_ref(), &x, &labels, 0.1, p.seed + k as u64)?;
        Ok(())
    };
    for k in 0..p.warmup {
        step(k, true)?;
    }
    let mut times = Vec::with_capacity(p.steps);
    for k in 0..p.steps {
        let t = Instant::now();
        step(p.warmup + k, true)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let med = median(&mut times);
    let mut rows = Vec::new();
    if p.profile {
        // Streams one after another, so that every forward op is called (and charged) on this
        // thread; the backward walk stays parallel.
        profile::start_profiling();
        for k in 0..p.steps {
            step(p.warmup + p.steps + k, false)?;
        }
        let per_step = |d: std::time::Duration| d.as_secs_f64() * 1e3 / p.steps as f64;
        rows = profile::stop_profiling()
            .into_iter()
            .map(|(op, t)| OpProfileRow {
                op: op.to_string(),
                forward_ms_per_step: per_step(t.forward),
                backward_ms_per_step: per_step(t.backward),
                calls_per_step: t.forward_calls.max(t.backward_calls) as f64 / p.steps as f64,
            })
            .collect();
    }
    Ok(TrainStepStats {
        model: spec.name.clone(),
        width_mult: spec.width_mult,
        params: model.num_params(),
        batch: p.batch,
        image_size: p.image_size,
        threads: rayon::current_num_threads(),
        steps: p.steps,
        warmup: p.warmup,
        step_ms_median: med,
        step_ms_min: times[0],
        step_ms_max: times[p.steps - 1],
        images_per_s: p.batch as f64 / (med / 1e3),
        profile: rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_case_reports_consistent_figures_and_bad_sizes_are_errors() {
        let spec = NetworkSpec::new("resnet-20", 10);
        let p = TrainStepProtocol {
            batch: 2,
            image_size: 16,
            warmup: 1,
            steps: 3,
            seed: 0,
            profile: true,
        };
        let s = measure_train_step(&spec, &p).unwrap();
        assert_eq!(s.params, 272_474);
        assert!(s.step_ms_min <= s.step_ms_median && s.step_ms_median <= s.step_ms_max);
        assert!((s.images_per_s - 2.0 / (s.step_ms_median / 1e3)).abs() < 1e-9);
        let conv = s
            .profile
            .iter()
            .find(|r| r.op == "conv2d")
            .expect("conv2d profiled");
        assert!(conv.forward_ms_per_step > 0.0 && conv.backward_ms_per_step > 0.0);
        assert!(s.to_string().contains("| conv2d |"));
        let bad = TrainStepProtocol {
            image_size: 30,
            ..p.clone()
        };
        let err = measure_train_step(&NetworkSpec::new("parnet-cifar", 10), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("multiple of"), "{err}");
        let err = measure_train_step(&spec, &TrainStepProtocol { steps: 0, ..p })
            .unwrap_err()
            .to_string();
        assert!(err.contains("--steps"), "{err}");
    }
}
