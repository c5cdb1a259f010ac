//! Direct-path tests: the forward and weight-gradient drivers called directly (whatever the
//! dispatch would pick) against the plain references, on random shapes with every stride,
//! padding, kernel size and group count, channel counts that leave partial 16-lane blocks and
//! partial 6-row tiles, and pixel counts that leave a partial last chunk.

use proptest::prelude::*;

use crate::kernels::conv::direct::forward::{CHUNK_PIXELS, forward};
use crate::kernels::conv::direct::weight::backward_weight;
use crate::kernels::simd::Isa;
use crate::ops::conv2d::test_support::{Case, backward_reference, kernel_size};
use crate::ops::conv2d::{Conv2dParams, conv2d_reference};
use crate::testing::{assert_close, on_threads, random_values, to_f32};

/// Forward and weight gradient of `case` through the direct drivers at every available ISA
/// level, against the references; the SIMD levels (AVX2, AVX-512) agree bit for bit.
fn check_direct(case: &Case, seed: u64) {
    let geo = case.geo();
    let x = random_values(geo.x_dims().iter().product(), 1.0, seed);
    let w = random_values(case.w_dims.iter().product(), 1.0, seed + 1);
    let b = random_values(geo.out_channels, 1.0, seed + 2);
    let dy = random_values(geo.out_dims().iter().product(), 1.0, seed + 3);
    let (xf, wf, bf, dyf) = (to_f32(&x), to_f32(&w), to_f32(&b), to_f32(&dy));
    let bias = case.bias.then_some(&b[..]);
    let expected = conv2d_reference(&x, case.x_dims, &w, case.w_dims, bias, case.params);
    let [_, dw_ref, _] = backward_reference(case, &x, &w, &dy);
    let taps = geo.taps_per_group() as f64;
    let pixels = (geo.batch * geo.out_h * geo.out_w) as f64;
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    let mut simd_bits = None;
    for isa in Isa::available() {
        let mut out = vec![f32::NAN; dy.len()];
        forward(isa, &geo, &xf, &wf, case.bias.then_some(&bf[..]), &mut out);
        assert_close(
            &format!("direct forward ({})", isa.name()),
            &out,
            &expected,
            1e-5,
            1e-6 * (taps + 1.0),
        );
        let mut dw = vec![f32::NAN; w.len()];
        backward_weight(isa, &geo, &xf, &dyf, &mut dw);
        assert_close(
            &format!("direct weight gradient ({})", isa.name()),
            &dw,
            &dw_ref,
            1e-5,
            1e-6 * (pixels + 1.0),
        );
        if isa >= Isa::Avx2 {
            let got = (bits(&out), bits(&dw));
            match &simd_bits {
                None => simd_bits = Some(got),
                Some(first) => assert!(*first == got, "{} differs from AVX2", isa.name()),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// Small shapes: 1-3 images up to 9x9, up to 20 channels per group (partial lane blocks
    /// and row tiles), 1, 2 or 3 groups, strides 1-3, padding 0-2.
    #[test]
    fn direct_matches_reference_on_small_shapes(
        batch in 1usize..=3,
        (cin_g, cout_g, groups) in (1usize..=20, 1usize..=20, 1usize..=3),
        (h, w) in (1usize..=9, 1usize..=9),
        (kh, kw) in (kernel_size(), kernel_size()),
        (stride, padding, bias) in (1usize..=3, 0usize..=2, any::<bool>()),
        seed in any::<u64>(),
    ) {
        let case = Case {
            x_dims: [batch, cin_g * groups, h, w],
            w_dims: [cout_g * groups, cin_g, kh, kw],
            params: Conv2dParams::new(stride, padding, groups),
            bias,
        };
        prop_assume!(h + 2 * padding >= kh && w + 2 * padding >= kw);
        check_direct(&case, seed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    /// Larger shapes: several pixel chunks (the last one partial) and weight-gradient runs, 16
    /// and more lanes per group.
    #[test]
    fn direct_matches_reference_on_multi_chunk_shapes(
        batch in prop::sample::select(vec![1usize, 5, 9]),
        (cin_g, cout_g, groups) in (8usize..=24, 14usize..=40, prop::sample::select(vec![1usize, 2])),
        (h, w) in (8usize..=30, 8usize..=30),
        (k, stride, padding) in (prop::sample::select(vec![1usize, 3, 3, 5]), 1usize..=2, 0usize..=2),
        seed in any::<u64>(),
    ) {
        let case = Case {
            x_dims: [batch, cin_g * groups, h, w],
            w_dims: [cout_g * groups, cin_g, k, k],
            params: Conv2dParams::new(stride, padding.min(k), groups),
            bias: true,
        };
        prop_assume!(h + 2 * case.params.padding >= k && w + 2 * case.params.padding >= k);
        check_direct(&case, seed);
    }
}

/// A ParNet-sized layer (32 channels, 32x32): dozens of pixel chunks and weight-gradient runs,
/// whole 16-lane blocks.
#[test]
fn direct_matches_reference_on_a_parnet_layer() {
    let case = Case {
        x_dims: [9, 32, 32, 32],
        w_dims: [32, 32, 3, 3],
        params: Conv2dParams::new(1, 1, 1),
        bias: false,
    };
    const { assert!(9 * 32 * 32 > 30 * CHUNK_PIXELS) };
    check_direct(&case, 11);
}

/// Wide layers: 100 output channels take tiles of 4 and 3 blocks on AVX-512, 1 elsewhere.
#[test]
fn direct_matches_reference_on_wide_layers() {
    for (params, groups) in [
        (Conv2dParams::new(1, 1, 1), 1),
        (Conv2dParams::new(2, 1, 2), 2),
    ] {
        let case = Case {
            x_dims: [2, 12 * groups, 7, 6],
            w_dims: [100 * groups, 12, 3, 3],
            params,
            bias: true,
        };
        check_direct(&case, 21);
    }
}

/// The direct drivers give the same bits at 1 and 2 threads.
#[test]
fn direct_results_do_not_depend_on_thread_count() {
    let case = Case {
        x_dims: [5, 24, 17, 15],
        w_dims: [40, 12, 3, 3],
        params: Conv2dParams::new(2, 1, 2),
        bias: true,
    };
    let geo = case.geo();
    let x = to_f32(&random_values(geo.x_dims().iter().product(), 1.0, 1));
    let w = to_f32(&random_values(case.w_dims.iter().product(), 1.0, 2));
    let b = to_f32(&random_values(geo.out_channels, 1.0, 3));
    let dy = to_f32(&random_values(geo.out_dims().iter().product(), 1.0, 4));
    let run = |threads: usize| {
        on_threads(threads, || {
            let mut out = vec![0.0; dy.len()];
            let mut dw = vec![0.0; w.len()];
            forward(Isa::current(), &geo, &x, &w, Some(&b), &mut out);
            backward_weight(Isa::current(), &geo, &x, &dy, &mut dw);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            (bits(&out), bits(&dw))
        })
    };
    assert!(run(1) == run(2));
}
