//! Stream-parallel inference: ParNet's three streams in three processes, as the official
//! `SimpNetMultiGPU` runs them on three GPUs. Rank `s` computes the stem prefix stream `s`
//! needs and the stream (recomputing the shared prefix, as the official code does), rank 0
//! gathers the three outputs and runs the fusions and the head. The same ops on the same
//! values as the single-process forward, so the logits have its bits.

use anyhow::{Result, bail};
use parnet_core::Tensor;
use parnet_core::models::Network;
use parnet_core::nn::Ctx;

use super::mpi::MpiReplicas;
use parnet_core::replicas::Replicas;

/// The logits of `model` (a ParNet) for `x`, computed by the three ranks of `ranks`: `Some` on
/// rank 0, `None` on the others.
pub fn stream_parallel_forward(
    model: &dyn Network,
    x: &Tensor,
    ranks: &MpiReplicas,
) -> Result<Option<Tensor>> {
    let Some(parnet) = model.as_parnet() else {
        bail!(
            "--stream-parallel needs a ParNet; {} has no parallel streams",
            model.name()
        );
    };
    if ranks.count() != 3 {
        bail!(
            "--stream-parallel runs one ParNet stream per rank: start it with `mpirun -np 3`, not {} ranks",
            ranks.count()
        );
    }
    let ctx = Ctx::eval();
    let mine = parnet.stream_forward(x, ranks.index(), ctx)?;
    // The dims travel in front of the values (exact in f32 below 2^24).
    let mut message: Vec<f32> = mine.dims().iter().map(|&d| d as f32).collect();
    message.extend_from_slice(mine.data());
    let Some(all) = ranks.gather_to_root(&message) else {
        return Ok(None);
    };
    let streams = all
        .into_iter()
        .map(|m| {
            let dims: Vec<usize> = m[..4].iter().map(|&d| d as usize).collect();
            Ok(Tensor::from_vec(m[4..].to_vec(), dims)?)
        })
        .collect::<Result<Vec<Tensor>>>()?;
    Ok(Some(parnet.forward_from_streams(
        [&streams[0], &streams[1], &streams[2]],
        ctx,
    )?))
}

/// Latency of [`stream_parallel_forward`] over `runs` timed runs after `warmup` (every run
/// starts at a barrier; timed on rank 0 from the barrier to the logits): `Some((median, min,
/// max))` in ms on rank 0, `None` elsewhere.
pub fn stream_parallel_latency(
    model: &dyn Network,
    x: &Tensor,
    ranks: &MpiReplicas,
    warmup: usize,
    runs: usize,
) -> Result<Option<(f64, f64, f64)>> {
    let mut times = Vec::with_capacity(runs);
    for run in 0..warmup + runs {
        ranks.barrier();
        let t0 = std::time::Instant::now();
        let logits = stream_parallel_forward(model, x, ranks)?;
        if logits.is_some() && run >= warmup {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    if times.is_empty() {
        return Ok(None);
    }
    times.sort_by(f64::total_cmp);
    Ok(Some((
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
    )))
}
