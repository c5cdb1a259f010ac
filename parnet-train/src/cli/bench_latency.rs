//! `parnet bench latency`: forward latency of any network with random weights.

use anyhow::Result;
use clap::Args;

use super::args::{ModelArgs, ThreadArgs};
use crate::bench::latency::measure_latency;

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
    /// Time the deploy form.
    #[arg(long)]
    pub fused: bool,
    /// Run the streams one after another instead of concurrently.
    #[arg(long)]
    pub sequential_streams: bool,
    /// Timed runs after warm-up.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[command(flatten)]
    pub threads: ThreadArgs,
    #[arg(long)]
    pub json: bool,
}

/// Times every `--width-mult` case and prints each (or a JSON list).
pub fn run(args: &BenchLatencyArgs) -> Result<()> {
    args.threads.apply()?;
    let specs = match &args.model.model {
        Some(name) => args.model.specs_or(name)?,
        None => vec![args.model.spec()?],
    };
    let mut all = Vec::new();
    for spec in &specs {
        let stats = measure_latency(
            spec,
            args.batch,
            args.image_size,
            args.fused,
            !args.sequential_streams,
            args.warmup,
            args.runs,
        )?;
        if !args.json {
            println!("{stats}");
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
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}
