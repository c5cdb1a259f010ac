//! Channel permutations of `[N, C, H, W]` tensors used by the fusion block (PARNET-SPEC 2.5):
//! [`interleave_channels`] (step 2) and [`channel_shuffle`] (step 4).
//!
//! Both copy whole `H x W` planes: each output plane is the copy of one input plane, so the ops are
//! exact, and the backward is the inverse plane gather.

pub mod interleave;
pub mod shuffle;

pub use interleave::{
    interleave_channels, interleave_channels_forward, interleave_channels_reference,
};
pub use shuffle::{
    channel_shuffle, channel_shuffle_forward, channel_shuffle_reference, channel_shuffle_source,
};

use rayon::prelude::*;

use crate::kernels::parallel::planes_per_task;

/// Fills every plane `p` of `out` (planes of `plane_len` floats) with a copy of `source(p)`, on
/// rayon over groups of planes.
pub(crate) fn gather_planes<'a>(
    out: &mut [f32],
    plane_len: usize,
    source: impl Fn(usize) -> &'a [f32] + Sync,
) {
    if plane_len == 0 {
        return;
    }
    let ppt = planes_per_task(plane_len);
    out.par_chunks_mut(ppt * plane_len)
        .enumerate()
        .for_each(|(task, o)| {
            for (k, plane) in o.chunks_exact_mut(plane_len).enumerate() {
                plane.copy_from_slice(source(task * ppt + k));
            }
        });
}

/// Plane `p` (of `plane_len` floats) of `data`.
fn plane(data: &[f32], p: usize, plane_len: usize) -> &[f32] {
    &data[p * plane_len..(p + 1) * plane_len]
}
