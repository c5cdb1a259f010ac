//! Helpers shared by the integration tests: small synthetic CIFAR files and image folders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A CIFAR-10 record whose pixels encode (record, byte) so that any mix-up shows.
pub fn cifar10_record(record: usize, label: u8) -> Vec<u8> {
    let mut bytes = vec![label];
    bytes.extend((0..3072).map(|i| ((record * 7 + i * 13) % 256) as u8));
    bytes
}

/// Writes `labels.len()` CIFAR-10 records to `path`.
pub fn write_cifar10(path: &Path, labels: &[u8]) {
    let bytes: Vec<u8> = labels
        .iter()
        .enumerate()
        .flat_map(|(r, &l)| cifar10_record(r, l))
        .collect();
    std::fs::write(path, bytes).unwrap();
}

/// Writes a PNG of `h x w` whose pixel (y, x) is `f(y, x)`.
pub fn write_png(path: &Path, h: u32, w: u32, f: impl Fn(u32, u32) -> [u8; 3]) {
    let image = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(y, x)));
    image
        .save_with_format(path, image::ImageFormat::Png)
        .unwrap();
}

/// Writes a JPEG (quality 95) of `h x w` filled with `f(y, x)`.
pub fn write_jpeg(path: &Path, h: u32, w: u32, f: impl Fn(u32, u32) -> [u8; 3]) {
    let image = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(y, x)));
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(file, 95);
    encoder.encode_image(&image).unwrap();
}

/// The pixel function used for image `i` of class `c` in test folders.
pub fn pattern(c: usize, i: usize) -> impl Fn(u32, u32) -> [u8; 3] {
    move |y, x| [(y * 8) as u8, (x * 8) as u8, (c * 40 + i * 5) as u8]
}

/// Makes `root/<class>/<i>.png` for the given class names and counts, 32x32 unless `size` says.
pub fn make_folder(root: &Path, classes: &[(&str, usize)], size: (u32, u32)) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for (c, (name, count)) in classes.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..*count {
            let path = dir.join(format!("{i:04}.png"));
            write_png(&path, size.0, size.1, pattern(c, i));
            paths.push(path);
        }
    }
    paths
}

/// The real CIFAR-10 JPEG folder: `$PARNET_DATA` or `../shared/data/cifar10/train` beside the
/// workspace root.
pub fn real_data_dir() -> PathBuf {
    match std::env::var("PARNET_DATA") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/cifar10/train"),
    }
}
