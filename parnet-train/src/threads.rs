//! The one rayon pool's size, set once per process before any parallel work.

use anyhow::{Result, bail};

/// Sizes the one rayon pool (before any parallel work); `None` keeps one thread per core.
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    if threads == Some(0) {
        bail!("the thread count must be at least 1");
    }
    if let Some(warning) = threads.and_then(threads_warning) {
        eprintln!("{warning}");
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

/// A warning (not a refusal) when more threads are asked for than the machine has cores.
pub fn threads_warning(threads: usize) -> Option<String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (threads > cores).then(|| {
        format!(
            "warning: --threads {threads} on a machine with {cores} cores; the extra threads only contend for them"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_beyond_the_cores_are_warned_about() {
        let cores = std::thread::available_parallelism().unwrap().get();
        assert!(threads_warning(cores).is_none());
        assert!(threads_warning(cores + 1).unwrap().contains("cores"));
    }
}
