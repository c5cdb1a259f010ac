//! `EpochIter`: the consumer side of the prefetch queue of [`super::Loader::epoch`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;

use super::Batch;
use crate::error::Result;

/// The batches of one epoch, prefetched by a background thread. Dropping it stops the thread.
pub struct EpochIter {
    pub(super) rx: Option<Receiver<Result<Batch>>>,
    pub(super) recycle_tx: Sender<Batch>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) handle: Option<JoinHandle<()>>,
    pub(super) remaining: usize,
}

impl EpochIter {
    /// Hands a used batch back so its buffers are refilled instead of allocating new ones.
    pub fn recycle(&self, batch: Batch) {
        // If the producer has finished the batch is simply dropped.
        let _ = self.recycle_tx.send(batch);
    }
}

impl Iterator for EpochIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let item = self.rx.as_ref()?.recv().ok()?;
        self.remaining = if item.is_err() { 0 } else { self.remaining - 1 };
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx.take();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
