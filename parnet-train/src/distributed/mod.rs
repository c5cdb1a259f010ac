//! Data-parallel training and stream-parallel inference across processes.
//!
//! A distributed run is N processes (ranks) started by `mpirun`, each with the same
//! configuration: rank `r` loads share `r` of every global batch (the loader's shard, so the
//! union over ranks is the single-process batch, each image augmented alike), runs the core's
//! training step on it with the ranks as [`Replicas`] (batch norms synchronised or local,
//! gradients averaged in rank order), and every rank applies the same update. Rank 0 alone
//! prints and writes (log, curves, atomic checkpoints); the ranks agree on every stop.
//!
//! The transport is MPI (`mpi` module, cargo feature `mpi`); without the feature a distributed
//! run is refused with the command that builds it. The algebra is the core's and is tested
//! without MPI on threads ([`parnet_core::replicas::LocalGroup`]).

#[cfg(feature = "mpi")]
pub mod mpi;
#[cfg(feature = "mpi")]
pub mod streams;

use parnet_core::replicas::Replicas;

/// How the batch norms of a distributed run take their statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BatchNormMode {
    /// Over the global batch of every rank: N ranks x B/N images take the step 1 process x B
    /// images takes (up to the order of floating-point sums).
    #[default]
    Sync,
    /// Over each rank's own images (timm's default); the running statistics are averaged over
    /// the ranks at the end of every epoch, so every rank keeps the same model.
    Local,
}

/// The ranks of a distributed run, as the training loop sees them.
#[derive(Clone, Copy, Debug)]
pub struct Distributed {
    pub replicas: &'static dyn Replicas,
    pub batch_norm: BatchNormMode,
}

impl Distributed {
    pub fn rank(&self) -> usize {
        self.replicas.index()
    }

    pub fn ranks(&self) -> usize {
        self.replicas.count()
    }

    /// Rank 0, the one that prints and writes.
    pub fn is_leader(&self) -> bool {
        self.rank() == 0
    }

    /// True on every rank when `flag` is true on any (a stop asked for on one rank, or its
    /// clock past the time limit, stops every rank after the same step).
    pub fn any(&self, flag: bool) -> bool {
        self.replicas
            .all_gather_f64(&[f64::from(u8::from(flag))])
            .iter()
            .any(|&v| v != 0.0)
    }

    /// `values` summed over the ranks, in rank order (every rank gets the same bits).
    pub fn sum(&self, values: &mut [f64]) {
        parnet_core::replicas::sum_f64(self.replicas, values);
    }
}

/// The error of a distributed command (`what`) in a build without the `mpi` feature.
pub fn built_without_mpi(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} needs MPI, and this parnet was built without it; build it with `cargo build --release --features mpi` (OpenMPI and libclang needed: docs/DISTRIBUTED.md) and start it with mpirun"
    )
}

/// Whether this process may print and write: the only process of a run, or rank 0 of a
/// distributed one.
pub fn leads(distributed: Option<Distributed>) -> bool {
    distributed.is_none_or(|d| d.is_leader())
}
