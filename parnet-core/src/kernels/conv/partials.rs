//! How a weight gradient is split into partial sums (shared by the direct and the GEMM weight
//! gradients).

use std::ops::Range;

/// At most this many per-task partial weight gradients are summed.
const MAX_WEIGHT_PARTIALS: usize = 16;
/// ... and together they hold at most this many floats (32 MiB).
const WEIGHT_PARTIALS_BUDGET: usize = 8 << 20;

/// How a weight gradient over `units` pieces of work (tiles or images) is cut into runs, each
/// summed into its own partial gradient of `weight_len` floats: at most [`MAX_WEIGHT_PARTIALS`]
/// runs holding at most [`WEIGHT_PARTIALS_BUDGET`] floats together, contiguous and of sizes that
/// differ by at most one. Depends only on the two counts, so the partials (added in run order)
/// give the same bits for any thread count.
pub(crate) fn weight_partial_runs(weight_len: usize, units: usize) -> Vec<Range<usize>> {
    let runs = MAX_WEIGHT_PARTIALS
        .min(WEIGHT_PARTIALS_BUDGET / weight_len.max(1))
        .clamp(1, units.max(1));
    (0..runs)
        .map(|r| r * units / runs..(r + 1) * units / runs)
        .collect()
}
