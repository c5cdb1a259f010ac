//! The ranks of an `mpirun` job as the core's [`Replicas`], over MPI (rsmpi).
//!
//! Sums run in rank order: [`Replicas::sum_in_order`] is a reduce-scatter and an all-gather
//! written as `MPI_Alltoallv` + `MPI_Allgatherv` (rank `k` adds chunk `k` of every rank's vector
//! in rank order, then every rank gathers the summed chunks), so the result never depends on
//! the order messages arrive in or on the MPI library's reduction algorithm, and each rank moves
//! `2 (N - 1) / N` of the vector, as a ring all-reduce does.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use mpi::Threading;
use mpi::datatype::{Partition, PartitionMut};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use parnet_core::replicas::Replicas;

/// The world communicator of this process's job.
#[derive(Debug)]
pub struct MpiReplicas {
    /// Every MPI call goes through this lock: calls from different threads never overlap, as
    /// `MPI_THREAD_SERIALIZED` asks.
    world: Mutex<World>,
    rank: usize,
    size: usize,
    traffic: Traffic,
}

/// What this rank's exchanges have cost so far.
#[derive(Debug, Default)]
struct Traffic {
    calls: AtomicU64,
    /// Bytes this rank sent.
    bytes: AtomicU64,
    /// Time inside MPI calls (moving data and waiting for the other ranks).
    nanos: AtomicU64,
}

/// This rank's exchanges so far ([`MpiReplicas::traffic`]).
#[derive(Clone, Copy, Debug)]
pub struct TrafficReport {
    pub calls: u64,
    pub bytes_sent: u64,
    pub seconds: f64,
}

struct World(SimpleCommunicator);

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MPI_COMM_WORLD")
    }
}

// SAFETY: MPI was initialised with at least MPI_THREAD_SERIALIZED (checked in `init`), under
// which any thread may call MPI as long as calls never overlap; the communicator is only reached
// through `MpiReplicas::world`'s mutex.
unsafe impl Send for World {}

/// Starts MPI (serialized threading) and returns the universe, which ends MPI when dropped
/// (drop it before the process exits, or call [`MpiReplicas::abort`]), and the world's ranks.
pub fn init() -> Result<(Universe, &'static MpiReplicas)> {
    let Some((universe, level)) = mpi::initialize_with_threading(Threading::Serialized) else {
        bail!("MPI was already initialised in this process");
    };
    if matches!(level, Threading::Single | Threading::Funneled) {
        bail!(
            "the MPI library gives threading level {level:?}; parnet needs Serialized or Multiple"
        );
    }
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let replicas = Box::leak(Box::new(MpiReplicas {
        world: Mutex::new(World(world)),
        rank,
        size,
        traffic: Traffic::default(),
    }));
    Ok((universe, replicas))
}

/// Runs `f` as one rank of an `mpirun` job: MPI started before it and ended after it
/// (`MPI_Finalize`). An error is printed with the rank and ends every rank (`MPI_Abort`), since
/// the other ranks would wait for this one in their next exchange.
pub fn run_as_rank<T>(f: impl FnOnce(&'static MpiReplicas) -> Result<T>) -> Result<T> {
    use std::io::Write as _;
    let (universe, ranks) = init()?;
    match f(ranks) {
        Ok(value) => {
            drop(universe);
            Ok(value)
        }
        Err(e) => {
            eprintln!("error: rank {} of {}: {e:#}", ranks.rank, ranks.size);
            let _ = std::io::stderr().flush();
            ranks.abort(1)
        }
    }
}

/// `counts[k], displs[k]` of `len` values split into `parts` contiguous chunks.
fn chunks(len: usize, parts: usize) -> (Vec<mpi::Count>, Vec<mpi::Count>) {
    let bound = |k: usize| (k * len / parts) as mpi::Count;
    (0..parts)
        .map(|k| (bound(k + 1) - bound(k), bound(k)))
        .unzip()
}

impl MpiReplicas {
    fn with_world<T>(&self, f: impl FnOnce(&SimpleCommunicator) -> T) -> T {
        f(&self.world.lock().unwrap_or_else(|e| e.into_inner()).0)
    }

    /// [`Self::with_world`], counted as one exchange sending `bytes`.
    fn exchange<T>(&self, bytes: usize, f: impl FnOnce(&SimpleCommunicator) -> T) -> T {
        let t0 = Instant::now();
        let out = self.with_world(f);
        let t = &self.traffic;
        t.calls.fetch_add(1, Ordering::Relaxed);
        t.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        t.nanos
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        out
    }

    /// The exchanges of this rank so far: count, bytes sent, time inside them.
    pub fn traffic(&self) -> TrafficReport {
        let t = &self.traffic;
        TrafficReport {
            calls: t.calls.load(Ordering::Relaxed),
            bytes_sent: t.bytes.load(Ordering::Relaxed),
            seconds: t.nanos.load(Ordering::Relaxed) as f64 * 1e-9,
        }
    }

    /// Ends every rank of the job (`MPI_Abort`), for an error on one rank that the others
    /// cannot know of (they would wait for it in the next exchange).
    pub fn abort(&self, code: i32) -> ! {
        self.with_world(|w| w.abort(code))
    }

    /// Rank 0 receives every rank's `local` values (lengths may differ) in rank order; the
    /// other ranks get `None`.
    pub fn gather_to_root(&self, local: &[f32]) -> Option<Vec<Vec<f32>>> {
        self.with_world(|w| {
            let mut lengths = vec![0 as mpi::Count; self.size];
            w.all_gather_into(&(local.len() as mpi::Count), &mut lengths[..]);
            let root = w.process_at_rank(0);
            if self.rank != 0 {
                root.gather_varcount_into(local);
                return None;
            }
            let displs: Vec<mpi::Count> = lengths
                .iter()
                .scan(0, |at, &n| {
                    let d = *at;
                    *at += n;
                    Some(d)
                })
                .collect();
            let total = lengths.iter().map(|&n| n as usize).sum();
            let mut all = vec![0f32; total];
            {
                let mut parts = PartitionMut::new(&mut all[..], &lengths[..], &displs[..]);
                root.gather_varcount_into_root(local, &mut parts);
            }
            Some(
                lengths
                    .iter()
                    .zip(&displs)
                    .map(|(&n, &d)| all[d as usize..(d + n) as usize].to_vec())
                    .collect(),
            )
        })
    }

    /// Waits until every rank is here.
    pub fn barrier(&self) {
        self.with_world(|w| w.barrier());
    }
}

impl Replicas for MpiReplicas {
    fn count(&self) -> usize {
        self.size
    }

    fn index(&self) -> usize {
        self.rank
    }

    fn all_gather_f64(&self, local: &[f64]) -> Vec<f64> {
        let mut all = vec![0.0; local.len() * self.size];
        // A ring all-gather sends N - 1 blocks.
        let bytes = 8 * local.len() * (self.size - 1);
        self.exchange(bytes, |w| w.all_gather_into(local, &mut all[..]));
        all
    }

    fn sum_in_order(&self, values: &mut [f32]) {
        let n = self.size;
        if n == 1 {
            return;
        }
        let (counts, displs) = chunks(values.len(), n);
        let mine = counts[self.rank] as usize;
        let mut received = vec![0f32; n * mine];
        let recv_counts = vec![mine as mpi::Count; n];
        let recv_displs: Vec<mpi::Count> = (0..n).map(|k| (k * mine) as mpi::Count).collect();
        let others = 4 * (values.len() - mine);
        self.exchange(others, |w| {
            let send = Partition::new(&values[..], &counts[..], &displs[..]);
            let mut recv = PartitionMut::new(&mut received[..], &recv_counts[..], &recv_displs[..]);
            w.all_to_all_varcount_into(&send, &mut recv);
        });
        let summed: Vec<f32> = (0..mine)
            .map(|i| (1..n).fold(received[i], |s, k| s + received[k * mine + i]))
            .collect();
        self.exchange(4 * mine * (n - 1), |w| {
            let mut all = PartitionMut::new(values, &counts[..], &displs[..]);
            w.all_gather_varcount_into(&summed[..], &mut all);
        });
    }
}
