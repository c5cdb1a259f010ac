//! Shared by the conv2d tests: random cases, the f64 reference of the backward, and the check of
//! the public kernels against the references.

use super::*;
use crate::testing::*;
use proptest::prelude::*;

/// A random convolution: dims of x and w, params, and whether it has a bias.
#[derive(Clone, Debug)]
pub(super) struct Case {
    pub x_dims: [usize; 4],
    pub w_dims: [usize; 4],
    pub params: Conv2dParams,
    pub bias: bool,
}

impl Case {
    pub fn geo(&self) -> Conv2dGeometry {
        Conv2dGeometry::new(self.x_dims, self.w_dims, self.params).unwrap()
    }
}

/// Kernel sizes: mostly 1 and 3, sometimes 2 or 5.
pub(super) fn kernel_size() -> impl Strategy<Value = usize> {
    prop::sample::select(vec![1usize, 1, 3, 3, 3, 2, 5])
}

/// Cases with images up to `max_hw` wide, `batch` images and up to `max_c` channels per group;
/// kernels are square except one case in four.
pub(super) fn cases(
    batch: std::ops::RangeInclusive<usize>,
    max_hw: usize,
    max_c: usize,
) -> impl Strategy<Value = Case> {
    (
        batch,
        (
            1..=max_c,
            1..=max_c,
            prop::sample::select(vec![1usize, 2, 4]),
        ),
        (1..=max_hw, 1..=max_hw),
        (kernel_size(), kernel_size(), 0usize..4),
        (1usize..=3, 0usize..=2, any::<bool>()),
    )
        .prop_filter_map(
            "kernel larger than the padded input",
            |(n, (cin_g, cout_g, groups), (h, w), (kh, kw, square), (stride, padding, bias))| {
                let kw = if square == 0 { kw } else { kh };
                let case = Case {
                    x_dims: [n, cin_g * groups, h, w],
                    w_dims: [cout_g * groups, cin_g, kh, kw],
                    params: Conv2dParams::new(stride, padding, groups),
                    bias,
                };
                Conv2dGeometry::new(case.x_dims, case.w_dims, case.params).ok()?;
                Some(case)
            },
        )
}

/// Gradients of `sum(conv(x, w, b) * dy)` straight from the definition, in f64.
pub(super) fn backward_reference(case: &Case, x: &[f64], w: &[f64], dy: &[f64]) -> [Vec<f64>; 3] {
    let geo = case.geo();
    let [batch, cin, h, wd] = case.x_dims;
    let [cout, cin_g, kh, kw] = case.w_dims;
    let cout_g = cout / case.params.groups;
    let (s, p) = (case.params.stride as isize, case.params.padding as isize);
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; cout]);
    for n in 0..batch {
        for o in 0..cout {
            for oy in 0..geo.out_h {
                for ox in 0..geo.out_w {
                    let g = dy[((n * cout + o) * geo.out_h + oy) * geo.out_w + ox];
                    db[o] += g;
                    for c in 0..cin_g {
                        let ci = o / cout_g * cin_g + c;
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = oy as isize * s + i as isize - p;
                                let ix = ox as isize * s + j as isize - p;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xi = ((n * cin + ci) * h + iy as usize) * wd + ix as usize;
                                let wi = ((o * cin_g + c) * kh + i) * kw + j;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    [dx, dw, db]
}

/// Runs the forward and all three backward kernels of `case` on seeded data and compares them
/// with the references. Tolerance: f32 accumulation over `taps` (forward, input gradient) or
/// `N*Ho*Wo` (weight and bias gradients) terms of size <= 1.
pub(super) fn check_kernels_against_reference(case: &Case, seed: u64) {
    let geo = case.geo();
    let x = random_values(geo.x_dims().iter().product(), 1.0, seed);
    let w = random_values(case.w_dims.iter().product(), 1.0, seed + 1);
    let b = random_values(geo.out_channels, 1.0, seed + 2);
    let dy = random_values(geo.out_dims().iter().product(), 1.0, seed + 3);
    let bias = case.bias.then_some(&b[..]);
    let (xf, wf, bf, dyf) = (to_f32(&x), to_f32(&w), to_f32(&b), to_f32(&dy));

    let mut out = vec![f32::NAN; dy.len()];
    conv2d_forward(
        &xf,
        case.x_dims,
        &wf,
        case.w_dims,
        case.bias.then_some(&bf[..]),
        case.params,
        &mut out,
    )
    .unwrap();
    let expected = conv2d_reference(&x, case.x_dims, &w, case.w_dims, bias, case.params);
    let taps = geo.taps_per_group() as f64;
    assert_close("forward", &out, &expected, 1e-5, 1e-6 * (taps + 1.0));

    let [dx_ref, dw_ref, db_ref] = backward_reference(case, &x, &w, &dy);
    let mut dx = vec![f32::NAN; x.len()];
    conv2d_backward_input(&dyf, &wf, case.w_dims, case.x_dims, case.params, &mut dx).unwrap();
    let fan_out = (geo.out_per_group() * geo.kernel_h * geo.kernel_w) as f64;
    assert_close("input gradient", &dx, &dx_ref, 1e-5, 1e-6 * (fan_out + 1.0));

    let mut dw = vec![f32::NAN; w.len()];
    conv2d_backward_weight(&xf, case.x_dims, &dyf, case.w_dims, case.params, &mut dw).unwrap();
    let pixels = (geo.batch * geo.out_h * geo.out_w) as f64;
    assert_close("weight gradient", &dw, &dw_ref, 1e-5, 1e-6 * (pixels + 1.0));

    let mut db = vec![f32::NAN; geo.out_channels];
    conv2d_backward_bias(&dyf, geo.out_dims(), &mut db).unwrap();
    assert_close("bias gradient", &db, &db_ref, 1e-6, 1e-6);
}
