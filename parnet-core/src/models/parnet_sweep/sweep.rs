//! The standard depth sweep at roughly constant multiply-adds (issue 6).

use super::spec::{MAX_STREAMS, SweepSpec};

/// Depths the full sweep aims at, for every stream count.
pub const DEPTH_TARGETS: [usize; 5] = [8, 12, 18, 24, 30];
/// Depths the quick sweep aims at (streams 1 and 3 only; a subset of [`DEPTH_TARGETS`]).
pub const QUICK_DEPTH_TARGETS: [usize; 2] = [8, 24];
/// Every member's multiply-adds are within this fraction of the target.
pub const MACS_TOLERANCE: f64 = 0.10;
/// How far a member's depth may stray from the depth aimed at.
pub const DEPTH_SLACK: usize = 2;

/// The sweep members for `target_macs` multiply-adds per image at `image_size`.
///
/// For each stream count (1..=4; `quick`: 1 and 3) and each depth aimed at, the member is the
/// (blocks, matching width) whose depth is closest to the aim, within [`DEPTH_SLACK`], among those
/// whose multiply-adds are within [`MACS_TOLERANCE`] of the target (ties: the closer
/// multiply-adds). An aim no member can meet is left out, as is a repeated member, so callers
/// should check the coverage they need. Ordered by streams, then depth.
pub fn depth_sweep(
    target_macs: usize,
    image_size: usize,
    num_classes: usize,
    quick: bool,
) -> Vec<SweepSpec> {
    let (streams, aims): (Vec<usize>, &[usize]) = if quick {
        (vec![1, 3], &QUICK_DEPTH_TARGETS)
    } else {
        ((1..=MAX_STREAMS).collect(), &DEPTH_TARGETS)
    };
    let mut out: Vec<SweepSpec> = Vec::new();
    for &s in &streams {
        for &aim in aims {
            let best = (1..=aim + DEPTH_SLACK)
                .filter_map(|b| {
                    let spec = SweepSpec::matching_macs(s, b, target_macs, image_size, num_classes)
                        .ok()?;
                    let error = spec.macs(image_size) as f64 / target_macs as f64 - 1.0;
                    let miss = spec.depth().abs_diff(aim);
                    (error.abs() <= MACS_TOLERANCE && miss <= DEPTH_SLACK).then_some((
                        miss,
                        error.abs(),
                        spec,
                    ))
                })
                .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            if let Some((_, _, spec)) = best
                && !out.contains(&spec)
            {
                out.push(spec);
            }
        }
    }
    out
}
