//! Forward latency of any network (`parnet bench latency`, the depth study), as repeated medians
//! so that a spread can be reported.

use std::fmt;
use std::time::Instant;

use anyhow::{Result, ensure};
use parnet_core::Tensor;
use parnet_core::models::{Network, NetworkSpec};
use parnet_core::nn::Ctx;
use serde::Serialize;

/// How one latency figure is taken: `warmup` untimed forwards, then the median of `runs` timed
/// ones (eval mode, no gradient tracking, streams as `parallel_streams` says).
#[derive(Clone, Copy, Debug)]
pub struct LatencyProtocol {
    pub batch: usize,
    pub image_size: usize,
    pub warmup: usize,
    pub runs: usize,
    pub parallel_streams: bool,
}

/// Milliseconds of each timed forward of `model` on a fixed input `[batch, 3, size, size]`,
/// sorted ascending.
pub fn forward_times_ms(model: &dyn Network, p: &LatencyProtocol) -> Result<Vec<f64>> {
    ensure!(p.batch > 0 && p.runs > 0, "batch and runs must be positive");
    let size = p.image_size;
    let x = Tensor::from_vec(
        vec![0.5; p.batch * 3 * size * size],
        [p.batch, 3, size, size],
    )?;
    let ctx = Ctx {
        parallel_streams: p.parallel_streams,
        ..Ctx::eval()
    };
    for _ in 0..p.warmup {
        model.forward(&x, ctx)?;
    }
    let mut times = Vec::with_capacity(p.runs);
    for _ in 0..p.runs {
        let t = Instant::now();
        let y = model.forward(&x, ctx)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        drop(y);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// Median milliseconds per forward (see [`forward_times_ms`]).
pub fn median_forward_ms(model: &dyn Network, p: &LatencyProtocol) -> Result<f64> {
    Ok(median(&mut forward_times_ms(model, p)?))
}

/// Median of `v` (sorted in place); the mean of the middle two for an even count.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Mean and sample standard deviation (0 for fewer than two values).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Forward latency over repeated runs.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyStats {
    pub model: String,
    pub batch: usize,
    pub image_size: usize,
    pub fused: bool,
    pub parallel_streams: bool,
    pub threads: usize,
    pub runs: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl fmt::Display for LatencyStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} batch {} at {}x{}, {}, streams {}, {} threads: median {:.2} ms, min {:.2} ms, max {:.2} ms over {} runs",
            self.model,
            self.batch,
            self.image_size,
            self.image_size,
            if self.fused { "fused" } else { "unfused" },
            if self.parallel_streams {
                "parallel"
            } else {
                "sequential"
            },
            self.threads,
            self.median_ms,
            self.min_ms,
            self.max_ms,
            self.runs
        )
    }
}

/// Times `runs` inference forwards (after `warmup` untimed ones) of a randomly initialised
/// `spec` (its deploy form with `fused`) at a square `image_size` (default: the network's).
pub fn measure_latency(
    spec: &NetworkSpec,
    batch: usize,
    image_size: Option<usize>,
    fused: bool,
    parallel_streams: bool,
    warmup: usize,
    runs: usize,
) -> Result<LatencyStats> {
    ensure!(batch > 0 && runs > 0, "--batch and --runs must be positive");
    let mut model = spec.build(0)?;
    if fused {
        model = model.deploy()?;
    }
    let size = image_size.unwrap_or(model.default_image_size());
    let m = model.input_multiple();
    ensure!(
        size > 0 && size.is_multiple_of(m),
        "--image-size {size}: {} runs on positive multiples of {m}",
        spec.name
    );
    let times = forward_times_ms(
        model.as_ref(),
        &LatencyProtocol {
            batch,
            image_size: size,
            warmup,
            runs,
            parallel_streams,
        },
    )?;
    Ok(LatencyStats {
        model: spec.name.clone(),
        batch,
        image_size: size,
        fused,
        parallel_streams,
        threads: rayon::current_num_threads(),
        runs,
        median_ms: median(&mut times.clone()),
        min_ms: times[0],
        max_ms: times[runs - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use parnet_core::models::NetworkSpec;

    #[test]
    fn median_and_spread() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((s - 1.2909944487358056).abs() < 1e-12);
        assert_eq!(mean_std(&[7.0]), (7.0, 0.0));
    }

    #[test]
    fn latency_of_a_small_network_is_positive_and_bad_protocols_fail() {
        let model = NetworkSpec::new("resnet-20", 10).build(0).unwrap();
        let mut p = LatencyProtocol {
            batch: 2,
            image_size: 32,
            warmup: 1,
            runs: 3,
            parallel_streams: true,
        };
        let ms = median_forward_ms(model.as_ref(), &p).unwrap();
        assert!(ms > 0.0 && ms.is_finite());
        p.runs = 0;
        assert!(median_forward_ms(model.as_ref(), &p).is_err());
    }
}
