//! `accuracy_topk`: how many rows have their target among the `k` largest logits (no autograd).

/// Counts the rows of the row-major `[N, k_classes]` `logits` whose target class is among the `k`
/// largest logits of the row. Ties are broken toward the lower class index (so the count is a
/// deterministic function of the inputs); a NaN target logit never counts as correct.
///
/// # Panics
/// If `logits.len() != targets.len() * k_classes` or a target is `>= k_classes` (caller bugs: the
/// training loop builds both from the same batch).
pub fn accuracy_topk(logits: &[f32], k_classes: usize, targets: &[usize], k: usize) -> usize {
    assert_eq!(
        logits.len(),
        targets.len() * k_classes,
        "accuracy_topk: {} logits for {} targets of {k_classes} classes",
        logits.len(),
        targets.len()
    );
    if k_classes == 0 {
        return 0;
    }
    logits
        .chunks_exact(k_classes)
        .zip(targets)
        .filter(|&(row, &t)| {
            assert!(
                t < k_classes,
                "accuracy_topk: target {t} >= {k_classes} classes"
            );
            let z = row[t];
            // Classes ranked above the target: larger logits, and equal logits at lower indices.
            let above = row
                .iter()
                .enumerate()
                .filter(|&(j, &v)| v > z || (v == z && j < t))
                .count();
            !z.is_nan() && above < k
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_top1_and_top3() {
        let logits = [
            0.1, 0.9, 0.3, 0.2, // rank of each class (0 = largest): 3, 0, 1, 2
            5.0, 4.0, 3.0, 2.0, // 0, 1, 2, 3
        ];
        assert_eq!(accuracy_topk(&logits, 4, &[1, 0], 1), 2);
        assert_eq!(accuracy_topk(&logits, 4, &[2, 3], 1), 0);
        assert_eq!(accuracy_topk(&logits, 4, &[2, 3], 3), 1);
        assert_eq!(accuracy_topk(&logits, 4, &[0, 3], 3), 0);
        assert_eq!(accuracy_topk(&logits, 4, &[3, 2], 3), 2);
        assert_eq!(accuracy_topk(&logits, 4, &[0, 3], 4), 2);
        assert_eq!(accuracy_topk(&logits, 4, &[0, 3], 0), 0);
    }

    #[test]
    fn ties_go_to_the_lower_index_and_nan_is_wrong() {
        let logits = [1.0, 1.0, 1.0];
        assert_eq!(accuracy_topk(&logits, 3, &[0], 1), 1);
        assert_eq!(accuracy_topk(&logits, 3, &[1], 1), 0);
        assert_eq!(accuracy_topk(&logits, 3, &[1], 2), 1);
        assert_eq!(accuracy_topk(&[f32::NAN, 0.0], 2, &[0], 2), 0);
    }

    #[test]
    #[should_panic(expected = "accuracy_topk")]
    fn panics_on_mismatched_lengths() {
        accuracy_topk(&[0.0; 5], 2, &[0, 1], 1);
    }
}
