//! `parnet infer`: run a network on the images of a safetensors file and write its logits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use parnet_core::Tensor;
use parnet_core::io::{read_tensors, write_tensors};
use parnet_core::models::NetworkSpec;
use parnet_core::nn::state::NamedTensor;

use super::args::{ModelArgs, ThreadArgs, check_output_path};
use crate::checkpoint::load_network;
use crate::deploy::Forward;

/// Options of `parnet infer`.
#[derive(Args, Debug, Clone)]
pub struct InferArgs {
    /// The network (default: the one the weights file records).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Weights or a training checkpoint, in either form.
    #[arg(long)]
    pub weights: PathBuf,
    /// A safetensors file holding `input` (N, 3, H, W).
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write `logits` (N, classes).
    #[arg(long)]
    pub output: PathBuf,
    /// Run the deploy form on the executor (reparameterized first when the file holds the
    /// training form; deploy files always run on the executor).
    #[arg(long)]
    pub fused: bool,
    #[command(flatten)]
    pub threads: ThreadArgs,
    /// One ParNet stream per process of an `mpirun -np 3` job (a build with `--features mpi`):
    /// rank s computes stream s, rank 0 fuses them and writes the logits. Runs the network's
    /// graph in eval mode (not the executor); the logits equal the single-process graph's.
    #[arg(long)]
    pub stream_parallel: bool,
}

/// Runs `parnet infer`.
pub fn run(args: &InferArgs) -> Result<()> {
    if args.stream_parallel {
        return run_stream_parallel(args);
    }
    check_output_path(&args.output, &[&args.weights, &args.input])?;
    args.threads.apply()?;
    let spec = args.model.spec_for_file(&args.weights)?;
    let shape = infer_file(
        spec.as_ref(),
        &args.weights,
        &args.input,
        &args.output,
        args.fused,
    )?;
    crate::say!("wrote logits {shape:?} to {}", args.output.display());
    Ok(())
}

/// Reads `input` (N,3,H,W) from `input_path`, runs the network (`spec`, or the one `weights`
/// records), writes `logits` (N,K) to `output_path`. Returns the logits' shape.
pub fn infer_file(
    spec: Option<&NetworkSpec>,
    weights: &Path,
    input_path: &Path,
    output_path: &Path,
    fused: bool,
) -> Result<Vec<usize>> {
    let (x, input_nonfinite) = read_input(input_path)?;
    let model = load_network(spec, weights, fused)?.model;
    // Deploy weights (or --fused) run on the executor, training weights on their graph.
    let logits = Forward::for_model(model.as_ref()).forward(&x)?;
    write_logits(output_path, &logits, weights, input_nonfinite)
}

/// The `input` tensor (N, 3, H, W) of a safetensors file, and how many of its values are not
/// finite.
fn read_input(input_path: &Path) -> Result<(Tensor, usize)> {
    let (tensors, _) =
        read_tensors(input_path).with_context(|| format!("reading {}", input_path.display()))?;
    let input = tensors
        .into_iter()
        .find(|t| t.name == "input")
        .ok_or_else(|| anyhow!("{}: no tensor named `input`", input_path.display()))?;
    if input.shape.len() != 4 || input.shape[1] != 3 {
        bail!(
            "{}: `input` must have shape (N, 3, H, W), got {:?}",
            input_path.display(),
            input.shape
        );
    }
    let nonfinite = input.data.iter().filter(|v| !v.is_finite()).count();
    Ok((Tensor::from_vec(input.data, input.shape)?, nonfinite))
}

/// Writes `logits` to `output_path` (atomically), warning of non-finite values; returns their
/// shape.
fn write_logits(
    output_path: &Path,
    logits: &Tensor,
    weights: &Path,
    input_nonfinite: usize,
) -> Result<Vec<usize>> {
    let shape = logits.dims().to_vec();
    let data = logits.to_vec();
    let bad = data.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        eprintln!(
            "warning: {bad} of {} logits are NaN or infinite ({input_nonfinite} non-finite input values; otherwise the weights in {} hold them)",
            data.len(),
            weights.display()
        );
    }
    let out = NamedTensor {
        name: "logits".into(),
        shape: shape.clone(),
        data,
        integer: false,
    };
    write_tensors(output_path, &[out], &HashMap::new())?;
    Ok(shape)
}

/// `parnet infer --stream-parallel`: this process is rank s of an `mpirun -np 3` job.
#[cfg(feature = "mpi")]
fn run_stream_parallel(args: &InferArgs) -> Result<()> {
    use parnet_core::replicas::Replicas as _;
    crate::distributed::mpi::run_as_rank(|ranks| {
        if ranks.index() == 0 {
            check_output_path(&args.output, &[&args.weights, &args.input])?;
        }
        args.threads.apply()?;
        let spec = args.model.spec_for_file(&args.weights)?;
        let (x, nonfinite) = read_input(&args.input)?;
        let model = load_network(spec.as_ref(), &args.weights, args.fused)?.model;
        let streams = crate::distributed::streams::stream_parallel_forward;
        if let Some(logits) = streams(model.as_ref(), &x, ranks)? {
            let shape = write_logits(&args.output, &logits, &args.weights, nonfinite)?;
            crate::say!(
                "wrote logits {shape:?} to {} (3 stream-parallel ranks)",
                args.output.display()
            );
        }
        Ok(())
    })
}

#[cfg(not(feature = "mpi"))]
fn run_stream_parallel(_: &InferArgs) -> Result<()> {
    Err(crate::distributed::built_without_mpi(
        "`parnet infer --stream-parallel`",
    ))
}
