//! Per-op wall time of the forward and the backward, for finding where a training step goes.
//!
//! Off by default, and then free: one relaxed atomic load per op. While on, the backward walk
//! times every op's backward (and, under `gradient sums`, the summing of contributions), and each
//! op's forward is charged the time since the previous op finished on the same thread, or since
//! [`restart_forward_clock`] for the first. So a forward's figure includes the glue between ops,
//! and ops whose work runs on several rayon threads are charged once, on the thread that calls
//! them. The forward figures are exact when one thread calls every op (streams run one after
//! another); with concurrent streams, a thread's first op is charged from the restart. Backwards
//! that run at the same time on different threads are each charged their whole wall time, so the
//! backward figures can add up to more than the step.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static FORWARD_START: Mutex<Option<Instant>> = Mutex::new(None);
static TABLE: Mutex<Option<HashMap<&'static str, OpTime>>> = Mutex::new(None);

thread_local! {
    static LAST_MARK: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Accumulated time of one op (by its backward's name).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OpTime {
    pub forward: Duration,
    pub backward: Duration,
    pub forward_calls: usize,
    pub backward_calls: usize,
}

/// Clears the table and starts timing (every thread's forward clock starts at its next op).
pub fn start_profiling() {
    *TABLE.lock().unwrap_or_else(|e| e.into_inner()) = Some(HashMap::new());
    ENABLED.store(true, Ordering::SeqCst);
}

/// Stops timing and returns the table, the most expensive op first.
pub fn stop_profiling() -> Vec<(&'static str, OpTime)> {
    ENABLED.store(false, Ordering::SeqCst);
    let table = TABLE.lock().unwrap_or_else(|e| e.into_inner()).take();
    let mut rows: Vec<(&'static str, OpTime)> = table.unwrap_or_default().into_iter().collect();
    rows.sort_by(|a, b| {
        (b.1.forward + b.1.backward)
            .cmp(&(a.1.forward + a.1.backward))
            .then(a.0.cmp(b.0))
    });
    rows
}

/// Restarts the forward clock of every thread (call just before a forward pass begins).
pub fn restart_forward_clock() {
    if enabled() {
        *FORWARD_START.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
}

#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Charges the time since this thread's previous mark to `name`'s forward.
pub(crate) fn mark_forward(name: &'static str) {
    let now = Instant::now();
    let restart = *FORWARD_START.lock().unwrap_or_else(|e| e.into_inner());
    let previous = LAST_MARK.with(|m| m.replace(Some(now)));
    if let Some(start) = previous.max(restart) {
        record(name, |t| {
            t.forward += now - start;
            t.forward_calls += 1;
        });
    }
}

/// Charges `elapsed` to `name`'s backward.
pub(crate) fn add_backward(name: &'static str, elapsed: Duration) {
    record(name, |t| {
        t.backward += elapsed;
        t.backward_calls += 1;
    });
}

fn record(name: &'static str, f: impl FnOnce(&mut OpTime)) {
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(table) = table.as_mut() {
        f(table.entry(name).or_default());
    }
}
