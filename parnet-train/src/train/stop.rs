//! Stopping a run gracefully: Ctrl-C and SIGTERM ask the loop to checkpoint and stop after its
//! current step.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static HANDLER: Once = Once::new();

/// Asks a running training loop to checkpoint and stop after its current step (what Ctrl-C and
/// SIGTERM do).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether a stop has been asked for since [`arm`].
pub(super) fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Installs the signal handler (once per process) and forgets earlier requests.
pub(super) fn arm() {
    HANDLER.call_once(|| {
        // Failing to install (another handler exists) only loses the graceful stop; the
        // per-epoch checkpoints still protect the run.
        let _ = ctrlc::set_handler(request_stop);
    });
    STOP.store(false, Ordering::SeqCst);
}
