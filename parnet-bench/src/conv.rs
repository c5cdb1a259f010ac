//! The conv2d shapes the benches time, and graph-free runners for them.

use parnet_core::ops::conv2d::{
    Conv2dGeometry, Conv2dParams, conv2d_backward_input, conv2d_backward_weight, conv2d_forward,
};

/// One benchmarked convolution (NCHW).
#[derive(Clone, Copy, Debug)]
pub struct ConvCase {
    /// Short label, e.g. `cifar b64 3x3 s1 128->128 32x32`.
    pub name: &'static str,
    pub x_dims: [usize; 4],
    pub w_dims: [usize; 4],
    pub params: Conv2dParams,
}

impl ConvCase {
    pub fn geometry(&self) -> Conv2dGeometry {
        Conv2dGeometry::new(self.x_dims, self.w_dims, self.params).expect("bench shape")
    }

    /// FLOPs of the forward: `2 N Cout Ho Wo (Cin/g) KH KW` (padding taps included).
    pub fn forward_flops(&self) -> f64 {
        self.geometry().forward_flops()
    }

    /// FLOPs of the backward (input gradient + weight gradient): twice the forward.
    pub fn backward_flops(&self) -> f64 {
        2.0 * self.forward_flops()
    }
}

/// `case(name, batch, Cin, Cout, H = W, k, stride, groups)`, padding `k / 2`.
#[allow(clippy::too_many_arguments)]
const fn case(
    name: &'static str,
    n: usize,
    cin: usize,
    cout: usize,
    hw: usize,
    k: usize,
    stride: usize,
    groups: usize,
) -> ConvCase {
    ConvCase {
        name,
        x_dims: [n, cin, hw, hw],
        w_dims: [cout, cin / groups, k, k],
        params: Conv2dParams {
            stride,
            padding: k / 2,
            groups,
        },
    }
}

/// The benchmarked shapes: CIFAR-sized batch 64 and ImageNet-sized batch 1 layers of ParNet.
pub const CASES: [ConvCase; 10] = [
    case("cifar b64 3x3 s1 32->32 32x32", 64, 32, 32, 32, 3, 1, 1),
    case("cifar b64 3x3 s1 64->64 32x32", 64, 64, 64, 32, 3, 1, 1),
    case("cifar b64 3x3 s1 128->128 32x32", 64, 128, 128, 32, 3, 1, 1),
    case("cifar b64 3x3 s2 128->256 32x32", 64, 128, 256, 32, 3, 2, 1),
    case("cifar b64 1x1 s1 128->128 32x32", 64, 128, 128, 32, 1, 1, 1),
    case(
        "cifar b64 3x3 s2 g2 512->512 16x16",
        64,
        512,
        512,
        16,
        3,
        2,
        2,
    ),
    case(
        "imagenet b1 3x3 s1 128->128 56x56",
        1,
        128,
        128,
        56,
        3,
        1,
        1,
    ),
    case(
        "imagenet b1 3x3 s1 256->256 28x28",
        1,
        256,
        256,
        28,
        3,
        1,
        1,
    ),
    case(
        "imagenet b1 3x3 s1 512->512 14x14",
        1,
        512,
        512,
        14,
        3,
        1,
        1,
    ),
    case(
        "imagenet b1 3x3 s2 128->256 56x56",
        1,
        128,
        256,
        56,
        3,
        2,
        1,
    ),
];

/// Inputs and output buffers of one case, filled with fixed pseudo-random values.
pub struct ConvRun {
    pub case: ConvCase,
    x: Vec<f32>,
    w: Vec<f32>,
    bias: Vec<f32>,
    dy: Vec<f32>,
    out: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
}

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2654435761) ^ seed) as f32 / u32::MAX as f32 - 0.5)
        .collect()
}

impl ConvRun {
    pub fn new(case: ConvCase) -> Self {
        let geo = case.geometry();
        let x_len: usize = case.x_dims.iter().product();
        let w_len: usize = case.w_dims.iter().product();
        let out_len: usize = geo.out_dims().iter().product();
        ConvRun {
            case,
            x: values(x_len, 1),
            w: values(w_len, 2),
            bias: values(geo.out_channels, 3),
            dy: values(out_len, 4),
            out: vec![0.0; out_len],
            dx: vec![0.0; x_len],
            dw: vec![0.0; w_len],
        }
    }

    /// The forward with bias.
    pub fn forward(&mut self) {
        let c = &self.case;
        conv2d_forward(
            &self.x,
            c.x_dims,
            &self.w,
            c.w_dims,
            Some(&self.bias),
            c.params,
            &mut self.out,
        )
        .expect("forward");
    }

    /// The input gradient and the weight gradient (the bias gradient, a plain sum, is left out).
    pub fn backward(&mut self) {
        let c = &self.case;
        conv2d_backward_input(
            &self.dy,
            &self.w,
            c.w_dims,
            c.x_dims,
            c.params,
            &mut self.dx,
        )
        .expect("input gradient");
        conv2d_backward_weight(
            &self.x,
            c.x_dims,
            &self.dy,
            c.w_dims,
            c.params,
            &mut self.dw,
        )
        .expect("weight gradient");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_valid_and_count_flops_by_the_formula() {
        for case in CASES {
            let geo = case.geometry();
            let [n, cin, _, _] = case.x_dims;
            let [cout, _, kh, kw] = case.w_dims;
            let expected =
                2 * n * cout * geo.out_h * geo.out_w * (cin / case.params.groups) * kh * kw;
            assert_eq!(case.forward_flops(), expected as f64, "{}", case.name);
            assert_eq!(
                case.backward_flops(),
                2.0 * expected as f64,
                "{}",
                case.name
            );
        }
        // The stride-2 CIFAR layer halves the image.
        assert_eq!(CASES[3].geometry().out_dims(), [64, 256, 16, 16]);
    }
}
