//! The batch loader: a seeded shuffle per epoch, samples transformed in parallel on rayon into
//! one reusable f32 buffer per batch, and a bounded prefetch queue that overlaps the next batch
//! with the training step.
//!
//! Determinism contract: sample `i` (dataset index) in epoch `e` is transformed with the RNG
//! `sample_rng(seed, AUGMENT, e, i)`, and the epoch order comes from `sample_rng(seed, SHUFFLE,
//! e, 0)`, so every batch is bit-identical whatever the number of threads or prefetch depth.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::seed::{permutation, sample_rng, streams};
use crate::transforms::{NormalizeTable, Pipeline, Scratch};

mod epoch_iter;
mod split;

pub use epoch_iter::EpochIter;
pub use split::train_val_split;

/// Loader settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// A fresh seeded permutation each epoch (else dataset order).
    pub shuffle: bool,
    /// Leave out the last batch if it is smaller than `batch_size`.
    pub drop_last: bool,
    /// The run's seed: every random choice derives from it.
    pub seed: u64,
    /// Batches prepared ahead by [`Loader::epoch`] (bounded queue depth, at least 1).
    pub prefetch: usize,
}

impl LoaderConfig {
    /// Shuffled training batches, drop_last, prefetch 2.
    pub fn train(batch_size: usize, seed: u64) -> Self {
        LoaderConfig {
            batch_size,
            shuffle: true,
            drop_last: true,
            seed,
            prefetch: 2,
        }
    }

    /// Evaluation batches in dataset order, keeping the last partial batch.
    pub fn eval(batch_size: usize) -> Self {
        LoaderConfig {
            batch_size,
            shuffle: false,
            drop_last: false,
            seed: 0,
            prefetch: 2,
        }
    }
}

/// One batch: `images` is `len × 3 × height × width` f32 (NCHW), `labels[k]` and `indices[k]`
/// (dataset index) belong to image `k`. Hand it back with [`EpochIter::recycle`] to reuse it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
    pub indices: Vec<usize>,
    pub height: usize,
    pub width: usize,
    pub epoch: u64,
    pub batch_index: usize,
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Shape `[N, 3, H, W]`.
    pub fn shape(&self) -> [usize; 4] {
        [self.len(), 3, self.height, self.width]
    }

    /// The CHW floats of image `k`.
    pub fn image(&self, k: usize) -> &[f32] {
        let n = 3 * self.height * self.width;
        &self.images[k * n..(k + 1) * n]
    }
}

/// A deterministic, parallel, prefetching batch loader over any [`Dataset`].
#[derive(Clone)]
pub struct Loader {
    dataset: Arc<dyn Dataset>,
    pipeline: Arc<Pipeline>,
    table: Arc<NormalizeTable>,
    config: LoaderConfig,
    subset: Option<Arc<Vec<usize>>>,
    size: (usize, usize),
    pool: Option<Arc<rayon::ThreadPool>>,
    /// `(index, count)`: this loader yields share `index` of `count` of every batch.
    shard: (usize, usize),
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Loader {
    /// Checks the config and works out the sample size (from the dataset's fixed size, the
    /// pipeline's last resizing op, or else by loading the first sample).
    pub fn new(
        dataset: Arc<dyn Dataset>,
        pipeline: Pipeline,
        config: LoaderConfig,
    ) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(DataError::config("loader", "batch_size must be > 0"));
        }
        if dataset.is_empty() {
            return Err(DataError::config(
                "loader",
                format!("{} is empty", dataset.describe()),
            ));
        }
        let input = match dataset.image_size() {
            Some(size) => size,
            None => match pipeline.fixed_output_size() {
                Some(_) => (1 << 16, 1 << 16),
                None => {
                    let (image, _) = dataset.get(0)?;
                    (image.height, image.width)
                }
            },
        };
        let size = pipeline.output_size(input)?;
        Ok(Loader {
            dataset,
            table: Arc::new(pipeline.table()),
            pipeline: Arc::new(pipeline),
            config,
            subset: None,
            size,
            pool: None,
            shard: (0, 1),
        })
    }

    /// Restricts the loader to these dataset indices (e.g. one side of [`train_val_split`]).
    pub fn with_subset(mut self, indices: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.dataset.len()) {
            return Err(DataError::IndexOutOfRange {
                what: self.dataset.describe(),
                index: bad,
                len: self.dataset.len(),
            });
        }
        if indices.is_empty() {
            return Err(DataError::config("loader", "empty subset"));
        }
        self.subset = Some(Arc::new(indices));
        Ok(self)
    }

    /// Runs the per-sample work on `pool` instead of rayon's global pool.
    pub fn with_thread_pool(mut self, pool: Arc<rayon::ThreadPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Makes every batch share `index` of `count` equal-as-can-be contiguous shares of the batch
    /// the loader would otherwise give (a data-parallel replica's images): the union of the
    /// shares over `index` is the whole batch, in order, each image with the same augmentation.
    pub fn with_shard(mut self, index: usize, count: usize) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(DataError::config(
                "loader",
                format!("shard {index} of {count}: needs 0 <= index < count"),
            ));
        }
        if count > self.config.batch_size {
            return Err(DataError::config(
                "loader",
                format!(
                    "{count} shards of batches of {}: every shard needs an image",
                    self.config.batch_size
                ),
            ));
        }
        self.shard = (index, count);
        Ok(self)
    }

    /// `(index, count)` of [`Loader::with_shard`] (`(0, 1)`: whole batches).
    pub fn shard(&self) -> (usize, usize) {
        self.shard
    }

    /// Samples per epoch (before drop_last).
    pub fn len(&self) -> usize {
        self.subset.as_ref().map_or(self.dataset.len(), |s| s.len())
    }

    /// True if there is no sample (never, once constructed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// `(height, width)` of every output image.
    pub fn image_size(&self) -> (usize, usize) {
        self.size
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// The settings.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Dataset indices in the order epoch `epoch` visits them.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let n = self.len();
        let positions = if self.config.shuffle {
            permutation(
                n,
                &mut sample_rng(self.config.seed, streams::SHUFFLE, epoch, 0),
            )
        } else {
            (0..n).collect()
        };
        match &self.subset {
            Some(subset) => positions.into_iter().map(|p| subset[p]).collect(),
            None => positions,
        }
    }

    /// Fills `batch` with batch `batch_index` of an epoch whose order is `order`, reusing its
    /// buffers. Samples are processed in parallel; the first failing sample (in batch order) is
    /// the error returned.
    pub fn fill_batch(
        &self,
        epoch: u64,
        order: &[usize],
        batch_index: usize,
        batch: &mut Batch,
    ) -> Result<()> {
        let b = self.config.batch_size;
        let start = batch_index * b;
        if start >= order.len() {
            return Err(DataError::IndexOutOfRange {
                what: "loader batches".into(),
                index: batch_index,
                len: self.num_batches(),
            });
        }
        let whole = &order[start..(start + b).min(order.len())];
        let (k, count) = self.shard;
        let indices = &whole[k * whole.len() / count..(k + 1) * whole.len() / count];
        let (h, w) = self.size;
        let sample_len = 3 * h * w;
        batch.images.resize(indices.len() * sample_len, 0.0);
        batch.labels.resize(indices.len(), 0);
        batch.indices.clear();
        batch.indices.extend_from_slice(indices);
        (batch.height, batch.width, batch.epoch, batch.batch_index) = (h, w, epoch, batch_index);
        let mut run = || -> Vec<Option<DataError>> {
            batch
                .images
                .par_chunks_mut(sample_len)
                .zip(batch.labels.par_iter_mut())
                .zip(indices.par_iter())
                .map(|((out, label), &index)| {
                    SCRATCH
                        .with(|s| self.load_sample(epoch, index, out, label, &mut s.borrow_mut()))
                        .err()
                })
                .collect()
        };
        let errors = match &self.pool {
            Some(pool) => pool.install(run),
            None => run(),
        };
        match errors.into_iter().flatten().next() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Loads, transforms and normalises one sample into `out`.
    fn load_sample(
        &self,
        epoch: u64,
        index: usize,
        out: &mut [f32],
        label: &mut usize,
        scratch: &mut Scratch,
    ) -> Result<()> {
        *label = self.dataset.load_into(index, &mut scratch.image)?;
        let mut rng = sample_rng(self.config.seed, streams::AUGMENT, epoch, index as u64);
        // The pipeline's size checks ran at construction for fixed-size inputs; images of a
        // folder may differ, so check this one before transforming.
        let size = self
            .pipeline
            .output_size((scratch.image.height, scratch.image.width))
            .map_err(|e| {
                DataError::config(
                    format!("{} image {index}", self.dataset.describe()),
                    e.to_string(),
                )
            })?;
        if size != self.size {
            return Err(DataError::SizeMismatch {
                what: self.dataset.describe(),
                index,
                got_h: size.0,
                got_w: size.1,
                want_h: self.size.0,
                want_w: self.size.1,
            });
        }
        self.pipeline
            .apply_into(&self.table, scratch, out, &mut rng);
        Ok(())
    }

    /// Loads batch `batch_index` of `epoch` into a new batch (no prefetch).
    pub fn load_batch(&self, epoch: u64, batch_index: usize) -> Result<Batch> {
        let mut batch = Batch::default();
        self.fill_batch(epoch, &self.epoch_order(epoch), batch_index, &mut batch)?;
        Ok(batch)
    }

    /// Iterates over the batches of `epoch`, prepared by a background thread up to
    /// `config.prefetch` batches ahead. Stops after the first error.
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        self.epoch_from(epoch, 0)
    }

    /// Like [`Loader::epoch`], but starts at batch `first_batch` (a resumed run's position):
    /// the batches before it are neither loaded nor augmented, and the ones yielded are exactly
    /// those `epoch(epoch)` would yield from that index on. Empty if `first_batch` is past the end.
    pub fn epoch_from(&self, epoch: u64, first_batch: usize) -> EpochIter {
        let depth = self.config.prefetch.max(1);
        let (tx, rx) = sync_channel::<Result<Batch>>(depth);
        let (recycle_tx, recycle_rx) = channel::<Batch>();
        let stop = Arc::new(AtomicBool::new(false));
        let loader = self.clone();
        let thread_stop = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(format!("parnet-data-epoch-{epoch}"))
            .spawn(move || loader.produce(epoch, first_batch, &tx, &recycle_rx, &thread_stop))
            .expect("spawning the prefetch thread");
        EpochIter {
            rx: Some(rx),
            recycle_tx,
            stop,
            handle: Some(handle),
            remaining: self.num_batches().saturating_sub(first_batch),
        }
    }

    fn produce(
        &self,
        epoch: u64,
        first_batch: usize,
        tx: &SyncSender<Result<Batch>>,
        recycle: &Receiver<Batch>,
        stop: &AtomicBool,
    ) {
        let order = self.epoch_order(epoch);
        for batch_index in first_batch..self.num_batches() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let mut batch = recycle.try_recv().unwrap_or_default();
            let result = self
                .fill_batch(epoch, &order, batch_index, &mut batch)
                .map(|()| batch);
            let failed = result.is_err();
            if tx.send(result).is_err() || failed {
                return;
            }
        }
    }
}
