//! `parnet bench train`: training-step throughput of any network, one case per width and batch.

use anyhow::Result;
use clap::Args;

use super::args::{ModelArgs, ThreadArgs};
use crate::bench::train_step::{TrainStepProtocol, measure_train_step};

/// Options of `parnet bench train`.
#[derive(Args, Debug, Clone)]
pub struct BenchTrainArgs {
    /// The network [default: parnet-cifar].
    #[command(flatten)]
    pub model: ModelArgs,
    /// Batch sizes, comma-separated (one case each).
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub batch: Vec<usize>,
    #[arg(long, default_value_t = 32)]
    pub image_size: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed steps per case.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Then run as many steps again with the per-op profiler and print where a step goes.
    #[arg(long)]
    pub profile: bool,
    #[command(flatten)]
    pub threads: ThreadArgs,
    #[arg(long)]
    pub json: bool,
}

/// Times every (width, batch) case and prints each (or a JSON list).
pub fn run(args: &BenchTrainArgs) -> Result<()> {
    args.threads.apply()?;
    let mut all = Vec::new();
    for spec in args.model.specs_or("parnet-cifar")? {
        for &batch in &args.batch {
            let protocol = TrainStepProtocol {
                batch,
                image_size: args.image_size,
                warmup: args.warmup,
                steps: args.steps,
                seed: 0,
                profile: args.profile,
            };
            let stats = measure_train_step(&spec, &protocol)?;
            if !args.json {
                crate::say!("{stats}");
            }
            all.push(stats);
        }
    }
    if args.json {
        crate::say!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}
