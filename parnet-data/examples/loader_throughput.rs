//! Prints images/s through load + crop + flip + normalise for the packed CIFAR path and the JPEG
//! folder, at 1 and 2 threads (figures for docs/BENCHMARKS.md).
//!
//! `cargo run --release -p parnet-data --example loader_throughput [-- DATA_DIR]`
//! DATA_DIR defaults to $PARNET_DATA or ../shared/data/cifar10/train (relative to the workspace).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use parnet_data::{
    CifarSet, Dataset, ImageFolder, Loader, LoaderConfig, PackOptions, Pipeline, Split,
    SyntheticSet, pack_folder,
};

fn data_dir() -> PathBuf {
    if let Some(arg) = std::env::args().nth(1) {
        return arg.into();
    }
    if let Ok(dir) = std::env::var("PARNET_DATA") {
        return dir.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/cifar10/train")
}

/// Runs one full epoch (batch 256) and returns images/s.
fn epoch_rate(dataset: Arc<dyn Dataset>, threads: usize, epochs: u64) -> f64 {
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap(),
    );
    let loader = Loader::new(
        dataset,
        Pipeline::cifar_train(),
        LoaderConfig::train(256, 7),
    )
    .unwrap()
    .with_thread_pool(pool);
    let start = Instant::now();
    let mut images = 0;
    for epoch in 0..epochs {
        let mut iter = loader.epoch(epoch);
        while let Some(batch) = iter.next() {
            let batch = batch.unwrap();
            images += batch.len();
            iter.recycle(batch);
        }
    }
    images as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let dir = data_dir();
    let tmp = std::env::temp_dir().join(format!("parnet-data-throughput-{}", std::process::id()));
    let (folder, packed): (Option<Arc<dyn Dataset>>, Arc<dyn Dataset>) = if dir.is_dir() {
        let t = Instant::now();
        let report = pack_folder(&dir, &tmp, &PackOptions::default()).unwrap();
        println!(
            "pack_folder: {report} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let folder = ImageFolder::open(&dir).unwrap();
        (
            Some(Arc::new(folder)),
            Arc::new(CifarSet::open(&tmp, Split::Train).unwrap()),
        )
    } else {
        println!(
            "no real data at {} (set PARNET_DATA); packed path uses the synthetic set",
            dir.display()
        );
        let synthetic = SyntheticSet::new(50_000, 1);
        let mut images = vec![0u8; synthetic.len() * 3072];
        let mut labels = vec![0u8; synthetic.len()];
        for i in 0..synthetic.len() {
            let (image, label) = synthetic.get(i).unwrap();
            image.write_chw(&mut images[i * 3072..(i + 1) * 3072]);
            labels[i] = label as u8;
        }
        std::fs::create_dir_all(&tmp).unwrap();
        let file = tmp.join("data.bin");
        parnet_data::datasets::cifar::write_cifar10_records(&file, &images, &labels).unwrap();
        (None, Arc::new(CifarSet::open(&file, Split::Train).unwrap()))
    };
    for threads in [1, 2] {
        let rate = epoch_rate(Arc::clone(&packed), threads, 3);
        println!(
            "packed CIFAR  threads={threads}: {rate:>10.0} images/s (crop+flip+normalise, batch 256)"
        );
    }
    if let Some(folder) = folder {
        for threads in [1, 2] {
            let rate = epoch_rate(Arc::clone(&folder), threads, 1);
            println!(
                "JPEG folder   threads={threads}: {rate:>10.0} images/s (read+decode+crop+flip+normalise)"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
