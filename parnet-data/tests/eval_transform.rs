//! Our ImageNet evaluation transform against Pillow's and torchvision's
//! (fixtures/eval, made by tools/make_eval_golden.py): the resize and centre crop give the very
//! same pixels from the same decoded image, the normalised tensor agrees to float rounding, and
//! our JPEG decoder stays within a few levels of libjpeg-turbo's.

use std::path::{Path, PathBuf};

use parnet_data::datasets::folder::read_and_decode;
use parnet_data::transforms::{IMAGENET_CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, Scratch};
use parnet_data::{Image, Interpolation, Pipeline};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/eval")
        .join(name)
}

fn decode(name: &str) -> Image {
    let mut image = Image::default();
    read_and_decode(&fixture(name), 0, &mut image).unwrap();
    image
}

/// The u8 image after the pipeline's image ops.
fn transformed(pipeline: &Pipeline, image: &Image) -> Image {
    let mut scratch = Scratch {
        image: image.clone(),
        ..Scratch::default()
    };
    pipeline.apply_image_ops(&mut scratch, &mut ChaCha8Rng::seed_from_u64(0));
    scratch.image
}

fn pipeline(size: usize, crop_pct: f64, interpolation: Interpolation) -> Pipeline {
    Pipeline::resize_center_crop_eval(size, crop_pct, interpolation, IMAGENET_MEAN, IMAGENET_STD)
}

/// (count of differing values, largest difference)
fn differences(ours: &Image, theirs: &Image) -> (usize, u8) {
    assert_eq!((ours.height, ours.width), (theirs.height, theirs.width));
    ours.data
        .iter()
        .zip(&theirs.data)
        .map(|(&a, &b)| a.abs_diff(b))
        .filter(|&d| d > 0)
        .fold((0, 0), |(n, m), d| (n + 1, m.max(d)))
}

/// tools/make_eval_golden.py's cases: name, crop side, crop_pct, filter.
const CASES: [(&str, usize, f64, Interpolation); 5] = [
    ("portrait", 224, IMAGENET_CROP_PCT, Interpolation::Bicubic),
    ("landscape", 224, IMAGENET_CROP_PCT, Interpolation::Bicubic),
    ("small", 224, IMAGENET_CROP_PCT, Interpolation::Bicubic),
    ("gray", 224, IMAGENET_CROP_PCT, Interpolation::Bicubic),
    ("bilinear", 160, 0.9, Interpolation::Bilinear),
];

#[test]
fn resize_and_centre_crop_give_pillows_pixels() {
    for (name, size, crop_pct, interpolation) in CASES {
        let input = decode(&format!("{name}.png"));
        let ours = transformed(&pipeline(size, crop_pct, interpolation), &input);
        let theirs = decode(&format!("golden/{name}.crop.png"));
        let (count, largest) = differences(&ours, &theirs);
        assert_eq!(
            (count, largest),
            (0, 0),
            "{name} ({}x{} -> {size}, {interpolation:?}): {count} values differ, by up to {largest}",
            input.height,
            input.width
        );
    }
    assert_eq!(
        Pipeline::imagenet_eval(224),
        pipeline(224, IMAGENET_CROP_PCT, Interpolation::Bicubic)
    );
}

#[test]
fn normalised_tensor_matches_torchvision() {
    let bytes = std::fs::read(fixture("golden/bilinear.tensor.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = file.tensor("tensor").unwrap();
    assert_eq!(view.shape(), [3, 160, 160]);
    let expected: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let pipeline = pipeline(160, 0.9, Interpolation::Bilinear);
    let mut scratch = Scratch {
        image: decode("bilinear.png"),
        ..Scratch::default()
    };
    let mut out = vec![0.0f32; expected.len()];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    pipeline.apply_into(&pipeline.table(), &mut scratch, &mut out, &mut rng);
    let worst = out
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-6, "largest difference {worst}");
}

#[test]
fn our_jpeg_decoding_is_within_a_few_levels_of_libjpeg_turbo() {
    let ours = decode("landscape.jpg");
    let theirs = decode("golden/jpeg.decoded.png");
    let (count, largest) = differences(&ours, &theirs);
    let mean = ours
        .data
        .iter()
        .zip(&theirs.data)
        .map(|(&a, &b)| a.abs_diff(b) as f64)
        .sum::<f64>()
        / ours.data.len() as f64;
    eprintln!(
        "JPEG decoding: {count} of {} values differ, by up to {largest}, mean {mean:.3}",
        ours.data.len()
    );
    assert!(largest <= 8 && mean < 0.5, "largest {largest}, mean {mean}");
    // From Pillow's own decoding the transform is exact again.
    let eval = Pipeline::imagenet_eval(224);
    assert_eq!(
        differences(
            &transformed(&eval, &theirs),
            &decode("golden/landscape.jpg.crop.png")
        ),
        (0, 0)
    );
}

#[test]
fn jpegs_through_our_decoder_and_transform_stay_within_a_few_levels_of_pillows() {
    for (name, size, crop_pct, interpolation) in CASES {
        let ours = transformed(
            &pipeline(size, crop_pct, interpolation),
            &decode(&format!("{name}.jpg")),
        );
        let golden = decode(&format!("golden/{name}.jpg.crop.png"));
        let (count, largest) = differences(&ours, &golden);
        eprintln!(
            "{name}.jpg: {count} of {} values differ, by up to {largest}",
            golden.data.len()
        );
        assert!(largest <= 6, "{name}.jpg: up to {largest}");
    }
}
