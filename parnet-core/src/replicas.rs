//! Data-parallel replicas: the processes (or threads) that each run the same training step on
//! their share of one global batch, and the two collectives the step needs from them.
//!
//! The core knows only the [`Replicas`] trait; parnet-train implements it over MPI, and
//! [`LocalGroup`] implements it over threads of one process (for tests, and for checking a
//! distributed step against a single-process one without MPI). Every sum runs in replica order
//! (`0 + 1 + 2 + ...`), never in arrival order, so every replica gets the same bits and a run is
//! repeatable.
//!
//! Collectives must be entered by every replica in the same order: a step that synchronises its
//! batch norms therefore runs its streams and its backward in order (see
//! `training::StepOptions::replicas`).

use std::sync::{Barrier, Mutex};

/// A group of replicas of one training step.
pub trait Replicas: Send + Sync + std::fmt::Debug {
    /// Replicas in the group (at least 1).
    fn count(&self) -> usize;
    /// This replica's index, `0..count()`.
    fn index(&self) -> usize;
    /// Every replica's `local` values concatenated in replica order (`count() * local.len()`
    /// values); every replica passes the same length.
    fn all_gather_f64(&self, local: &[f64]) -> Vec<f64>;
    /// Replaces `values` on every replica by their element-wise sum over the replicas, added in
    /// replica order; every replica passes the same length.
    fn sum_in_order(&self, values: &mut [f32]);
}

/// Where a training-mode batch norm takes its statistics from: this replica's images only
/// (`None`), or the whole global batch of every replica (synchronised batch norm).
pub type BatchSync = Option<&'static dyn Replicas>;

/// `values` replaced by their element-wise f64 sum over the replicas, in replica order.
pub fn sum_f64(replicas: &dyn Replicas, values: &mut [f64]) {
    let len = values.len();
    let all = replicas.all_gather_f64(values);
    for (j, v) in values.iter_mut().enumerate() {
        *v = (0..replicas.count()).fold(0.0, |s, r| s + all[r * len + j]);
    }
}

/// Per-channel moments of the global batch from each replica's `(mean, sum((x - mean)^2))` over
/// its `count` values per channel: Chan, Golub and LeVeque's pairwise combination, in replica
/// order. Returns the global `(mean, sum((x - mean)^2))` per channel and the global count.
pub fn combine_moments(
    replicas: &dyn Replicas,
    local: &[(f64, f64)],
    count: usize,
) -> (Vec<(f64, f64)>, usize) {
    let mut packed = Vec::with_capacity(1 + 2 * local.len());
    packed.push(count as f64);
    for &(mean, m2) in local {
        packed.extend([mean, m2]);
    }
    let stride = packed.len();
    let all = replicas.all_gather_f64(&packed);
    let total: f64 = (0..replicas.count()).fold(0.0, |s, r| s + all[r * stride]);
    let global = (0..local.len())
        .map(|ch| {
            let (mut n, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
            for r in 0..replicas.count() {
                let at = r * stride;
                let (nb, mean_b, m2_b) = (all[at], all[at + 1 + 2 * ch], all[at + 2 + 2 * ch]);
                if nb == 0.0 {
                    continue;
                }
                if n == 0.0 {
                    (n, mean, m2) = (nb, mean_b, m2_b);
                    continue;
                }
                let joined = n + nb;
                let delta = mean_b - mean;
                mean += delta * nb / joined;
                m2 += m2_b + delta * delta * n * nb / joined;
                n = joined;
            }
            (mean, m2)
        })
        .collect();
    (global, total as usize)
}

/// One replica of a group whose replicas are threads of this process (a barrier and a shared
/// table): [`LocalGroup::new`] gives one handle per replica, each to be used by one thread.
#[derive(Debug)]
pub struct LocalGroup {
    shared: std::sync::Arc<Shared>,
    index: usize,
}

#[derive(Debug)]
struct Shared {
    count: usize,
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f64>>>,
}

impl LocalGroup {
    /// `count` replicas, leaked so that they can be handed to a step as `&'static` (a group lives
    /// as long as the process in practice; tests make a few).
    pub fn new(count: usize) -> Vec<&'static LocalGroup> {
        assert!(count > 0, "a group has at least one replica");
        let shared = std::sync::Arc::new(Shared {
            count,
            barrier: Barrier::new(count),
            slots: Mutex::new(vec![Vec::new(); count]),
        });
        (0..count)
            .map(|index| {
                &*Box::leak(Box::new(LocalGroup {
                    shared: shared.clone(),
                    index,
                }))
            })
            .collect()
    }

    /// Deposits `local`, waits for every replica, reads the table, waits again (so the table is
    /// not overwritten before every replica has read it).
    fn exchange<T>(&self, local: Vec<f64>, read: impl FnOnce(&[Vec<f64>]) -> T) -> T {
        let s = &self.shared;
        s.slots.lock().unwrap_or_else(|e| e.into_inner())[self.index] = local;
        s.barrier.wait();
        let out = read(&s.slots.lock().unwrap_or_else(|e| e.into_inner()));
        s.barrier.wait();
        out
    }
}

impl Replicas for LocalGroup {
    fn count(&self) -> usize {
        self.shared.count
    }

    fn index(&self) -> usize {
        self.index
    }

    fn all_gather_f64(&self, local: &[f64]) -> Vec<f64> {
        self.exchange(local.to_vec(), |slots| slots.concat())
    }

    fn sum_in_order(&self, values: &mut [f32]) {
        let local = values.iter().map(|&v| v as f64).collect();
        self.exchange(local, |slots| {
            for (j, v) in values.iter_mut().enumerate() {
                *v = slots[1..]
                    .iter()
                    .fold(slots[0][j] as f32, |s, slot| s + slot[j] as f32);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_threads<T: Send>(count: usize, f: impl Fn(&'static LocalGroup) -> T + Sync) -> Vec<T> {
        let group = LocalGroup::new(count);
        std::thread::scope(|s| {
            let handles: Vec<_> = group.iter().map(|&g| s.spawn(|| f(g))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn sums_run_in_replica_order_on_every_replica() {
        // 1e8 + 1 - 1e8 in f32: 0 in order (1e8 + 1 rounds to 1e8), not 1.
        let values = [1e8f32, 1.0, -1e8];
        let out = on_threads(3, |g| {
            let mut v = [values[g.index()], 2.0 * g.index() as f32];
            g.sum_in_order(&mut v);
            v
        });
        for v in &out {
            assert_eq!(*v, [0.0, 6.0]);
        }
    }

    #[test]
    fn combined_moments_equal_those_of_the_joined_values() {
        let data: Vec<Vec<f64>> = vec![vec![1.0, 2.0, 4.0], vec![10.0, 11.0], vec![-3.0]];
        let moments = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            (mean, v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>())
        };
        let out = on_threads(3, |g| {
            let v = &data[g.index()];
            combine_moments(g, &[moments(v), (0.0, 0.0)], v.len())
        });
        let all: Vec<f64> = data.concat();
        let (mean, m2) = moments(&all);
        for (global, count) in &out {
            assert_eq!(*count, 6);
            assert!((global[0].0 - mean).abs() < 1e-12 && (global[0].1 - m2).abs() < 1e-9);
            assert_eq!(global[1], (0.0, 0.0));
        }
        let mut sums = on_threads(2, |g| {
            let mut v = [g.index() as f64 + 0.5];
            sum_f64(g, &mut v);
            v[0]
        });
        sums.dedup();
        assert_eq!(sums, [2.0]);
    }
}
