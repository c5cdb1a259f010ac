//! Seeded train/validation split.

use crate::error::{DataError, Result};
use crate::seed::{permutation, sample_rng, streams};

/// A seeded split of `0..n` into (train, validation) index lists, each sorted;
/// `val_count` indices go to validation. Fails if `val_count > n`.
pub fn train_val_split(n: usize, val_count: usize, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if val_count > n {
        return Err(DataError::config(
            "train_val_split",
            format!("val_count {val_count} > n {n}"),
        ));
    }
    let order = permutation(n, &mut sample_rng(seed, streams::SPLIT, 0, 0));
    let mut val = order[..val_count].to_vec();
    let mut train = order[val_count..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    Ok((train, val))
}
