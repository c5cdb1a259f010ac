//! pack_folder and inspect: round trips through both layouts, reports, and bad input.

mod common;

use common::{make_folder, pattern};
use parnet_data::{
    CifarSet, DataError, DataFormat, Dataset, ImageFolder, OpenOptions, PackLayout, PackOptions,
    PackedSet, Split, SyntheticSet, inspect, inspect_dataset, inspect_with, open_dataset,
    pack_folder,
};

#[test]
fn pack_32x32_folder_to_cifar_layout_round_trips() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    make_folder(src.path(), &[("bird", 3), ("cat", 2)], (32, 32));
    let report = pack_folder(src.path(), dst.path(), &PackOptions::default()).unwrap();
    assert_eq!(report.layout, PackLayout::Cifar);
    assert_eq!(
        (
            report.count,
            report.height,
            report.width,
            report.num_classes
        ),
        (5, 32, 32, 2)
    );
    assert!(report.output.ends_with("data.bin"));
    assert_eq!(std::fs::metadata(&report.output).unwrap().len(), 5 * 3073);

    let folder = ImageFolder::open(src.path()).unwrap();
    let packed = CifarSet::open(dst.path(), Split::Train).unwrap();
    assert_eq!(packed.class_names(), folder.class_names());
    for i in 0..5 {
        assert_eq!(packed.get(i).unwrap(), folder.get(i).unwrap(), "image {i}");
    }
    let opened = open_dataset(dst.path(), &OpenOptions::default()).unwrap();
    assert_eq!(opened.format, DataFormat::Cifar10);
}

#[test]
fn pack_with_resize_uses_the_packed_layout() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    make_folder(src.path(), &[("a", 2), ("b", 1)], (30, 50));
    let options = PackOptions {
        size: Some(24),
        ..PackOptions::default()
    };
    let report = pack_folder(src.path(), dst.path(), &options).unwrap();
    assert_eq!(report.layout, PackLayout::Packed);
    let packed = PackedSet::open(dst.path()).unwrap();
    assert_eq!((packed.len(), packed.image_size()), (3, Some((24, 24))));
    assert_eq!(packed.class_names(), &["a".to_string(), "b".to_string()]);
    assert_eq!(
        (0..3).map(|i| packed.label(i).unwrap()).collect::<Vec<_>>(),
        [0, 0, 1]
    );
    // Resize 30x50 -> 24x40 then centre-crop columns 8..32: the blue channel is constant per
    // image, and red (8y in the source) still increases down the rows.
    let (image, _) = packed.get(2).unwrap();
    let blue = pattern(1, 0)(0, 0)[2];
    assert!(image.data.chunks_exact(3).all(|p| p[2].abs_diff(blue) <= 1));
    assert!(image.pixel(23, 12)[0] > image.pixel(0, 12)[0] + 150);
    // No resize and same-size images: kept as they are.
    let dst2 = tempfile::tempdir().unwrap();
    let options = PackOptions {
        layout: PackLayout::Packed,
        ..PackOptions::default()
    };
    pack_folder(src.path(), dst2.path(), &options).unwrap();
    let exact = PackedSet::open(&dst2.path().join("data.parnetpack")).unwrap();
    assert_eq!(
        exact.get(1).unwrap(),
        ImageFolder::open(src.path()).unwrap().get(1).unwrap()
    );
}

#[test]
fn pack_rejects_mixed_sizes_and_bad_layouts() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    make_folder(src.path(), &[("a", 2)], (32, 32));
    common::write_png(&src.path().join("a/0009.png"), 31, 32, |_, _| [1, 2, 3]);
    let err = pack_folder(src.path(), dst.path(), &PackOptions::default()).unwrap_err();
    assert!(
        matches!(err, DataError::SizeMismatch { index: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("0009.png"), "{err}");
    let cifar = PackOptions {
        size: Some(40),
        layout: PackLayout::Cifar,
        ..PackOptions::default()
    };
    assert!(
        pack_folder(src.path(), dst.path(), &cifar)
            .unwrap_err()
            .to_string()
            .contains("32x32")
    );
}

#[test]
fn pack_skip_corrupt_counts_and_reports() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let paths = make_folder(src.path(), &[("a", 2), ("b", 2)], (32, 32));
    std::fs::write(&paths[2], b"\x89PNG broken").unwrap();
    let err = pack_folder(src.path(), dst.path(), &PackOptions::default()).unwrap_err();
    assert!(err.to_string().contains("b/0000.png"), "{err}");
    let options = PackOptions {
        skip_corrupt: true,
        ..PackOptions::default()
    };
    let report = pack_folder(src.path(), dst.path(), &options).unwrap();
    assert_eq!((report.count, report.skipped.len()), (3, 1));
    assert!(report.to_string().contains("skipped 1") && report.to_string().contains("b/0000.png"));
    assert_eq!(
        CifarSet::open(dst.path(), Split::Train).unwrap().labels(),
        &[0, 0, 1]
    );
}

/// Every file in `dir`, by name, with its bytes.
fn folder_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_failed_pack_leaves_the_old_pack_untouched_and_a_new_folder_absent() {
    let good = tempfile::tempdir().unwrap();
    make_folder(good.path(), &[("a", 2), ("b", 1)], (32, 32));
    let bad = tempfile::tempdir().unwrap();
    let paths = make_folder(bad.path(), &[("x", 3), ("y", 3), ("z", 3)], (32, 32));
    std::fs::write(&paths[7], b"\xff\xd8\xff broken jpeg").unwrap();
    for layout in [PackLayout::Cifar, PackLayout::Packed] {
        let options = PackOptions {
            layout,
            ..PackOptions::default()
        };
        let dst = tempfile::tempdir().unwrap();
        pack_folder(good.path(), dst.path(), &options).unwrap();
        let before = folder_bytes(dst.path());
        let err = pack_folder(bad.path(), dst.path(), &options).unwrap_err();
        assert!(err.to_string().contains("z/0001.png"), "{err}");
        assert_eq!(folder_bytes(dst.path()), before, "{layout:?}");
        let fresh = dst.path().join("new");
        pack_folder(bad.path(), &fresh, &options).unwrap_err();
        assert!(
            !fresh.exists(),
            "{layout:?}: a failed pack left {}",
            fresh.display()
        );
    }
    let zero = PackOptions {
        size: Some(0),
        ..PackOptions::default()
    };
    let dst = tempfile::tempdir().unwrap();
    let err = pack_folder(good.path(), &dst.path().join("p"), &zero).unwrap_err();
    assert!(err.to_string().contains("size"), "{err}");
}

#[test]
fn inspect_reports_counts_sizes_and_channel_stats() {
    let src = tempfile::tempdir().unwrap();
    make_folder(src.path(), &[("x", 3), ("y", 1)], (32, 32));
    common::write_png(&src.path().join("y/big.png"), 10, 40, |_, _| [255, 0, 128]);
    let report = inspect(src.path()).unwrap();
    assert_eq!(report.format, DataFormat::ImageFolder);
    assert_eq!((report.count, report.class_counts.clone()), (5, vec![3, 2]));
    assert_eq!((report.min_size, report.max_size), ((10, 32), (32, 40)));
    // Reference statistics computed directly from the decoded pixels, in f64.
    let folder = ImageFolder::open(src.path()).unwrap();
    let mut values: [Vec<f64>; 3] = Default::default();
    for i in 0..folder.len() {
        for p in folder.get(i).unwrap().0.data.chunks_exact(3) {
            for (channel, &v) in values.iter_mut().zip(p) {
                channel.push(v as f64 / 255.0);
            }
        }
    }
    for (c, channel) in values.iter().enumerate() {
        let n = channel.len() as f64;
        let mean = channel.iter().sum::<f64>() / n;
        let std = (channel.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(
            (report.mean[c] - mean).abs() < 1e-9 && (report.std[c] - std).abs() < 1e-9,
            "channel {c}"
        );
    }
    let text = report.to_string();
    assert!(
        text.contains("images:     5") && text.contains("varies") && text.contains("y"),
        "{text}"
    );
    let json = report.to_json();
    let back: parnet_data::InspectReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn inspect_cifar_and_synthetic_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    common::write_cifar10(&dir.path().join("data_batch_1.bin"), &[0, 0, 7]);
    let report = inspect(dir.path()).unwrap();
    assert_eq!(report.format, DataFormat::Cifar10);
    assert_eq!(report.class_counts, [2, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(report.class_names[7], "horse");
    assert_eq!((report.min_size, report.max_size), ((32, 32), (32, 32)));
    assert!(report.to_string().contains("32x32"));
    let synthetic = inspect_dataset(
        &SyntheticSet::new(40, 1),
        DataFormat::Synthetic,
        "synthetic",
    )
    .unwrap();
    assert_eq!(synthetic.class_counts, vec![4; 10]);
    assert!(synthetic.std.iter().all(|&s| s > 0.1));
    let err = inspect(&dir.path().join("missing")).unwrap_err();
    assert!(err.to_string().contains("missing"));
    // skip_corrupt through inspect_with.
    let folder = tempfile::tempdir().unwrap();
    let paths = make_folder(folder.path(), &[("a", 2)], (8, 8));
    std::fs::write(&paths[0], b"nope").unwrap();
    assert!(
        inspect(folder.path())
            .unwrap_err()
            .to_string()
            .contains("0000.png")
    );
    let options = OpenOptions {
        skip_corrupt: true,
        ..OpenOptions::default()
    };
    let report = inspect_with(folder.path(), &options).unwrap();
    assert_eq!((report.count, report.skipped.len()), (1, 1));
}

#[test]
fn a_folder_of_mixed_sizes_is_refused_where_one_size_is_needed() {
    let src = tempfile::tempdir().unwrap();
    make_folder(src.path(), &[("a", 3), ("b", 3)], (32, 32));
    common::write_png(&src.path().join("b/0001.png"), 64, 64, |_, _| [9, 9, 9]);
    let uniform = OpenOptions {
        uniform_size: true,
        ..OpenOptions::default()
    };
    let err = open_dataset(src.path(), &uniform).err().unwrap();
    assert!(
        matches!(
            err,
            DataError::SizeMismatch {
                index: 4,
                got_h: 64,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("b/0001.png"), "{err}");
    // Without the requirement (pipelines that resize) the folder opens.
    assert!(open_dataset(src.path(), &OpenOptions::default()).is_ok());
    std::fs::remove_file(src.path().join("b/0001.png")).unwrap();
    assert!(open_dataset(src.path(), &uniform).is_ok());
}

#[test]
fn inspect_opens_a_cifar_folder_holding_only_the_test_split() {
    let dir = tempfile::tempdir().unwrap();
    common::write_cifar10(&dir.path().join("test_batch.bin"), &[3, 3, 1, 9]);
    let report = inspect(dir.path()).unwrap();
    assert_eq!((report.format, report.count), (DataFormat::Cifar10, 4));
    assert_eq!(report.class_counts[3], 2);
}

#[test]
fn inspect_counts_the_files_it_ignores() {
    let dir = tempfile::tempdir().unwrap();
    make_folder(dir.path(), &[("a", 2)], (8, 8));
    std::fs::write(dir.path().join("a/notes.txt"), b"not an image").unwrap();
    let report = inspect(dir.path()).unwrap();
    assert_eq!((report.count, report.ignored_files), (2, 1));
    assert!(
        report.to_string().contains("ignored:    1 files"),
        "{report}"
    );
}
