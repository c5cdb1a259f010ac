//! Chunked rayon helpers for elementwise work. Chunks have a fixed size, so results never depend
//! on the number of threads.

use rayon::prelude::*;

/// Elements per rayon task for memory-bound elementwise loops.
pub const ELEMENTWISE_CHUNK: usize = 1 << 15;

/// How many `(n, c)` planes of `plane_len` floats one rayon task handles: about
/// [`ELEMENTWISE_CHUNK`] floats, at least one plane. Depends only on the shape, never on the
/// thread count. (Shared by the plane-wise ops in `pool`, `channel` and `elementwise`.)
pub fn planes_per_task(plane_len: usize) -> usize {
    (ELEMENTWISE_CHUNK / plane_len.max(1)).max(1)
}

/// `out[i] = f(a[i])`.
pub fn map_into(out: &mut [f32], a: &[f32], f: impl Fn(f32) -> f32 + Sync) {
    debug_assert_eq!(out.len(), a.len());
    out.par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(a.par_chunks(ELEMENTWISE_CHUNK))
        .for_each(|(o, a)| o.iter_mut().zip(a).for_each(|(o, &a)| *o = f(a)));
}

/// `out[i] = f(a[i], b[i])`.
pub fn zip_map_into(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    debug_assert_eq!(out.len(), a.len());
    debug_assert_eq!(out.len(), b.len());
    out.par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(a.par_chunks(ELEMENTWISE_CHUNK))
        .zip(b.par_chunks(ELEMENTWISE_CHUNK))
        .for_each(|((o, a), b)| {
            o.iter_mut()
                .zip(a.iter().zip(b))
                .for_each(|(o, (&a, &b))| *o = f(a, b))
        });
}

/// Sum of all values, accumulated in f64 per fixed chunk and combined in chunk order.
pub fn sum_f64(a: &[f32]) -> f64 {
    let partials: Vec<f64> = a
        .par_chunks(ELEMENTWISE_CHUNK)
        .map(|c| c.iter().map(|&x| x as f64).sum::<f64>())
        .collect();
    partials.into_iter().sum()
}
