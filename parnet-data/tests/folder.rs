//! Image folders: decoding, ordering, and bad input (empty class, corrupt image, skip_corrupt).

mod common;

use common::{make_folder, pattern, write_jpeg};
use parnet_data::{DataError, Dataset, FolderOptions, ImageFolder};

#[test]
fn classes_sorted_and_png_pixels_exact() {
    let dir = tempfile::tempdir().unwrap();
    make_folder(dir.path(), &[("zebra", 2), ("ant", 3)], (32, 32));
    std::fs::write(dir.path().join("ant/notes.txt"), "not an image").unwrap();
    let folder = ImageFolder::open(dir.path()).unwrap();
    assert_eq!(
        folder.class_names(),
        &["ant".to_string(), "zebra".to_string()]
    );
    assert_eq!(folder.len(), 5);
    assert_eq!(folder.ignored_files(), 1);
    assert_eq!(
        (0..5).map(|i| folder.label(i).unwrap()).collect::<Vec<_>>(),
        [0, 0, 0, 1, 1]
    );
    // ant is class index 1 in make_folder's list order (pattern(1, i)); zebra is pattern(0, i).
    let (image, label) = folder.get(4).unwrap();
    assert_eq!(label, 1);
    let f = pattern(0, 1);
    for (y, x) in [(0, 0), (5, 9), (31, 31)] {
        assert_eq!(image.pixel(y, x), f(y as u32, x as u32));
    }
    assert!(
        folder
            .get(5)
            .unwrap_err()
            .to_string()
            .contains("index 5 out of range")
    );
}

#[test]
fn jpeg_of_any_size_decodes_close_to_the_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    write_jpeg(&dir.path().join("a/x.JPG"), 20, 45, |_, _| [200, 40, 90]);
    let folder = ImageFolder::open(dir.path()).unwrap();
    let (image, _) = folder.get(0).unwrap();
    assert_eq!((image.height, image.width), (20, 45));
    for p in image.data.chunks_exact(3) {
        for (got, want) in p.iter().zip([200u8, 40, 90]) {
            assert!(got.abs_diff(want) <= 4, "{p:?}");
        }
    }
}

#[test]
fn empty_class_folder_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    make_folder(dir.path(), &[("cat", 1)], (8, 8));
    std::fs::create_dir_all(dir.path().join("dog")).unwrap();
    std::fs::write(dir.path().join("dog/readme.md"), "x").unwrap();
    let err = ImageFolder::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, DataError::EmptyClass { ref class, .. } if class == "dog"),
        "{err:?}"
    );
    assert!(err.to_string().contains("dog"));
}

#[test]
fn missing_root_and_root_without_classes() {
    let dir = tempfile::tempdir().unwrap();
    let err = ImageFolder::open(&dir.path().join("gone")).unwrap_err();
    assert!(matches!(err, DataError::MissingPath { .. }) && err.to_string().contains("gone"));
    let err = ImageFolder::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("no class folder"), "{err}");
}

#[test]
fn corrupt_image_errors_with_path_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let paths = make_folder(dir.path(), &[("a", 3), ("b", 2)], (16, 16));
    // Truncate one PNG and replace another by garbage.
    let bytes = std::fs::read(&paths[1]).unwrap();
    std::fs::write(&paths[1], &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(&paths[3], b"garbage, not a picture").unwrap();

    let folder = ImageFolder::open(dir.path()).unwrap();
    assert_eq!(folder.len(), 5, "lazy: open does not decode");
    folder.get(0).unwrap();
    let err = folder.get(1).unwrap_err();
    assert!(
        matches!(err, DataError::CorruptImage { index: 1, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("0001.png") && err.to_string().contains("image 1"),
        "{err}"
    );
    let err = folder.get(3).unwrap_err().to_string();
    assert!(
        err.contains("b/0000.png") && err.contains("not a JPEG or PNG"),
        "{err}"
    );

    let skipping =
        ImageFolder::open_with(dir.path(), &FolderOptions { skip_corrupt: true }).unwrap();
    assert_eq!(skipping.len(), 3);
    assert_eq!(skipping.skipped().len(), 2);
    assert_eq!(skipping.skipped()[0].path, paths[1]);
    assert_eq!(skipping.skipped()[1].path, paths[3]);
    // What remains decodes, with labels intact: a0, a2, b1.
    assert_eq!(
        (0..3)
            .map(|i| skipping.get(i).unwrap().1)
            .collect::<Vec<_>>(),
        [0, 0, 1]
    );
    assert_eq!(skipping.path(2), Some(paths[4].as_path()));
}
