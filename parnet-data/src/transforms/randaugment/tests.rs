//! Each RandAugment operation on a tiny hand-made image, with the output worked out by hand
//! from PIL's definitions.

use rand::SeedableRng;

use super::affine::{rotation, warp_affine};
use super::colour::*;
use super::*;
use crate::seed::SampleRng;

/// A 1-row image from RGB triples.
fn row(pixels: &[[u8; 3]]) -> Image {
    Image::from_hwc(1, pixels.len(), pixels.concat())
}

fn grey_row(values: &[u8]) -> Image {
    row(&values.iter().map(|&v| [v, v, v]).collect::<Vec<_>>())
}

fn values(image: &Image) -> Vec<u8> {
    image.data.chunks_exact(3).map(|p| p[0]).collect()
}

/// A 4x4 image with distinct pixels: (y, x) -> [10y + x, 0, 0] ... plus green = 100.
fn grid() -> Image {
    let mut image = Image::zeros(4, 4);
    for y in 0..4 {
        for x in 0..4 {
            image.set_pixel(y, x, [(10 * y + x) as u8, 100, 200]);
        }
    }
    image
}

#[test]
fn auto_contrast_stretches_each_channel() {
    let mut image = row(&[[50, 7, 9], [100, 7, 0], [150, 7, 255]]);
    auto_contrast(&mut image);
    // red: lo 50, hi 150 -> scale 2.55; green constant -> unchanged; blue already full range.
    assert_eq!(image, row(&[[0, 7, 9], [127, 7, 0], [255, 7, 255]]));
}

#[test]
fn equalize_follows_pil_histogram_steps() {
    // 255 x 10, 255 x 20, 1 x 30: step = (511 - 1) / 255 = 2, n starts at 1.
    let mut values_in = vec![10u8; 255];
    values_in.extend(vec![20u8; 255]);
    values_in.push(30);
    let mut image = grey_row(&values_in);
    equalize(&mut image);
    let out = values(&image);
    assert_eq!((out[0], out[255], out[510]), (0, 128, 255));
    // Too few distinct values: unchanged.
    let mut flat = grey_row(&[5, 5, 9]);
    equalize(&mut flat);
    assert_eq!(values(&flat), [5, 5, 9]);
}

#[test]
fn invert_posterize_solarize() {
    let mut image = grey_row(&[0, 100, 183, 255]);
    invert(&mut image);
    assert_eq!(values(&image), [255, 155, 72, 0]);
    let mut image = grey_row(&[183, 31, 255]);
    posterize(&mut image, 3);
    assert_eq!(values(&image), [160, 0, 224]);
    let mut image = grey_row(&[183, 31]);
    posterize(&mut image, 0);
    assert_eq!(values(&image), [0, 0]);
    let mut image = grey_row(&[183, 31]);
    posterize(&mut image, 8);
    assert_eq!(values(&image), [183, 31]);
    let mut image = grey_row(&[100, 127, 128, 200]);
    solarize(&mut image, 128);
    assert_eq!(values(&image), [100, 127, 127, 55]);
    let mut image = grey_row(&[100, 127, 128, 200]);
    solarize_add(&mut image, 110, 128);
    assert_eq!(values(&image), [210, 237, 128, 200]);
    let mut image = grey_row(&[100]);
    solarize_add(&mut image, 200, 128);
    assert_eq!(values(&image), [255]);
}

#[test]
fn enhance_ops_blend_with_their_degenerate_image() {
    // Color 0: greyscale; L(255, 0, 0) = 76 in PIL.
    let mut image = row(&[[255, 0, 0]]);
    color(&mut image, 0.0);
    assert_eq!(image, row(&[[76, 76, 76]]));
    let mut image = row(&[[255, 0, 0]]);
    color(&mut image, 2.0);
    assert_eq!(
        image,
        row(&[[255, 0, 0]]),
        "saturating: 76 + 2(255-76) > 255, 76 - 152 < 0"
    );
    let mut image = row(&[[255, 0, 100]]);
    color(&mut image, 1.0);
    assert_eq!(image, row(&[[255, 0, 100]]));
    // Contrast: the mean grey of black + white is 128 (127.5 rounded up).
    let mut image = grey_row(&[0, 255]);
    contrast(&mut image, 0.0);
    assert_eq!(values(&image), [128, 128]);
    let mut image = grey_row(&[0, 255]);
    contrast(&mut image, 0.5);
    assert_eq!(values(&image), [64, 191]);
    // Brightness: scale toward black, truncating.
    let mut image = grey_row(&[200, 3]);
    brightness(&mut image, 0.5);
    assert_eq!(values(&image), [100, 1]);
}

#[test]
fn sharpness_blends_with_the_smoothed_interior() {
    let mut centre = Image::zeros(3, 3);
    centre.set_pixel(1, 1, [130, 130, 130]);
    let mut scratch = Image::default();
    let mut image = centre.clone();
    sharpness(&mut image, 0.0, &mut scratch);
    // SMOOTH at the centre: 5 * 130 / 13 = 50; the border is left unfiltered.
    assert_eq!(image.pixel(1, 1), [50, 50, 50]);
    assert_eq!(image.pixel(0, 0), [0, 0, 0]);
    let mut image = centre.clone();
    sharpness(&mut image, 2.0, &mut scratch);
    assert_eq!(image.pixel(1, 1), [210, 210, 210]);
}

#[test]
fn rotate_90_is_counter_clockwise() {
    let src = grid();
    for interpolation in [
        Interpolation::Nearest,
        Interpolation::Bilinear,
        Interpolation::Bicubic,
    ] {
        let mut out = Image::default();
        warp_affine(
            &src,
            &mut out,
            &rotation(4, 4, 90.0),
            interpolation,
            [1, 2, 3],
        );
        for y in 0..4 {
            for x in 0..4 {
                assert_eq!(
                    out.pixel(y, x),
                    src.pixel(x, 3 - y),
                    "{interpolation:?} at ({y}, {x})"
                );
            }
        }
    }
}

#[test]
fn rotate_small_angle_fills_corners() {
    let src = Image::from_hwc(8, 8, [50u8, 60, 70].repeat(64));
    let mut out = Image::default();
    warp_affine(
        &src,
        &mut out,
        &rotation(8, 8, 30.0),
        Interpolation::Bilinear,
        [1, 2, 3],
    );
    assert_eq!(out.pixel(0, 0), [1, 2, 3], "corner comes from outside");
    assert_eq!(out.pixel(4, 4), [50, 60, 70], "centre stays");
}

#[test]
fn shear_x_shifts_rows_by_row_index() {
    let src = grid();
    let mut out = Image::default();
    // input x = x + 0.5 y (pixel centres): nearest floors (x + 0.5) + 0.5 (y + 0.5).
    warp_affine(
        &src,
        &mut out,
        &[1.0, 0.5, 0.0, 0.0, 1.0, 0.0],
        Interpolation::Nearest,
        [9, 9, 9],
    );
    for y in 0..4 {
        let shift = (0.5 * (y as f64 + 0.5) + 0.5).floor() as usize;
        for x in 0..4 {
            let want = if x + shift < 4 {
                src.pixel(y, x + shift)
            } else {
                [9, 9, 9]
            };
            assert_eq!(out.pixel(y, x), want, "({y}, {x})");
        }
    }
}

#[test]
fn translate_ops_shift_by_a_fraction_of_the_side() {
    let mut src = Image::zeros(2, 20);
    for x in 0..20 {
        src.set_pixel(0, x, [x as u8, 0, 0]);
        src.set_pixel(1, x, [x as u8, 0, 0]);
    }
    let config = RandAugment {
        interpolation: Interpolation::Bilinear,
        fill: [255, 255, 255],
        ..RandAugment::default()
    };
    let mut rng = SampleRng::seed_from_u64(4);
    let mut seen = [false; 2];
    for _ in 0..20 {
        let mut image = src.clone();
        let mut scratch = Image::default();
        // Level 10 -> 0.45 * 20 = 9 pixels, either way.
        apply_op(
            AugmentOp::TranslateXRel,
            10.0,
            &config,
            &mut image,
            &mut scratch,
            &mut rng,
        );
        let first = image.pixel(0, 0);
        if first == [9, 0, 0] {
            seen[0] = true;
            assert_eq!(image.pixel(0, 10), [19, 0, 0]);
            assert_eq!(image.pixel(0, 11), [255, 255, 255]);
        } else {
            assert_eq!(first, [255, 255, 255]);
            assert_eq!(image.pixel(0, 9), [0, 0, 0]);
            assert_eq!(image.pixel(1, 19), [10, 0, 0]);
            seen[1] = true;
        }
    }
    assert!(seen[0] && seen[1], "both signs occur");
}

#[test]
fn levels_map_to_timm_arguments() {
    let config = RandAugment::default();
    let mut rng = SampleRng::seed_from_u64(0);
    let mut scratch = Image::default();
    // Level 9: posterize keeps int(3.6) = 3 bits, solarize threshold int(230.4) = 230,
    // solarize-add adds int(99) = 99, enhance factor 1.72.
    let mut image = grey_row(&[183]);
    apply_op(
        AugmentOp::Posterize,
        9.0,
        &config,
        &mut image,
        &mut scratch,
        &mut rng,
    );
    assert_eq!(values(&image), [160]);
    let mut image = grey_row(&[229, 230]);
    apply_op(
        AugmentOp::Solarize,
        9.0,
        &config,
        &mut image,
        &mut scratch,
        &mut rng,
    );
    assert_eq!(values(&image), [229, 25]);
    let mut image = grey_row(&[100, 128]);
    apply_op(
        AugmentOp::SolarizeAdd,
        9.0,
        &config,
        &mut image,
        &mut scratch,
        &mut rng,
    );
    assert_eq!(values(&image), [199, 128]);
    let mut image = grey_row(&[100]);
    apply_op(
        AugmentOp::Brightness,
        9.0,
        &config,
        &mut image,
        &mut scratch,
        &mut rng,
    );
    assert_eq!(values(&image), [172]);
}

#[test]
fn policy_picks_ops_uniformly_and_respects_prob() {
    let mut rng = SampleRng::seed_from_u64(11);
    let mut scratch = Image::default();
    let always = RandAugment {
        prob: 1.0,
        ..RandAugment::default()
    };
    let mut counts = [0usize; 15];
    for _ in 0..1500 {
        let mut image = grid();
        let applied = always.apply(&mut image, &mut scratch, &mut rng);
        assert!(applied[0].is_some() && applied[1].is_some() && applied[2].is_none());
        for op in applied.into_iter().flatten() {
            counts[AUGMENT_OPS.iter().position(|&o| o == op).unwrap()] += 1;
        }
    }
    assert!(
        counts.iter().all(|&c| (140..=260).contains(&c)),
        "{counts:?}"
    );
    // prob 0: nothing happens.
    let never = RandAugment {
        prob: 0.0,
        ..RandAugment::default()
    };
    let mut image = grid();
    assert_eq!(never.apply(&mut image, &mut scratch, &mut rng), [None; 4]);
    assert_eq!(image, grid());
    // Default prob 0.5: about a quarter of images get no op.
    let default = RandAugment::default();
    let none = (0..2000)
        .filter(|_| {
            default
                .apply(&mut grid(), &mut scratch, &mut rng)
                .iter()
                .all(Option::is_none)
        })
        .count();
    assert!((420..580).contains(&none), "{none} of 2000 untouched");
}
