//! CIFAR binary reading: round trips, layouts, and every kind of bad file.

mod common;

use common::{cifar10_record, write_cifar10};
use parnet_data::{CifarLabel, CifarSet, DataError, Dataset, Split};

#[test]
fn reads_a_cifar10_folder_in_file_order_with_meta_names() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(&dir.path().join("data_batch_1.bin"), &[3, 1, 4]);
    write_cifar10(&dir.path().join("data_batch_2.bin"), &[1, 5]);
    write_cifar10(&dir.path().join("test_batch.bin"), &[9]);
    let names: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    std::fs::write(
        dir.path().join("batches.meta.txt"),
        names.join("\n") + "\n\n",
    )
    .unwrap();

    let train = CifarSet::open(dir.path(), Split::Train).unwrap();
    assert_eq!(train.len(), 5);
    assert_eq!(train.labels(), &[3, 1, 4, 1, 5]);
    assert_eq!(train.class_names()[7], "c7");
    // Record 1 of the second file is sample 4: CHW bytes come back as HWC pixels.
    let expect = cifar10_record(1, 5);
    let (image, label) = train.get(4).unwrap();
    assert_eq!(label, 5);
    assert_eq!((image.height, image.width), (32, 32));
    let (y, x) = (3, 17);
    let p = y * 32 + x;
    assert_eq!(
        image.pixel(y, x),
        [expect[1 + p], expect[1 + 1024 + p], expect[1 + 2048 + p]]
    );

    let test = CifarSet::open(dir.path(), Split::Test).unwrap();
    assert_eq!(test.labels(), &[9]);
    // A single batch file.
    let one = CifarSet::open(&dir.path().join("data_batch_2.bin"), Split::Train).unwrap();
    assert_eq!(one.labels(), &[1, 5]);
    assert_eq!(one.record(0), &cifar10_record(0, 1)[1..]);
}

#[test]
fn reads_cifar100_fine_and_coarse_labels() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for (coarse, fine) in [(2u8, 77u8), (19, 99)] {
        bytes.extend([coarse, fine]);
        bytes.extend(vec![fine; 3072]);
    }
    std::fs::write(dir.path().join("train.bin"), &bytes).unwrap();
    let fine = CifarSet::open(dir.path(), Split::Train).unwrap();
    assert_eq!((fine.len(), fine.num_classes()), (2, 100));
    assert_eq!(fine.labels(), &[77, 99]);
    assert_eq!(fine.get(1).unwrap().0.pixel(5, 5), [99, 99, 99]);
    let coarse = CifarSet::open_with(dir.path(), Split::Train, CifarLabel::Coarse).unwrap();
    assert_eq!(
        (coarse.num_classes(), coarse.labels()),
        (20, &[2u8, 19][..])
    );
}

fn message(error: DataError) -> String {
    error.to_string()
}

#[test]
fn truncated_file_names_the_file_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    write_cifar10(&path, &[1, 2, 3]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..3073 * 2 + 100]).unwrap();
    let err = CifarSet::open(dir.path(), Split::Train).unwrap_err();
    assert!(matches!(err, DataError::CifarSize { .. }));
    let text = message(err);
    assert!(
        text.contains("data_batch_1.bin")
            && text.contains("record 2")
            && text.contains("100 bytes"),
        "{text}"
    );
}

#[test]
fn oversized_official_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test_batch.bin");
    write_cifar10(&path, &vec![0u8; 10_001]);
    let text = message(CifarSet::open(&path, Split::Test).unwrap_err());
    assert!(
        text.contains("test_batch.bin") && text.contains("oversized") && text.contains("10001"),
        "{text}"
    );
    // Trailing bytes after whole records are an error too.
    let other = dir.path().join("data_batch_3.bin");
    write_cifar10(&other, &[1]);
    let mut bytes = std::fs::read(&other).unwrap();
    bytes.push(0);
    std::fs::write(&other, bytes).unwrap();
    let text = message(CifarSet::open(&other, Split::Train).unwrap_err());
    assert!(
        text.contains("data_batch_3.bin") && text.contains("record 1"),
        "{text}"
    );
}

#[test]
fn label_out_of_range_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    write_cifar10(&path, &[0, 9, 10, 1]);
    let err = CifarSet::open(&path, Split::Train).unwrap_err();
    match &err {
        DataError::LabelOutOfRange {
            record,
            label,
            num_classes,
            ..
        } => {
            assert_eq!((*record, *label, *num_classes), (2, 10, 10));
        }
        other => panic!("wrong error {other:?}"),
    }
    assert!(message(err).contains("data_batch_1.bin: record 2: label 10"));
}

#[test]
fn missing_and_empty_paths() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = CifarSet::open(&missing, Split::Train).unwrap_err();
    assert!(matches!(err, DataError::MissingPath { .. }) && message(err).contains("nope"));
    let text = message(CifarSet::open(dir.path(), Split::Train).unwrap_err());
    assert!(text.contains("not a CIFAR folder"), "{text}");
    let empty = dir.path().join("data_batch_1.bin");
    std::fs::write(&empty, b"").unwrap();
    let text = message(CifarSet::open(&empty, Split::Train).unwrap_err());
    assert!(
        text.contains("data_batch_1.bin") && text.contains("empty"),
        "{text}"
    );
    // A CIFAR-10 folder without a test batch.
    write_cifar10(&empty, &[1]);
    let text = message(CifarSet::open(dir.path(), Split::Test).unwrap_err());
    assert!(text.contains("test_batch.bin"), "{text}");
}
