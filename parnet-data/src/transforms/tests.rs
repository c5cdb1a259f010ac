//! Tests of the geometric transforms, normalisation, erasing and the pipeline, against plain
//! reference computations.

use proptest::prelude::*;
use rand::SeedableRng;

use super::geometry::*;
use super::*;
use crate::seed::SampleRng;

/// An image whose pixel (y, x) is `[y, x, (y*w + x) % 256]`-ish, so every pixel is tellable.
fn ramp(height: usize, width: usize) -> Image {
    let mut image = Image::zeros(height, width);
    for y in 0..height {
        for x in 0..width {
            image.set_pixel(y, x, [y as u8, x as u8, ((y * width + x) % 251) as u8]);
        }
    }
    image
}

fn rng(seed: u64) -> SampleRng {
    SampleRng::seed_from_u64(seed)
}

/// Reference: pad with zeros into a big image, then cut the window.
fn crop_reference(src: &Image, top: isize, left: isize, h: usize, w: usize) -> Image {
    let mut out = Image::zeros(h, w);
    for y in 0..h {
        for x in 0..w {
            let (sy, sx) = (top + y as isize, left + x as isize);
            if sy >= 0 && sx >= 0 && (sy as usize) < src.height && (sx as usize) < src.width {
                out.set_pixel(y, x, src.pixel(sy as usize, sx as usize));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn crop_padded_matches_reference(h in 1usize..12, w in 1usize..12, top in -14isize..14,
                                     left in -14isize..14, ch in 1usize..10, cw in 1usize..10) {
        let src = ramp(h, w);
        let mut out = Image::default();
        crop_padded(&src, &mut out, top, left, ch, cw);
        prop_assert_eq!(out, crop_reference(&src, top, left, ch, cw));
    }

    #[test]
    fn random_crop_is_a_shift_within_the_padding(seed in any::<u64>(), pad in 0usize..5) {
        let src = ramp(8, 8);
        let mut out = Image::default();
        let mut r = rng(seed);
        random_crop_padded(&src, &mut out, 8, 8, pad, &mut r);
        // Some shift (dy, dx) in [-pad, pad]^2 must reproduce the output exactly.
        let found = (-(pad as isize)..=pad as isize).any(|dy| {
            (-(pad as isize)..=pad as isize).any(|dx| crop_reference(&src, dy, dx, 8, 8) == out)
        });
        prop_assert!(found);
    }

    #[test]
    fn rrc_window_is_inside_with_bounded_area(h in 1usize..300, w in 1usize..300, seed in any::<u64>()) {
        let (top, left, wh, ww) = random_resized_crop_window(h, w, [0.08, 1.0], [0.75, 4.0 / 3.0], &mut rng(seed));
        prop_assert!(wh >= 1 && ww >= 1 && top + wh <= h && left + ww <= w);
    }
}

#[test]
fn random_crop_with_padding_4_reaches_every_shift_and_zero_fills() {
    let src = ramp(32, 32);
    let mut out = Image::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut r = rng(1);
    for _ in 0..2000 {
        random_crop_padded(&src, &mut out, 32, 32, 4, &mut r);
        // Pixel (4, 4) of the output is input (oy, ox) = (top, left) in padded coordinates.
        let [y, x, _] = out.pixel(4, 4);
        let (dy, dx) = (y as isize - 4, x as isize - 4);
        seen.insert((dy, dx));
        assert_eq!(out, crop_reference(&src, dy, dx, 32, 32));
    }
    assert_eq!(seen.len(), 81, "all 9x9 shifts in [-4, 4]^2 appear");
}

#[test]
fn flip_mirrors_rows() {
    let mut image = ramp(3, 5);
    let original = image.clone();
    flip_horizontal(&mut image);
    for y in 0..3 {
        for x in 0..5 {
            assert_eq!(image.pixel(y, x), original.pixel(y, 4 - x));
        }
    }
}

#[test]
fn normalise_writes_planar_standardised_values() {
    let mut image = Image::zeros(1, 2);
    image.set_pixel(0, 0, [0, 51, 255]);
    image.set_pixel(0, 1, [255, 102, 0]);
    let table = NormalizeTable::new([0.5, 0.2, 0.0], [0.5, 0.1, 1.0]);
    let mut out = [0f32; 6];
    table.write_chw(&image, &mut out);
    let expect = [-1.0, 1.0, 0.0, 2.0, 1.0, 0.0];
    for (got, want) in out.iter().zip(expect) {
        assert!((got - want).abs() < 1e-6, "{out:?} vs {expect:?}");
    }
}

#[test]
fn resize_center_crop_sizes_and_constant_image() {
    // torchvision: Resize(256) on 300x400 (HxW) gives 256x341; CenterCrop(224).
    assert_eq!(shorter_side_size(300, 400, 256), (256, 341));
    assert_eq!(shorter_side_size(500, 375, 256), (341, 256));
    assert_eq!(center_offsets(256, 341, 224, 224), (16, 58));
    let mut scratch = Scratch {
        image: Image::from_hwc(300, 400, [10u8, 200, 77].repeat(300 * 400)),
        ..Default::default()
    };
    let op = ImageOp::ResizeCenterCrop {
        resize: 256,
        crop: 224,
        interpolation: Interpolation::Bicubic,
    };
    op.apply(&mut scratch, &mut rng(0));
    assert_eq!((scratch.image.height, scratch.image.width), (224, 224));
    assert!(
        scratch
            .image
            .data
            .chunks_exact(3)
            .all(|p| p == [10, 200, 77])
    );
}

#[test]
fn resize_center_crop_keeps_the_centre() {
    // A 20x20 image, white 4x4 square in the middle; resize 10, crop 6: square stays centred.
    let mut image = Image::zeros(20, 20);
    for y in 8..12 {
        for x in 8..12 {
            image.set_pixel(y, x, [255, 255, 255]);
        }
    }
    let mut scratch = Scratch {
        image,
        ..Default::default()
    };
    ImageOp::ResizeCenterCrop {
        resize: 10,
        crop: 6,
        interpolation: Interpolation::Bilinear,
    }
    .apply(&mut scratch, &mut rng(0));
    let out = &scratch.image;
    assert_eq!((out.height, out.width), (6, 6));
    let column: Vec<u8> = (0..6).map(|y| out.pixel(y, 2)[0]).collect();
    assert!(
        column[2] > 150 && column[3] > 150,
        "centre is bright: {column:?}"
    );
    let mirrored: Vec<u8> = column.iter().rev().copied().collect();
    assert_eq!(column, mirrored, "the square stays centred");
    assert_eq!(out.pixel(0, 0), [0, 0, 0]);
    assert_eq!(out.pixel(5, 5), [0, 0, 0]);
}

#[test]
fn random_resized_crop_statistics_follow_scale_and_ratio() {
    let mut r = rng(3);
    let (mut areas, mut n) = (0.0, 0);
    for _ in 0..4000 {
        let (_, _, h, w) =
            random_resized_crop_window(200, 200, [0.08, 1.0], [0.75, 4.0 / 3.0], &mut r);
        let frac = (h * w) as f64 / 40000.0;
        assert!((0.06..=1.0).contains(&frac), "area fraction {frac}");
        let ratio = w as f64 / h as f64;
        assert!((0.7..=1.4).contains(&ratio), "ratio {ratio}");
        areas += frac;
        n += 1;
    }
    // Accepted windows have mean area fraction near (0.08 + 1) / 2, a little less because
    // large windows with extreme ratios are rejected.
    let mean = areas / n as f64;
    assert!((0.45..0.56).contains(&mean), "mean area fraction {mean}");
    // Fallback: an extreme panorama cannot fit any window of ratio <= 4/3 in 10 tries at
    // scale 1: the centre crop with ratio clamped to 4/3 is used.
    let window = random_resized_crop_window(10, 1000, [1.0, 1.0], [0.75, 4.0 / 3.0], &mut r);
    assert_eq!(window, (0, 493, 10, 13));
}

#[test]
fn random_erasing_writes_one_noise_rectangle() {
    let erasing = RandomErasing::with_prob(1.0);
    let (h, w) = (20, 24);
    let mut r = rng(5);
    for _ in 0..50 {
        let mut chw = vec![7.0f32; 3 * h * w];
        assert_eq!(erasing.apply(&mut chw, h, w, &mut r), 1);
        // The changed pixels form one rectangle, the same in every channel.
        let changed: Vec<(usize, usize)> = (0..h * w)
            .filter(|&p| chw[p] != 7.0)
            .map(|p| (p / w, p % w))
            .collect();
        let (y0, y1) = (
            changed.iter().map(|c| c.0).min().unwrap(),
            changed.iter().map(|c| c.0).max().unwrap(),
        );
        let (x0, x1) = (
            changed.iter().map(|c| c.1).min().unwrap(),
            changed.iter().map(|c| c.1).max().unwrap(),
        );
        assert_eq!(changed.len(), (y1 - y0 + 1) * (x1 - x0 + 1));
        let area = changed.len() as f64 / (h * w) as f64;
        assert!((0.01..0.40).contains(&area), "erased fraction {area}");
        for c in 1..3 {
            for &(y, x) in &changed {
                assert_ne!(chw[c * h * w + y * w + x], 7.0);
            }
        }
    }
    // Noise is roughly N(0, 1).
    let mut values = Vec::new();
    for _ in 0..200 {
        let mut chw = vec![f32::NAN; 3 * h * w];
        erasing.apply(&mut chw, h, w, &mut r);
        values.extend(chw.into_iter().filter(|v| !v.is_nan()));
    }
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
    let var = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / values.len() as f64;
    assert!(
        mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
        "mean {mean} var {var}"
    );
    // prob 0 never erases.
    let mut chw = vec![7.0f32; 3 * h * w];
    assert_eq!(
        RandomErasing::with_prob(0.0).apply(&mut chw, h, w, &mut r),
        0
    );
}

#[test]
fn cifar_pipeline_output_is_a_shifted_maybe_flipped_normalised_input() {
    let pipeline = Pipeline::cifar_train();
    let table = pipeline.table();
    let src = ramp(32, 32);
    let (mut flipped, mut straight) = (0, 0);
    for seed in 0..200 {
        let mut scratch = Scratch {
            image: src.clone(),
            ..Default::default()
        };
        let mut out = vec![0f32; 3 * 32 * 32];
        pipeline.apply_into(&table, &mut scratch, &mut out, &mut rng(seed));
        let candidates = (-4isize..=4).flat_map(|dy| (-4isize..=4).map(move |dx| (dy, dx)));
        let mut matched = false;
        for (dy, dx) in candidates {
            let shifted = crop_reference(&src, dy, dx, 32, 32);
            let mut mirrored = shifted.clone();
            flip_horizontal(&mut mirrored);
            for (image, is_flip) in [(shifted, false), (mirrored, true)] {
                let mut want = vec![0f32; 3 * 32 * 32];
                table.write_chw(&image, &mut want);
                if want == out {
                    matched = true;
                    if is_flip { flipped += 1 } else { straight += 1 }
                }
            }
        }
        assert!(
            matched,
            "seed {seed}: output is not a shift (+flip) of the input"
        );
    }
    assert!(
        flipped > 60 && straight > 60,
        "flip rate: {flipped} flipped, {straight} not"
    );
}

#[test]
fn pipeline_output_sizes_and_bad_configs() {
    assert_eq!(
        Pipeline::cifar_train().output_size((32, 32)).unwrap(),
        (32, 32)
    );
    assert_eq!(
        Pipeline::imagenet_train(224, 0.2)
            .output_size((375, 500))
            .unwrap(),
        (224, 224)
    );
    assert_eq!(
        Pipeline::imagenet_eval(224)
            .output_size((375, 500))
            .unwrap(),
        (224, 224)
    );
    let mut bad = Pipeline::cifar_train();
    bad.std[1] = 0.0;
    assert!(bad.output_size((32, 32)).is_err());
    let crop = Pipeline {
        ops: vec![ImageOp::RandomCrop {
            height: 40,
            width: 40,
            padding: 2,
        }],
        ..Pipeline::cifar_eval()
    };
    let err = crop.output_size((32, 32)).unwrap_err().to_string();
    assert!(err.contains("40x40") && err.contains("32x32"), "{err}");
}

#[test]
fn pipeline_round_trips_through_json() {
    let pipeline = Pipeline::imagenet_train(224, 0.4);
    let json = serde_json::to_string(&pipeline).unwrap();
    let back: Pipeline = serde_json::from_str(&json).unwrap();
    assert_eq!(back, pipeline);
    assert!(json.contains("\"op\":\"random_resized_crop\""), "{json}");
}

#[test]
fn imagenet_train_pipeline_is_deterministic_per_seed() {
    let pipeline = Pipeline::imagenet_train(64, 0.5);
    let table = pipeline.table();
    let src = ramp(80, 100);
    let run = |seed| {
        let mut scratch = Scratch {
            image: src.clone(),
            ..Default::default()
        };
        let mut out = vec![0f32; 3 * 64 * 64];
        pipeline.apply_into(&table, &mut scratch, &mut out, &mut rng(seed));
        out
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}

#[test]
fn resize_keeps_constants_and_monotone_gradients() {
    for interpolation in [
        Interpolation::Nearest,
        Interpolation::Bilinear,
        Interpolation::Bicubic,
    ] {
        let flat = Image::from_hwc(7, 9, [40u8, 90, 250].repeat(63));
        let mut out = Image::default();
        resize(&flat, &mut out, 3, 5, interpolation);
        assert_eq!((out.height, out.width), (3, 5));
        assert!(
            out.data.chunks_exact(3).all(|p| p == [40, 90, 250]),
            "{interpolation:?}"
        );
        // A left-to-right ramp stays a non-decreasing ramp when enlarged or shrunk.
        let mut ramp_image = Image::zeros(4, 16);
        for y in 0..4 {
            for x in 0..16 {
                ramp_image.set_pixel(y, x, [(x * 16) as u8, 0, 0]);
            }
        }
        for (h, w) in [(4, 40), (2, 5)] {
            resize(&ramp_image, &mut out, h, w, interpolation);
            let reds: Vec<u8> = (0..w).map(|x| out.pixel(h - 1, x)[0]).collect();
            assert!(
                reds.windows(2).all(|p| p[0] <= p[1]),
                "{interpolation:?} {reds:?}"
            );
            assert!(reds[w - 1] > reds[0] + 100);
        }
    }
}
