//! conv2d tests: forward and backward kernels against the plain reference (small random shapes
//! and larger multi-band ones), the backward against f64 finite differences, thread-count
//! independence, and argument errors.

use super::test_support::*;
use super::*;
use crate::testing::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Small random shapes: batch 1-3, H, W 1-9, every kernel/stride/padding/groups combination.
    #[test]
    fn kernels_match_reference_on_small_shapes(case in cases(1..=3, 9, 4), seed in any::<u64>()) {
        check_kernels_against_reference(&case, seed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Larger shapes, so outputs are split into several bands, and batches that take the
    /// per-image path (>= 8 images) as well as the per-band one.
    #[test]
    fn kernels_match_reference_on_multi_band_shapes(
        batch in prop::sample::select(vec![1usize, 2, 8]),
        (cin_g, cout_g, groups) in (8usize..=24, 1usize..=8, prop::sample::select(vec![1usize, 2])),
        (h, w) in (12usize..=36, 12usize..=36),
        (k, stride, padding) in (prop::sample::select(vec![1usize, 3, 3, 5]), 1usize..=2, 0usize..=2),
        seed in any::<u64>(),
    ) {
        let case = Case {
            x_dims: [batch, cin_g * groups, h, w],
            w_dims: [cout_g * groups, cin_g, k, k],
            params: Conv2dParams::new(stride, padding.min(k), groups),
            bias: true,
        };
        check_kernels_against_reference(&case, seed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The graph op's backward (input, weight, bias) against f64 central differences of the
    /// reference. Tolerance: default (`|a - n| <= 1e-4 max(1, max|n|) + 1e-3 |n|`).
    #[test]
    fn backward_matches_finite_differences(case in cases(1..=2, 5, 2), seed in any::<u64>()) {
        let geo = case.geo();
        let x = random_values(geo.x_dims().iter().product(), 1.0, seed);
        let w = random_values(case.w_dims.iter().product(), 1.0, seed + 1);
        let b = random_values(geo.out_channels, 1.0, seed + 2);
        let mut inputs = vec![GradInput::new(x, &case.x_dims), GradInput::new(w, &case.w_dims)];
        if case.bias {
            inputs.push(GradInput::new(b, &[geo.out_channels]));
        }
        let params = case.params;
        let (x_dims, w_dims) = (case.x_dims, case.w_dims);
        check_gradients(
            "conv2d",
            &inputs,
            |t| conv2d(&t[0], &t[1], t.get(2), params).unwrap(),
            |v| conv2d_reference(&v[0], x_dims, &v[1], w_dims, v.get(2).map(|b| &b[..]), params),
            GradTolerance::default(),
            seed,
        );
    }
}

/// Tilings the random shapes above never reach: few images and many output channels (the
/// forward splits output channels into blocks of at least 256), and one task per chunk of
/// several images (16 images of 16x16 make 8 chunks of 2).
#[test]
fn special_tilings_match_reference() {
    let cases = [
        ([1, 4, 7, 6], [520, 4, 3, 3], Conv2dParams::new(1, 1, 1)),
        ([2, 8, 5, 5], [1040, 4, 3, 3], Conv2dParams::new(2, 1, 2)),
        ([1, 6, 4, 4], [600, 6, 1, 1], Conv2dParams::new(1, 0, 1)),
        ([16, 4, 16, 16], [8, 4, 3, 3], Conv2dParams::new(1, 1, 1)),
        ([16, 4, 16, 16], [8, 2, 3, 3], Conv2dParams::new(1, 1, 2)),
    ];
    for (k, (x_dims, w_dims, params)) in cases.into_iter().enumerate() {
        let case = Case {
            x_dims,
            w_dims,
            params,
            bias: true,
        };
        check_kernels_against_reference(&case, k as u64);
    }
}

/// Forward, input, weight and bias gradients of `case` as raw bits, computed in `pool`.
fn all_outputs_in(pool: &rayon::ThreadPool, case: &Case) -> Vec<Vec<u32>> {
    let geo = case.geo();
    let x = to_f32(&random_values(geo.x_dims().iter().product(), 1.0, 7));
    let w = to_f32(&random_values(case.w_dims.iter().product(), 1.0, 8));
    let b = to_f32(&random_values(geo.out_channels, 1.0, 9));
    let dy = to_f32(&random_values(geo.out_dims().iter().product(), 1.0, 10));
    pool.install(|| {
        let mut out = vec![0.0; dy.len()];
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; w.len()];
        let mut db = vec![0.0; b.len()];
        let (xd, wd, p) = (case.x_dims, case.w_dims, case.params);
        conv2d_forward(&x, xd, &w, wd, Some(&b), p, &mut out).unwrap();
        conv2d_backward_input(&dy, &w, wd, xd, p, &mut dx).unwrap();
        conv2d_backward_weight(&x, xd, &dy, wd, p, &mut dw).unwrap();
        conv2d_backward_bias(&dy, geo.out_dims(), &mut db).unwrap();
        [out, dx, dw, db]
            .iter()
            .map(|v| v.iter().map(|f| f.to_bits()).collect())
            .collect()
    })
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let cases = [
        // Per-band tasks, several bands, transposed-conv input gradient, weight partials.
        ([1, 16, 40, 40], [16, 16, 3, 3], Conv2dParams::new(1, 1, 1)),
        // Shifted GEMMs (per-image tasks), grouped and with a non-square kernel.
        ([9, 8, 12, 34], [8, 8, 3, 3], Conv2dParams::new(1, 1, 1)),
        ([17, 8, 6, 33], [6, 4, 3, 2], Conv2dParams::new(1, 2, 2)),
        // Per-image tasks.
        ([9, 8, 20, 20], [8, 8, 3, 3], Conv2dParams::new(1, 1, 1)),
        // Strided and grouped: col2im input gradient split into channel blocks.
        ([2, 16, 33, 30], [16, 8, 3, 3], Conv2dParams::new(2, 1, 2)),
        // Pointwise.
        ([3, 16, 30, 30], [24, 16, 1, 1], Conv2dParams::new(1, 0, 1)),
        // Several images per tile (8x8 outputs), ragged last chunk, strided and pointwise.
        ([20, 8, 8, 8], [16, 8, 3, 3], Conv2dParams::new(1, 1, 1)),
        ([3, 8, 16, 16], [16, 4, 3, 3], Conv2dParams::new(2, 1, 2)),
        ([20, 8, 8, 8], [16, 8, 1, 1], Conv2dParams::new(1, 0, 1)),
        // One task per chunk of 2 images.
        ([16, 4, 16, 16], [8, 4, 3, 3], Conv2dParams::new(1, 1, 1)),
        // Output channel blocks.
        ([1, 4, 7, 6], [520, 4, 3, 3], Conv2dParams::new(1, 1, 1)),
    ];
    for (x_dims, w_dims, params) in cases {
        let case = Case {
            x_dims,
            w_dims,
            params,
            bias: true,
        };
        assert!(
            all_outputs_in(&one, &case) == all_outputs_in(&two, &case),
            "{case:?}: 1 and 2 threads differ"
        );
    }
}

/// The error message of `conv2d` on zero tensors of these shapes.
fn conv_error(x: &[usize], w: &[usize], bias: Option<usize>, params: Conv2dParams) -> String {
    let x = Tensor::zeros(x.to_vec());
    let w = Tensor::zeros(w.to_vec());
    let b = bias.map(|n| Tensor::zeros([n]));
    conv2d(&x, &w, b.as_ref(), params).unwrap_err().to_string()
}

/// Input dims, weight dims, bias length, params, and a fragment the error message must contain.
type ErrorCase<'a> = (
    &'a [usize],
    &'a [usize],
    Option<usize>,
    Conv2dParams,
    &'a str,
);

#[test]
fn rejects_invalid_arguments() {
    let p = Conv2dParams::new;
    let cases: [ErrorCase<'_>; 10] = [
        (&[1, 4, 5, 5], &[4, 4, 3, 3], None, p(0, 1, 1), "stride"),
        (&[1, 4, 5, 5], &[4, 4, 3, 3], None, p(1, 1, 0), "groups"),
        (
            &[1, 6, 5, 5],
            &[4, 2, 3, 3],
            None,
            p(1, 1, 4),
            "groups 4 must divide",
        ),
        (
            &[1, 4, 5, 5],
            &[4, 3, 3, 3],
            None,
            p(1, 1, 1),
            "input channels per group",
        ),
        (
            &[1, 4, 2, 5],
            &[4, 4, 5, 5],
            None,
            p(1, 1, 1),
            "output size <= 0",
        ),
        (&[1, 4, 5, 5], &[4, 4, 3, 3], Some(3), p(1, 1, 1), "bias"),
        (&[4, 5, 5], &[4, 4, 3, 3], None, p(1, 1, 1), "4-D"),
        (&[1, 4, 5, 5], &[4, 4, 3], None, p(1, 1, 1), "4-D"),
        (&[1, 4, 5, 5], &[0, 4, 3, 3], None, p(1, 1, 1), "non-zero"),
        (&[1, 4, 0, 5], &[4, 4, 1, 1], None, p(1, 1, 1), "non-zero"),
    ];
    for (x, w, bias, params, needle) in cases {
        let err = conv_error(x, w, bias, params);
        assert!(
            err.contains("conv2d") && err.contains(needle),
            "{x:?} {w:?}: {err}"
        );
    }
    // Shape errors name the shapes.
    let err = conv_error(&[1, 4, 5, 5], &[4, 3, 3, 3], None, p(1, 1, 1));
    assert!(
        err.contains("[1, 4, 5, 5]") && err.contains("[4, 3, 3, 3]"),
        "{err}"
    );
}

#[test]
fn slice_kernels_reject_wrong_lengths() {
    let params = Conv2dParams::new(1, 1, 1);
    let (xd, wd) = ([1, 2, 4, 4], [3, 2, 3, 3]);
    let (x, w) = (vec![0.0; 32], vec![0.0; 54]);
    let mut out = vec![0.0; 48];
    assert!(conv2d_forward(&x, xd, &w, wd, None, params, &mut out).is_ok());
    assert!(conv2d_forward(&x[1..], xd, &w, wd, None, params, &mut out).is_err());
    assert!(conv2d_forward(&x, xd, &w, wd, None, params, &mut out[1..]).is_err());
    assert!(conv2d_forward(&x, xd, &w, wd, Some(&[0.0; 2]), params, &mut out).is_err());
    let mut dx = vec![0.0; 31];
    assert!(conv2d_backward_input(&out, &w, wd, xd, params, &mut dx).is_err());
    let mut dw = vec![0.0; 53];
    assert!(conv2d_backward_weight(&x, xd, &out, wd, params, &mut dw).is_err());
    assert!(conv2d_backward_bias(&out, [1, 3, 4, 4], &mut [0.0; 2]).is_err());
}

#[test]
fn empty_batch_gives_empty_output_and_zero_weight_gradient() {
    // Stride 1 (transposed-convolution input gradient) and 2 (col2im).
    for (stride, out_hw) in [(1, 5), (2, 3)] {
        let x = Tensor::zeros([0, 4, 5, 5]).into_leaf();
        let w = Tensor::from_vec(vec![1.0; 8 * 4 * 9], [8, 4, 3, 3])
            .unwrap()
            .into_leaf();
        let y = conv2d(&x, &w, None, Conv2dParams::new(stride, 1, 1)).unwrap();
        assert_eq!(y.dims(), &[0, 8, out_hw, out_hw]);
        y.backward_with(Buffer::zeros(0)).unwrap();
        assert!(w.grad().unwrap().iter().all(|&g| g == 0.0));
        assert_eq!(x.grad().unwrap().len(), 0);
    }
}

#[test]
fn matches_a_hand_computed_example() {
    // 1 image, 1 channel 3x3, 2x2 kernel of ones, stride 1, no padding: sums of 2x2 windows.
    let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), [1, 1, 3, 3]).unwrap();
    let w = Tensor::from_vec(vec![1.0; 4], [1, 1, 2, 2]).unwrap();
    let b = Tensor::from_vec(vec![0.5], [1]).unwrap();
    let y = conv2d(&x, &w, Some(&b), Conv2dParams::default()).unwrap();
    assert_eq!(y.dims(), &[1, 1, 2, 2]);
    assert_eq!(y.data(), &[12.5, 16.5, 24.5, 28.5]);
}
