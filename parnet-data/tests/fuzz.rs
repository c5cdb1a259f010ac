//! Fuzz-style properties: random or mutated bytes fed to the CIFAR, packed and image readers
//! give an error or a valid result, never a panic.

mod common;

use std::path::Path;

use parnet_data::datasets::folder::decode_image;
use parnet_data::{CifarKind, CifarLabel, CifarSet, Dataset, Image, PackedSet};
use proptest::prelude::*;

fn small_png() -> Vec<u8> {
    let image = image::RgbImage::from_fn(6, 5, |x, y| image::Rgb([x as u8 * 40, y as u8 * 50, 7]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

fn small_jpeg() -> Vec<u8> {
    let image = image::RgbImage::from_fn(9, 7, |x, y| image::Rgb([x as u8 * 20, y as u8 * 30, 99]));
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(&image)
        .unwrap();
    bytes
}

fn check_decode(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut out = Image::default();
    match decode_image(Path::new("fuzz.img"), 3, bytes, &mut out) {
        Ok(()) => {
            prop_assert!(out.height > 0 && out.width > 0);
            prop_assert_eq!(out.data.len(), out.height * out.width * 3);
        }
        Err(e) => prop_assert!(e.to_string().contains("fuzz.img: image 3")),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cifar_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..8000),
                                 cifar100 in any::<bool>()) {
        let kind = if cifar100 { CifarKind::Cifar100 } else { CifarKind::Cifar10 };
        let names: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        match CifarSet::from_bytes(Path::new("fuzz.bin"), &bytes, kind, CifarLabel::Fine, names) {
            Ok(set) => {
                prop_assert_eq!(set.len() * kind.record_len(), bytes.len());
                for i in 0..set.len() {
                    let (image, label) = set.get(i).unwrap();
                    prop_assert!(label < 10 && image.data.len() == 3072);
                }
            }
            Err(e) => prop_assert!(e.to_string().starts_with("fuzz.bin")),
        }
    }

    #[test]
    fn packed_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Err(e) = PackedSet::check_bytes(Path::new("fuzz.pack"), &bytes) {
            prop_assert!(e.to_string().starts_with("fuzz.pack"));
        }
    }

    #[test]
    fn packed_reader_survives_corrupted_headers(pos in 0usize..80, value in any::<u8>(), cut in 0usize..200) {
        // A valid 2-image 2x2 pack, then one byte changed and maybe a tail cut.
        let mut bytes = b"PARNETPK".to_vec();
        for v in [1u32, 2, 2, 2] { bytes.extend(v.to_le_bytes()); }
        bytes.extend(2u64.to_le_bytes());
        for name in ["ab", "c"] { bytes.extend((name.len() as u32).to_le_bytes()); bytes.extend(name.as_bytes()); }
        for l in [1u32, 0] { bytes.extend(l.to_le_bytes()); }
        bytes.extend([7u8; 24]);
        prop_assert_eq!(PackedSet::check_bytes(Path::new("p"), &bytes).unwrap(), (2, (2, 2)));
        if pos < bytes.len() { bytes[pos] = value; }
        let keep = bytes.len().saturating_sub(cut % 3 * cut);
        let _ = PackedSet::check_bytes(Path::new("p"), &bytes[..keep]);
    }

    #[test]
    fn image_decoder_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        check_decode(&bytes)?;
    }

    #[test]
    fn image_decoder_never_panics_on_mutated_png_and_jpeg(
        jpeg in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = if jpeg { small_jpeg() } else { small_png() };
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            let keep = cut.index(bytes.len());
            bytes.truncate(keep);
        }
        check_decode(&bytes)?;
    }
}

#[test]
fn unmodified_small_images_decode() {
    let mut out = Image::default();
    decode_image(Path::new("a.png"), 0, &small_png(), &mut out).unwrap();
    assert_eq!((out.height, out.width), (5, 6));
    assert_eq!(out.pixel(4, 5), [200, 200, 7]);
    decode_image(Path::new("a.jpg"), 0, &small_jpeg(), &mut out).unwrap();
    assert_eq!((out.height, out.width), (7, 9));
}
