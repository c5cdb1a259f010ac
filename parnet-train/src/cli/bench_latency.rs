//! `parnet bench latency`: forward latency of any network with random weights.

use anyhow::Result;
use clap::Args;

use super::args::{ModelArgs, ThreadArgs};
use parnet_core::exec::WinogradChoice;

use crate::bench::latency::{Engine, LatencyOptions, measure_latency, profile_table};

/// Options of `parnet bench latency`.
#[derive(Args, Debug, Clone)]
pub struct BenchLatencyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Square input size (default: the network's).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// What runs the forward: the planned executor (always the deploy form) or the autograd
    /// graph, op by op.
    #[arg(long, value_enum, default_value_t = Engine::Executor)]
    pub engine: Engine,
    /// Graph engine: time the deploy form (the executor always does).
    #[arg(long)]
    pub fused: bool,
    /// Run the streams (graph) or steps (executor) one after another instead of concurrently.
    #[arg(long)]
    pub sequential_streams: bool,
    /// Executor: Winograd for the stride-1 3x3 convolutions: auto (the cost rule), off, f2, f4.
    #[arg(long, default_value = "auto", value_parser = parse_winograd)]
    pub winograd: WinogradChoice,
    /// Skip measuring the FMA peak (no `% of peak`).
    #[arg(long)]
    pub no_peak: bool,
    /// Executor: then run once more step by step and print the time of every step.
    #[arg(long)]
    pub profile: bool,
    /// Timed runs after warm-up.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[command(flatten)]
    pub threads: ThreadArgs,
    #[arg(long)]
    pub json: bool,
    /// One ParNet stream per process of an `mpirun -np 3` job (a build with `--features mpi`),
    /// on the graph engine: rank 0 prints the latency from a barrier to the fused logits.
    #[arg(long)]
    pub stream_parallel: bool,
}

/// Times every `--width-mult` case and prints each (or a JSON list).
pub fn run(args: &BenchLatencyArgs) -> Result<()> {
    if args.stream_parallel {
        return run_stream_parallel(args);
    }
    args.threads.apply()?;
    let specs = match &args.model.model {
        Some(name) => args.model.specs_or(name)?,
        None => vec![args.model.spec()?],
    };
    let mut all = Vec::new();
    for spec in &specs {
        let options = LatencyOptions {
            batch: args.batch,
            image_size: args.image_size,
            engine: args.engine,
            fused: args.fused,
            parallel: !args.sequential_streams,
            winograd: args.winograd,
            warmup: args.warmup,
            runs: args.runs,
            peak: !args.no_peak,
        };
        let stats = measure_latency(spec, &options)?;
        if args.profile {
            crate::say!("{}", profile_table(spec, &options)?.trim_end());
        }
        if !args.json {
            crate::say!("{stats}");
        }
        all.push(stats);
    }
    if args.json {
        // One case prints one object, as before; several a list.
        let value = if all.len() == 1 {
            serde_json::to_value(&all[0])?
        } else {
            serde_json::to_value(&all)?
        };
        crate::say!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}

/// `parnet bench latency --stream-parallel`: this process is rank s of an `mpirun -np 3` job.
#[cfg(feature = "mpi")]
fn run_stream_parallel(args: &BenchLatencyArgs) -> Result<()> {
    use parnet_core::Tensor;
    use parnet_core::nn::Init;
    crate::distributed::mpi::run_as_rank(|ranks| {
        args.threads.apply()?;
        let spec = args.model.spec()?;
        let mut model = spec.build(0)?;
        if args.fused {
            model = model.deploy()?;
        }
        let size = args.image_size.unwrap_or(model.default_image_size());
        crate::limits::check_image_size(size)?;
        let n = args.batch * 3 * size * size;
        let x = Tensor::new(
            Init::new(1).uniform("x", n, 1.0),
            [args.batch, 3, size, size],
        )?;
        let runs = args.runs.max(1);
        let latency = crate::distributed::streams::stream_parallel_latency;
        let Some((median, min, max)) = latency(model.as_ref(), &x, ranks, args.warmup, runs)?
        else {
            return Ok(());
        };
        let threads = rayon::current_num_threads();
        if args.json {
            let value = serde_json::json!({
                "model": spec.name, "batch": args.batch, "image_size": size,
                "ranks": 3, "threads_per_rank": threads, "fused": args.fused,
                "engine": "graph, stream-parallel",
                "median_ms": median, "min_ms": min, "max_ms": max, "runs": runs,
            });
            crate::say!("{}", serde_json::to_string_pretty(&value)?);
        } else {
            crate::say!(
                "{} batch {} at {size}x{size}, 3 stream-parallel ranks x {threads} threads, graph engine{}: {median:.2} ms median ({min:.2}-{max:.2} over {runs} runs)",
                spec.name,
                args.batch,
                if args.fused { ", deploy form" } else { "" },
            );
        }
        Ok(())
    })
}

#[cfg(not(feature = "mpi"))]
fn run_stream_parallel(_: &BenchLatencyArgs) -> Result<()> {
    Err(crate::distributed::built_without_mpi(
        "`parnet bench latency --stream-parallel`",
    ))
}

/// `auto`, `off`, `f2` or `f4`.
pub fn parse_winograd(s: &str) -> Result<WinogradChoice, String> {
    match s.to_ascii_lowercase().as_str() {
        "auto" => Ok(WinogradChoice::Auto),
        "off" | "none" => Ok(WinogradChoice::Off),
        "f2" => Ok(WinogradChoice::F2),
        "f4" => Ok(WinogradChoice::F4),
        other => Err(format!(
            "unknown --winograd {other:?} (auto, off, f2 or f4)"
        )),
    }
}
