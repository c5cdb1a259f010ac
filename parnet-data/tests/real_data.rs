//! Tests on the real CIFAR-10 training images (50,000 JPEGs in class folders), found through
//! `PARNET_DATA` or `../shared/data/cifar10/train` beside the workspace. Ignored by default:
//! `cargo test -p parnet-data --release --test real_data -- --ignored`.

mod common;

use std::sync::Arc;

use parnet_data::{
    CifarSet, DataFormat, Dataset, ImageFolder, Loader, LoaderConfig, PackOptions, Pipeline, Split,
    inspect, pack_folder,
};

const CIFAR10_MEAN: [f64; 3] = [0.4914, 0.4822, 0.4465];
const CIFAR10_STD: [f64; 3] = [0.2470, 0.2435, 0.2616];

#[test]
#[ignore = "needs real CIFAR-10 data (PARNET_DATA)"]
fn real_folder_has_50000_images_and_cifar10_statistics() {
    let dir = common::real_data_dir();
    let report = inspect(&dir).unwrap();
    println!("{report}");
    assert_eq!(report.format, DataFormat::ImageFolder);
    assert_eq!(report.count, 50_000);
    assert_eq!(
        report.class_names,
        parnet_data::datasets::cifar::CIFAR10_CLASSES
    );
    assert_eq!(report.class_counts, vec![5000; 10]);
    assert_eq!((report.min_size, report.max_size), ((32, 32), (32, 32)));
    // JPEG compression moves the statistics of the original PNG-exact data a little.
    for c in 0..3 {
        assert!(
            (report.mean[c] - CIFAR10_MEAN[c]).abs() < 0.01,
            "mean {:?}",
            report.mean
        );
        assert!(
            (report.std[c] - CIFAR10_STD[c]).abs() < 0.01,
            "std {:?}",
            report.std
        );
    }
}

#[test]
#[ignore = "needs real CIFAR-10 data (PARNET_DATA)"]
fn real_folder_packs_to_cifar_and_loads_identically() {
    let dir = common::real_data_dir();
    let out = tempfile::tempdir().unwrap();
    let report = pack_folder(&dir, out.path(), &PackOptions::default()).unwrap();
    assert_eq!((report.count, report.skipped.len()), (50_000, 0));
    let folder: Arc<dyn Dataset> = Arc::new(ImageFolder::open(&dir).unwrap());
    let packed: Arc<dyn Dataset> = Arc::new(CifarSet::open(out.path(), Split::Train).unwrap());
    for i in (0..50_000).step_by(997) {
        assert_eq!(packed.get(i).unwrap(), folder.get(i).unwrap(), "image {i}");
    }
    // The same augmented batches from the JPEG folder and from the pack, at 1 and 2 threads.
    let config = LoaderConfig::train(128, 3);
    let pool = |n| {
        Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap(),
        )
    };
    let a = Loader::new(folder, Pipeline::cifar_train(), config.clone())
        .unwrap()
        .with_thread_pool(pool(1));
    let b = Loader::new(packed, Pipeline::cifar_train(), config)
        .unwrap()
        .with_thread_pool(pool(2));
    for k in [0, 1, 200] {
        assert_eq!(
            a.load_batch(4, k).unwrap(),
            b.load_batch(4, k).unwrap(),
            "batch {k}"
        );
    }
}
