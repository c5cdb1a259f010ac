//! The one rayon pool's size, set once per process before any parallel work.

use anyhow::{Result, bail};

/// Sizes the one rayon pool (before any parallel work); `None` keeps one thread per core.
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    if threads == Some(0) {
        bail!("the thread count must be at least 1");
    }
    // Build first: asking rayon for its thread count would itself start the global pool.
    if let Some(t) = threads
        && rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .is_err()
        && rayon::current_num_threads() != t
    {
        bail!(
            "cannot set {t} threads: the thread pool was already started with {}",
            rayon::current_num_threads()
        );
    }
    Ok(())
}
