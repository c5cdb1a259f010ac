//! The loader: determinism across thread counts and prefetch, shuffling, drop_last, recycling,
//! subsets and error propagation.

use std::sync::Arc;

use parnet_data::{
    Batch, DataError, Dataset, Image, ImageOp, Interpolation, Loader, LoaderConfig, Pipeline,
    RandAugment, RandomErasing, SyntheticSet, train_val_split,
};

fn pool(threads: usize) -> Arc<rayon::ThreadPool> {
    Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap(),
    )
}

/// A pipeline that exercises every random transform.
fn heavy_pipeline() -> Pipeline {
    Pipeline {
        ops: vec![
            ImageOp::RandomResizedCrop {
                size: 24,
                scale: [0.08, 1.0],
                ratio: [0.75, 4.0 / 3.0],
                interpolation: Interpolation::Random,
            },
            ImageOp::HorizontalFlip { prob: 0.5 },
            ImageOp::RandAugment(RandAugment::default()),
        ],
        random_erasing: Some(RandomErasing::with_prob(0.5)),
        ..Pipeline::cifar_eval()
    }
}

fn all_batches(loader: &Loader, epoch: u64) -> Vec<Batch> {
    let mut iter = loader.epoch(epoch);
    let mut out = Vec::new();
    while let Some(batch) = iter.next() {
        let batch = batch.unwrap();
        out.push(batch.clone());
        iter.recycle(batch);
    }
    out
}

#[test]
fn batches_are_bit_identical_with_1_and_2_threads() {
    let data: Arc<dyn Dataset> = Arc::new(SyntheticSet::new(150, 3));
    for pipeline in [Pipeline::cifar_train(), heavy_pipeline()] {
        let config = LoaderConfig {
            batch_size: 32,
            shuffle: true,
            drop_last: false,
            seed: 42,
            prefetch: 3,
        };
        let one = Loader::new(Arc::clone(&data), pipeline.clone(), config.clone())
            .unwrap()
            .with_thread_pool(pool(1));
        let two = Loader::new(Arc::clone(&data), pipeline.clone(), config)
            .unwrap()
            .with_thread_pool(pool(2));
        for epoch in 0..2 {
            let a = all_batches(&one, epoch);
            let b = all_batches(&two, epoch);
            assert_eq!(a.len(), 5);
            assert_eq!(a, b, "epoch {epoch}");
            // Without prefetch, on the global pool, one batch at a time: the same again.
            for (k, batch) in a.iter().enumerate() {
                assert_eq!(&one.load_batch(epoch, k).unwrap(), batch);
            }
        }
    }
}

#[test]
fn each_epoch_is_a_fresh_permutation_and_labels_follow_indices() {
    let data: Arc<dyn Dataset> = Arc::new(SyntheticSet::new(100, 3));
    let loader = Loader::new(
        Arc::clone(&data),
        Pipeline::cifar_train(),
        LoaderConfig::train(10, 5),
    )
    .unwrap();
    let orders: Vec<Vec<usize>> = (0..3)
        .map(|e| {
            all_batches(&loader, e)
                .iter()
                .flat_map(|b| b.indices.clone())
                .collect()
        })
        .collect();
    for order in &orders {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }
    assert_ne!(orders[0], orders[1]);
    assert_ne!(orders[1], orders[2]);
    assert_ne!(orders[0], (0..100).collect::<Vec<_>>());
    let other_seed = Loader::new(
        Arc::clone(&data),
        Pipeline::cifar_train(),
        LoaderConfig::train(10, 6),
    )
    .unwrap();
    assert_ne!(other_seed.epoch_order(0), loader.epoch_order(0));
    assert_eq!(loader.epoch_order(1), orders[1]);
    for batch in all_batches(&loader, 0) {
        assert_eq!(batch.shape(), [10, 3, 32, 32]);
        for (k, &index) in batch.indices.iter().enumerate() {
            assert_eq!(batch.labels[k], data.label(index).unwrap());
        }
    }
    // The same sample gets a different augmentation in another epoch.
    let first = loader.load_batch(0, 0).unwrap();
    let index = first.indices[0];
    let pos1 = loader
        .epoch_order(1)
        .iter()
        .position(|&i| i == index)
        .unwrap();
    let again = loader.load_batch(1, pos1 / 10).unwrap();
    assert_ne!(first.image(0), again.image(pos1 % 10));
}

#[test]
fn eval_order_drop_last_and_partial_batches() {
    let data: Arc<dyn Dataset> = Arc::new(SyntheticSet::new(10, 3));
    let eval = Loader::new(
        Arc::clone(&data),
        Pipeline::cifar_eval(),
        LoaderConfig::eval(4),
    )
    .unwrap();
    let batches = all_batches(&eval, 0);
    assert_eq!(
        batches.iter().map(Batch::len).collect::<Vec<_>>(),
        [4, 4, 2]
    );
    assert_eq!(batches[2].indices, [8, 9]);
    assert_eq!(batches[2].images.len(), 2 * 3 * 32 * 32);
    // Eval values are exactly the normalised pixels.
    let table = Pipeline::cifar_eval().table();
    let mut want = vec![0f32; 3072];
    table.write_chw(&data.get(9).unwrap().0, &mut want);
    assert_eq!(batches[2].image(1), &want[..]);
    let drop = Loader::new(
        Arc::clone(&data),
        Pipeline::cifar_eval(),
        LoaderConfig {
            drop_last: true,
            ..LoaderConfig::eval(4)
        },
    )
    .unwrap();
    assert_eq!(drop.num_batches(), 2);
    assert_eq!(all_batches(&drop, 0).len(), 2);
}

#[test]
fn recycled_buffers_are_reused_and_refilled_correctly() {
    let data: Arc<dyn Dataset> = Arc::new(SyntheticSet::new(64, 3));
    let config = LoaderConfig {
        prefetch: 1,
        ..LoaderConfig::train(8, 1)
    };
    let loader = Loader::new(data, Pipeline::cifar_train(), config).unwrap();
    let mut iter = loader.epoch(0);
    let mut pointers = std::collections::HashSet::new();
    let mut k = 0;
    while let Some(batch) = iter.next() {
        let batch = batch.unwrap();
        assert_eq!(batch, loader.load_batch(0, k).unwrap(), "batch {k}");
        pointers.insert(batch.images.as_ptr() as usize);
        iter.recycle(batch);
        k += 1;
    }
    assert_eq!(k, 8);
    // With prefetch 1 at most a few distinct buffers circulate (in the queue, in the producer,
    // in our hands), not one per batch.
    assert!(
        pointers.len() <= 4,
        "{} distinct buffers for 8 batches",
        pointers.len()
    );
}

/// A dataset whose sample `bad` fails to load.
struct Failing {
    inner: SyntheticSet,
    bad: usize,
}

impl Dataset for Failing {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn num_classes(&self) -> usize {
        10
    }
    fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }
    fn image_size(&self) -> Option<(usize, usize)> {
        Some((32, 32))
    }
    fn describe(&self) -> String {
        "failing set".into()
    }
    fn label(&self, index: usize) -> parnet_data::Result<usize> {
        self.inner.label(index)
    }
    fn load_into(&self, index: usize, out: &mut Image) -> parnet_data::Result<usize> {
        if index == self.bad {
            return Err(DataError::CorruptImage {
                path: "x/bad.jpg".into(),
                index,
                detail: "boom".into(),
            });
        }
        self.inner.load_into(index, out)
    }
}

#[test]
fn a_failing_sample_ends_the_epoch_with_its_error() {
    let data: Arc<dyn Dataset> = Arc::new(Failing {
        inner: SyntheticSet::new(40, 1),
        bad: 17,
    });
    let loader = Loader::new(data, Pipeline::cifar_eval(), LoaderConfig::eval(8)).unwrap();
    let results: Vec<_> = loader.epoch(0).collect();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[1].is_ok());
    let err = results[2].as_ref().unwrap_err().to_string();
    assert!(
        err.contains("x/bad.jpg") && err.contains("image 17"),
        "{err}"
    );
    // Dropping an iterator early stops its thread (no hang).
    let mut iter = loader.epoch(1);
    iter.next().unwrap().unwrap();
    drop(iter);
}

#[test]
fn an_epoch_started_mid_way_skips_without_loading_and_matches_the_full_epoch() {
    // Sample 5 (in batch 0) fails: starting at batch 1 must not load it.
    let data: Arc<dyn Dataset> = Arc::new(Failing {
        inner: SyntheticSet::new(40, 1),
        bad: 5,
    });
    let eval = Loader::new(data, Pipeline::cifar_eval(), LoaderConfig::eval(8)).unwrap();
    let rest: Vec<Batch> = eval.epoch_from(0, 1).map(|b| b.unwrap()).collect();
    assert_eq!(rest.len(), 4);
    for (k, batch) in rest.iter().enumerate() {
        assert_eq!(batch.batch_index, k + 1);
        assert_eq!(
            batch.indices,
            ((k + 1) * 8..(k + 2) * 8).collect::<Vec<_>>()
        );
    }
    assert_eq!(eval.epoch_from(0, 5).count(), 0);
    assert_eq!(eval.epoch_from(0, 99).count(), 0);

    // Shuffled and augmented: the tail of an epoch is bit-identical to the full epoch's.
    let data: Arc<dyn Dataset> = Arc::new(SyntheticSet::new(90, 2));
    let train = Loader::new(data, heavy_pipeline(), LoaderConfig::train(16, 7)).unwrap();
    for epoch in 0..2 {
        let full = all_batches(&train, epoch);
        for first in [0, 1, 3, full.len() - 1] {
            let tail: Vec<Batch> = train.epoch_from(epoch, first).map(|b| b.unwrap()).collect();
            assert_eq!(tail, full[first..], "epoch {epoch} from batch {first}");
        }
    }
}

#[test]
fn images_of_the_wrong_size_are_an_error() {
    struct Mixed(SyntheticSet);
    impl Dataset for Mixed {
        fn len(&self) -> usize {
            4
        }
        fn num_classes(&self) -> usize {
            10
        }
        fn class_names(&self) -> &[String] {
            self.0.class_names()
        }
        fn image_size(&self) -> Option<(usize, usize)> {
            None
        }
        fn describe(&self) -> String {
            "mixed".into()
        }
        fn label(&self, i: usize) -> parnet_data::Result<usize> {
            self.0.label(i)
        }
        fn load_into(&self, i: usize, out: &mut Image) -> parnet_data::Result<usize> {
            let label = self.0.load_into(i, out)?;
            if i == 2 {
                *out = Image::zeros(20, 32);
            }
            Ok(label)
        }
    }
    let loader = Loader::new(
        Arc::new(Mixed(SyntheticSet::new(4, 0))),
        Pipeline::cifar_eval(),
        LoaderConfig::eval(4),
    )
    .unwrap();
    let err = loader.load_batch(0, 0).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::SizeMismatch {
                index: 2,
                got_h: 20,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn train_val_split_is_a_seeded_partition_and_subsets_load() {
    let (train, val) = train_val_split(1000, 100, 9).unwrap();
    assert_eq!((train.len(), val.len()), (900, 100));
    let mut all: Vec<usize> = train.iter().chain(&val).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
    assert_eq!(
        train_val_split(1000, 100, 9).unwrap(),
        (train.clone(), val.clone())
    );
    assert_ne!(train_val_split(1000, 100, 10).unwrap().1, val);
    assert!(val.windows(2).all(|w| w[0] < w[1]) && val != (0..100).collect::<Vec<_>>());
    assert!(train_val_split(5, 6, 0).is_err());

    let data: Arc<dyn Dataset> = Arc::new(SyntheticSet::new(1000, 2));
    let loader = Loader::new(data, Pipeline::cifar_eval(), LoaderConfig::eval(64))
        .unwrap()
        .with_subset(val.clone())
        .unwrap();
    assert_eq!((loader.len(), loader.num_batches()), (100, 2));
    let seen: Vec<usize> = all_batches(&loader, 0)
        .iter()
        .flat_map(|b| b.indices.clone())
        .collect();
    assert_eq!(seen, val);
    let bad = Loader::new(
        Arc::new(SyntheticSet::new(10, 2)),
        Pipeline::cifar_eval(),
        LoaderConfig::eval(4),
    )
    .unwrap();
    assert!(bad.with_subset(vec![3, 10]).is_err());
}

#[test]
fn bad_configs_are_errors() {
    let data: Arc<dyn Dataset> = Arc::new(SyntheticSet::new(10, 2));
    assert!(
        Loader::new(
            Arc::clone(&data),
            Pipeline::cifar_eval(),
            LoaderConfig::eval(0)
        )
        .is_err()
    );
    assert!(
        Loader::new(
            Arc::new(SyntheticSet::new(0, 2)),
            Pipeline::cifar_eval(),
            LoaderConfig::eval(4)
        )
        .is_err()
    );
    let crop = Pipeline {
        ops: vec![ImageOp::RandomCrop {
            height: 64,
            width: 64,
            padding: 4,
        }],
        ..Pipeline::cifar_eval()
    };
    assert!(Loader::new(data, crop, LoaderConfig::eval(4)).is_err());
}

#[test]
fn an_image_too_small_for_the_crop_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    for (name, side) in [("big.png", 40u32), ("small.png", 20)] {
        image::RgbImage::new(side, side)
            .save(dir.path().join("a").join(name))
            .unwrap();
    }
    let folder = Arc::new(parnet_data::ImageFolder::open(dir.path()).unwrap());
    let crop = Pipeline {
        ops: vec![ImageOp::RandomCrop {
            height: 32,
            width: 32,
            padding: 0,
        }],
        ..Pipeline::cifar_eval()
    };
    let loader = Loader::new(folder, crop, LoaderConfig::eval(2)).unwrap();
    let err = loader.load_batch(0, 0).unwrap_err().to_string();
    assert!(err.contains("image 1") && err.contains("20x20"), "{err}");
}

#[test]
fn the_shards_of_a_batch_join_into_the_whole_batch() {
    let data: Arc<dyn Dataset> = Arc::new(SyntheticSet::new(70, 3));
    let config = LoaderConfig {
        batch_size: 12,
        shuffle: true,
        drop_last: false,
        seed: 7,
        prefetch: 2,
    };
    let whole = Loader::new(Arc::clone(&data), heavy_pipeline(), config.clone()).unwrap();
    for count in [2, 3, 4] {
        let shards: Vec<Loader> = (0..count)
            .map(|k| {
                Loader::new(Arc::clone(&data), heavy_pipeline(), config.clone())
                    .unwrap()
                    .with_shard(k, count)
                    .unwrap()
            })
            .collect();
        assert_eq!(shards[1].shard(), (1, count));
        for epoch in 0..2 {
            let batches = all_batches(&whole, epoch);
            let parts: Vec<Vec<Batch>> = shards.iter().map(|s| all_batches(s, epoch)).collect();
            for (b, batch) in batches.iter().enumerate() {
                let mut images = Vec::new();
                let mut labels = Vec::new();
                let mut indices = Vec::new();
                for (k, part) in parts.iter().enumerate() {
                    let len = batch.len();
                    assert_eq!(part[b].len(), (k + 1) * len / count - k * len / count);
                    images.extend_from_slice(&part[b].images);
                    labels.extend_from_slice(&part[b].labels);
                    indices.extend_from_slice(&part[b].indices);
                }
                assert_eq!(
                    (images, labels, indices),
                    (
                        batch.images.clone(),
                        batch.labels.clone(),
                        batch.indices.clone()
                    )
                );
            }
        }
    }
    let loader = || Loader::new(Arc::clone(&data), heavy_pipeline(), config.clone()).unwrap();
    assert!(loader().with_shard(2, 2).is_err());
    assert!(loader().with_shard(0, 0).is_err());
    assert!(loader().with_shard(0, 13).is_err());
}
