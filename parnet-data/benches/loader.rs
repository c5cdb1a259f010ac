//! Loader throughput: images/s through load + decode + crop + flip + normalise, for the packed
//! CIFAR path and the JPEG folder, at 1 and 2 threads. One iteration = one batch of 256.
//!
//! `cargo bench -p parnet-data --bench loader` (real data from $PARNET_DATA or
//! ../shared/data/cifar10/train; without it the packed path uses the synthetic set and the JPEG
//! folder bench is skipped with a message).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use parnet_data::datasets::cifar::write_cifar10_records;
use parnet_data::{
    Batch, CifarSet, Dataset, ImageFolder, Loader, LoaderConfig, PackOptions, Pipeline, Split,
    SyntheticSet, pack_folder,
};

const BATCH: usize = 256;

fn real_data_dir() -> Option<PathBuf> {
    let dir = match std::env::var("PARNET_DATA") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/cifar10/train"),
    };
    dir.is_dir().then_some(dir)
}

/// A packed CIFAR file (of the real data if present, else of the synthetic set) in `tmp`.
fn packed_cifar(tmp: &std::path::Path) -> CifarSet {
    if let Some(dir) = real_data_dir() {
        pack_folder(&dir, tmp, &PackOptions::default()).unwrap();
        return CifarSet::open(tmp, Split::Train).unwrap();
    }
    eprintln!("no real CIFAR-10 folder: the packed bench uses 50,000 synthetic images");
    let set = SyntheticSet::new(50_000, 1);
    let mut images = vec![0u8; set.len() * 3072];
    let mut labels = vec![0u8; set.len()];
    for i in 0..set.len() {
        let (image, label) = set.get(i).unwrap();
        image.write_chw(&mut images[i * 3072..(i + 1) * 3072]);
        labels[i] = label as u8;
    }
    let file = tmp.join("data.bin");
    write_cifar10_records(&file, &images, &labels).unwrap();
    CifarSet::open(&file, Split::Train).unwrap()
}

fn bench_dataset(c: &mut Criterion, name: &str, dataset: Arc<dyn Dataset>) {
    let mut group = c.benchmark_group(format!("loader/{name}"));
    group.throughput(Throughput::Elements(BATCH as u64));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for threads in [1, 2] {
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap(),
        );
        let loader = Loader::new(
            Arc::clone(&dataset),
            Pipeline::cifar_train(),
            LoaderConfig::train(BATCH, 7),
        )
        .unwrap()
        .with_thread_pool(pool);
        let order = loader.epoch_order(0);
        let mut batch = Batch::default();
        let mut k = 0;
        group.bench_function(
            BenchmarkId::new("crop_flip_normalise", format!("{threads}threads")),
            |b| {
                b.iter(|| {
                    loader.fill_batch(0, &order, k, &mut batch).unwrap();
                    k = (k + 1) % loader.num_batches();
                })
            },
        );
    }
    group.finish();
}

fn loader_benches(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    bench_dataset(c, "packed_cifar", Arc::new(packed_cifar(tmp.path())));
    match real_data_dir() {
        Some(dir) => bench_dataset(c, "jpeg_folder", Arc::new(ImageFolder::open(&dir).unwrap())),
        None => eprintln!("skipping loader/jpeg_folder: no real CIFAR-10 folder (set PARNET_DATA)"),
    }
}

criterion_group!(benches, loader_benches);
criterion_main!(benches);
