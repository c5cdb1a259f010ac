//! The `parnet` command line: one module per subcommand, holding its arguments and its call;
//! this module only dispatches. Every subcommand that names a network takes the same
//! [`ModelArgs`] (`--model`, `--width-mult`, `--classes`, `--activation`).

mod args;
mod bench_latency;
mod bench_train;
mod data;
mod eval;
pub mod eval_settings;
mod export;
mod fuse;
mod import;
mod infer;
mod info;
mod study;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use args::{ModelArgs, ThreadArgs};
pub use bench_latency::BenchLatencyArgs;
pub use bench_train::BenchTrainArgs;
pub use data::DataCommand;
pub use eval::{EvalArgs, run_eval};
pub use export::{ExportCommand, ExportOnnxArgs};
pub use fuse::{FuseArgs, fuse_weights};
pub use import::{IMAGENET_CROP_PCT, ImportArgs, ImportReport, import_checkpoint};
pub use infer::{InferArgs, infer_file};
pub use info::{InfoArgs, info_json, info_text};
pub use study::{DepthArgs, StudyCommand};
pub use train::{TrainArgs, run_train};

/// parnet: ParNet ("Non-deep Networks") on the CPU.
#[derive(Parser, Debug)]
#[command(name = "parnet", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model (no arguments: a small ParNet on the built-in synthetic set).
    Train(TrainArgs),
    /// Top-1, top-5 and loss of a checkpoint (or deploy weights) on a data set.
    Eval(EvalArgs),
    /// Data sets: convert and inspect.
    Data {
        #[command(subcommand)]
        what: DataCommand,
    },
    /// Parameters, multiply-adds, depth and per-layer output shapes of a model.
    Info(InfoArgs),
    /// Run a model on the tensor `input` (N,3,H,W) of a safetensors file; write `logits`.
    Infer(InferArgs),
    /// Reparameterize training weights into deploy weights.
    Fuse(FuseArgs),
    /// Read a PyTorch checkpoint (e.g. the official weights) into our weights format.
    Import(ImportArgs),
    /// Write a network in another format (ONNX).
    Export {
        #[command(subcommand)]
        what: ExportCommand,
    },
    /// Timing commands.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Studies over many networks (is depth necessary?).
    Study {
        #[command(subcommand)]
        what: StudyCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Forward latency (inference) of a model with random weights.
    Latency(BenchLatencyArgs),
    /// Training-step throughput (the training loop's step) on fixed random inputs, timed as
    /// tools/bench_torch_train.py times PyTorch.
    Train(BenchTrainArgs),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Data { what } => data::run(what),
        Command::Info(args) => info::run(args),
        Command::Infer(args) => infer::run(args),
        Command::Fuse(args) => fuse::run(args),
        Command::Import(args) => import::run(args),
        Command::Export { what } => export::run(what),
        Command::Bench {
            what: BenchCommand::Latency(args),
        } => bench_latency::run(args),
        Command::Bench {
            what: BenchCommand::Train(args),
        } => bench_train::run(args),
        Command::Study { what } => study::run(what),
    }
}
