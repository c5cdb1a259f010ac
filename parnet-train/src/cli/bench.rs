//! `parnet bench latency`.

use std::fmt;

use anyhow::Result;
use parnet_core::models::parnet::ParNet;
use serde::Serialize;

use crate::model_io::ModelSpec;
use crate::study::latency::{LatencyProtocol, forward_times_ms, median};

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

/// Times `runs` inference forwards (after `warmup` untimed ones) of a randomly initialised model.
pub fn measure_latency(
    spec: &ModelSpec,
    batch: usize,
    image_size: Option<usize>,
    fused: bool,
    parallel_streams: bool,
    warmup: usize,
    runs: usize,
) -> Result<LatencyStats> {
    anyhow::ensure!(batch > 0 && runs > 0, "--batch and --runs must be positive");
    let cfg = spec.config()?;
    let size = image_size.unwrap_or(cfg.default_image_size());
    let mut model = ParNet::new(cfg, 0)?;
    if fused {
        model = model.fused()?;
    }
    let times = forward_times_ms(
        &model,
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
