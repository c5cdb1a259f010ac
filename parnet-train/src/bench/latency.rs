//! Forward latency of any network (`parnet bench latency`, the depth study), as repeated medians
//! so that a spread can be reported; on the executor (default) or the autograd graph, with the
//! GFLOP/s it implies and the share of the FMA peak of the ISA in use.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use parnet_core::Tensor;
use parnet_core::exec::{ExecOptions, Schedule, WinogradChoice};
use parnet_core::kernels::peak::fma_peak_gflops;
use parnet_core::kernels::simd::Isa;
use parnet_core::models::{Network, NetworkSpec};
use parnet_core::nn::Ctx;
use serde::Serialize;

use crate::limits::{Pass, check_activations_fit, check_image_size, exec_options};

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

/// What runs the forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The planned deploy-form executor (`parnet_core::exec`).
    Executor,
    /// The autograd graph's eval-mode forward, op by op (training or deploy form).
    Graph,
}

/// How `parnet bench latency` measures.
#[derive(Clone, Copy, Debug)]
pub struct LatencyOptions {
    pub batch: usize,
    /// Square input size (default: the network's).
    pub image_size: Option<usize>,
    pub engine: Engine,
    /// The graph engine runs the deploy form (the executor always does).
    pub fused: bool,
    /// Streams concurrently (graph engine), or steps as soon as ready (executor).
    pub parallel: bool,
    pub winograd: WinogradChoice,
    pub warmup: usize,
    pub runs: usize,
    /// Measure the FMA peak of the ISA in use (about two seconds) to report `% of peak`.
    pub peak: bool,
}

/// Forward latency over repeated runs, with the arithmetic rate it implies.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyStats {
    pub model: String,
    pub batch: usize,
    pub image_size: usize,
    pub engine: Engine,
    pub fused: bool,
    pub parallel: bool,
    pub isa: String,
    pub threads: usize,
    pub runs: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Multiply-adds of one forward (every image), of the form that ran.
    pub macs: usize,
    /// `2 * macs` per median forward.
    pub gflops: f64,
    /// The FMA peak of `isa` at `threads` threads, measured just before.
    pub peak_gflops: Option<f64>,
    pub percent_of_peak: Option<f64>,
    /// Executor: how many convolutions run on each kernel (`direct`, `winograd F(4x4,3x3)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conv_kernels: Vec<(String, usize)>,
}

impl fmt::Display for LatencyStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let form = match (self.engine, self.fused) {
            (Engine::Executor, _) => "executor",
            (Engine::Graph, true) => "graph, fused",
            (Engine::Graph, false) => "graph, unfused",
        };
        write!(
            f,
            "{} batch {} at {}x{}, {form}, {}, {}, {} threads: median {:.2} ms (min {:.2}, max {:.2}, {} runs), {:.1} GFLOP/s",
            self.model,
            self.batch,
            self.image_size,
            self.image_size,
            if self.parallel {
                "parallel"
            } else {
                "sequential"
            },
            self.isa,
            self.threads,
            self.median_ms,
            self.min_ms,
            self.max_ms,
            self.runs,
            self.gflops,
        )?;
        if let (Some(peak), Some(pct)) = (self.peak_gflops, self.percent_of_peak) {
            write!(f, " = {pct:.1}% of the {peak:.0} GFLOP/s FMA peak")?;
        }
        if !self.conv_kernels.is_empty() {
            let kinds: Vec<String> = self
                .conv_kernels
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            write!(f, "; convolutions: {}", kinds.join(", "))?;
        }
        Ok(())
    }
}

/// Times `runs` inference forwards (after `warmup` untimed ones) of a randomly initialised
/// `spec` on a fixed input.
pub fn measure_latency(spec: &NetworkSpec, o: &LatencyOptions) -> Result<LatencyStats> {
    ensure!(
        o.batch > 0 && o.runs > 0,
        "--batch and --runs must be positive"
    );
    crate::limits::check_network_fits(spec)?;
    let mut model = spec.build(0)?;
    if o.fused || o.engine == Engine::Executor {
        model = model.deploy()?;
    }
    let size = o.image_size.unwrap_or(model.default_image_size());
    check_image_size(size)?;
    let m = model.input_multiple();
    ensure!(
        size > 0 && size.is_multiple_of(m),
        "--image-size {size}: {} runs on positive multiples of {m}",
        spec.name
    );
    let isa = Isa::current();
    let (times, macs, conv_kernels) = match o.engine {
        Engine::Graph => {
            check_activations_fit(model.as_ref(), o.batch, (size, size), Pass::Inference)?;
            let p = LatencyProtocol {
                batch: o.batch,
                image_size: size,
                warmup: o.warmup,
                runs: o.runs,
                parallel_streams: o.parallel,
            };
            let macs = model.macs(size) * o.batch;
            (forward_times_ms(model.as_ref(), &p)?, macs, Vec::new())
        }
        Engine::Executor => {
            let options = ExecOptions {
                isa: Some(isa),
                winograd: o.winograd,
                schedule: if o.parallel {
                    Schedule::Parallel
                } else {
                    Schedule::Sequential
                },
                ..exec_options()
            };
            let mut exec = model.executor(o.batch, (size, size), &options)?;
            let x = vec![0.5f32; o.batch * 3 * size * size];
            for _ in 0..o.warmup {
                exec.run(&x)?;
            }
            let mut times = Vec::with_capacity(o.runs);
            for _ in 0..o.runs {
                let t = Instant::now();
                exec.run(&x)?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            let mut kinds: Vec<(String, usize)> = Vec::new();
            for k in exec.conv_kernels() {
                match kinds.iter_mut().find(|(name, _)| name == k) {
                    Some((_, n)) => *n += 1,
                    None => kinds.push((k.to_string(), 1)),
                }
            }
            (times, exec.macs_per_run(), kinds)
        }
    };
    let median_ms = median(&mut times.clone());
    let gflops = 2.0 * macs as f64 / (median_ms / 1e3) / 1e9;
    let threads = rayon::current_num_threads();
    let peak_gflops = o
        .peak
        .then(|| fma_peak_gflops(isa, threads, Duration::from_millis(200), 5));
    Ok(LatencyStats {
        model: spec.name.clone(),
        batch: o.batch,
        image_size: size,
        engine: o.engine,
        fused: o.fused || o.engine == Engine::Executor,
        parallel: o.parallel,
        isa: isa.name().to_string(),
        threads,
        runs: o.runs,
        median_ms,
        min_ms: times[0],
        max_ms: times[o.runs - 1],
        macs,
        gflops,
        peak_gflops,
        percent_of_peak: peak_gflops.map(|p| 100.0 * gflops / p),
        conv_kernels,
    })
}

/// The executor's step-by-step profile of `spec` as a markdown table (one run, steps one
/// after another).
pub fn profile_table(spec: &NetworkSpec, o: &LatencyOptions) -> Result<String> {
    use std::fmt::Write;
    crate::limits::check_network_fits(spec)?;
    let model = spec.build(0)?.deploy()?;
    let size = o.image_size.unwrap_or(model.default_image_size());
    check_image_size(size)?;
    let options = ExecOptions {
        winograd: o.winograd,
        ..exec_options()
    };
    let mut exec = model.executor(o.batch, (size, size), &options)?;
    let x = vec![0.5f32; o.batch * 3 * size * size];
    let steps = exec.profile(&x)?;
    let total: f64 = steps.iter().map(|s| s.ms).sum();
    let mut out = String::new();
    writeln!(
        out,
        "| step | kernel | output (C,H,W) | MMACs | ms | GFLOP/s | share |"
    )?;
    writeln!(out, "|---|---|---|---:|---:|---:|---:|")?;
    for (i, s) in steps.iter().enumerate() {
        writeln!(
            out,
            "| {i} {} | {} | {:?} | {:.1} | {:.3} | {:.1} | {:.1}% |",
            s.kind,
            s.kernel.unwrap_or(""),
            s.output,
            s.macs as f64 / 1e6,
            s.ms,
            2.0 * s.macs as f64 / (s.ms / 1e3) / 1e9,
            100.0 * s.ms / total
        )?;
    }
    writeln!(out, "| total | | | | {total:.2} | | |")?;
    Ok(out)
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
