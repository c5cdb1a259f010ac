//! Wall-clock timing: median of repeated runs after warm-up.

use std::time::{Duration, Instant};

/// Runs `f` `warmup` times, then at least `min_runs` times and for at least `min_time`, and
/// returns the median run time in seconds.
pub fn median_secs(warmup: usize, min_runs: usize, min_time: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < min_runs || start.elapsed() < min_time {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// [`median_secs`] in milliseconds with one warm-up run, at least 5 runs and 0.3 s of runs.
pub fn median_ms(f: impl FnMut()) -> f64 {
    median_secs(1, 5, Duration::from_millis(300), f) * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_warmup_plus_at_least_min_runs() {
        let mut calls = 0;
        let t = median_secs(2, 5, Duration::ZERO, || calls += 1);
        assert_eq!(calls, 7);
        assert!(t >= 0.0);
    }
}
