//! Every fused epilogue of the executor's convolutions (direct and Winograd, at every ISA level)
//! against the unfused ops of the training graph: `conv2d`, then `mul_channel` by the gate, `add`
//! of the residual (through its affine map), then ReLU or SiLU.

use proptest::prelude::*;

use super::conv_direct::DirectConv;
use super::epilogue::{ConvIo, OutBuf};
use super::layout::Layout;
use super::winograd::{Winograd, WinogradTile};
use crate::kernels::activation::Activation;
use crate::kernels::simd::Isa;
use crate::ops::conv2d::{Conv2dParams, conv2d};
use crate::ops::{add, mul_channel, relu, silu};
use crate::tensor::Tensor;
use crate::testing::{random_values, to_f32};

/// The epilogue's terms for one case.
#[derive(Clone, Copy, Debug)]
struct Terms {
    /// 0 none, 1 on the sum, 2 on the residual.
    gate: u8,
    /// 0 none, 1 plain, 2 through an affine map.
    residual: u8,
    activation: Option<Activation>,
}

/// Copies NCHW values into a layout's interior.
fn to_layout(x: &[f32], l: &Layout) -> Vec<f32> {
    let mut out = vec![0.0f32; l.len()];
    let (c, hw) = (l.channels, l.height * l.width);
    for n in 0..l.batch {
        for (p, at) in (0..hw).map(|p| (p, l.pixel(n, p / l.width, p % l.width))) {
            for ch in 0..c {
                out[at + ch] = x[(n * c + ch) * hw + p];
            }
        }
    }
    out
}

/// Reads a layout's interior back as NCHW.
fn from_layout(y: &[f32], l: &Layout) -> Vec<f32> {
    let (c, hw) = (l.channels, l.height * l.width);
    let mut out = vec![0.0f32; l.batch * c * hw];
    for n in 0..l.batch {
        for p in 0..hw {
            let at = l.pixel(n, p / l.width, p % l.width);
            for ch in 0..c {
                out[(n * c + ch) * hw + p] = y[at + ch];
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn check(
    (n, cin, cout, h, w): (usize, usize, usize, usize, usize),
    (kernel, stride, groups): (usize, usize, usize),
    terms: Terms,
    winograd: Option<WinogradTile>,
    seed: u64,
) -> Result<(), TestCaseError> {
    let pad = kernel / 2;
    let t = |len: usize, s: u64| to_f32(&random_values(len, 1.0, seed.wrapping_add(s)));
    let x = Tensor::from_vec(t(n * cin * h * w, 1), [n, cin, h, w]).unwrap();
    let wt = Tensor::from_vec(
        t(cout * (cin / groups) * kernel * kernel, 2),
        [cout, cin / groups, kernel, kernel],
    )
    .unwrap();
    let bias = Tensor::from_vec(t(cout, 3), [cout]).unwrap();
    // The unfused reference.
    let params = Conv2dParams::new(stride, pad, groups);
    let mut y = conv2d(&x, &wt, Some(&bias), params).unwrap();
    let (ho, wo) = (y.dims()[2], y.dims()[3]);
    let gate = Tensor::from_vec(
        t(n * cout, 4).iter().map(|v| 0.5 + 0.5 * v).collect(),
        [n, cout, 1, 1],
    )
    .unwrap();
    let residual = Tensor::from_vec(t(n * cout * ho * wo, 5), [n, cout, ho, wo]).unwrap();
    let (scale, shift) = (t(cout, 6), t(cout, 7));
    if terms.gate == 1 {
        y = mul_channel(&y, &gate).unwrap();
    }
    if terms.residual != 0 {
        let mut r = residual.clone();
        if terms.residual == 2 {
            let vals: Vec<f32> = r
                .data()
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let ch = (i / (ho * wo)) % cout;
                    v * scale[ch] + shift[ch]
                })
                .collect();
            r = Tensor::from_vec(vals, [n, cout, ho, wo]).unwrap();
        }
        if terms.gate == 2 {
            r = mul_channel(&r, &gate).unwrap();
        }
        y = add(&y, &r).unwrap();
    }
    let want = match terms.activation {
        None => y,
        Some(Activation::Relu) => relu(&y),
        Some(Activation::Silu) => silu(&y),
    };
    // The executor's fused convolution.
    let lin = Layout::new(n, (cin, h, w), pad);
    let lout = Layout::new(n, (cout, ho, wo), 0);
    let lres = Layout::new(n, (cout, ho, wo), 1);
    let xin = to_layout(x.data(), &lin);
    let res = to_layout(residual.data(), &lres);
    let mut gate_buf = vec![0.0f32; n * lout.stride];
    for i in 0..n {
        gate_buf[i * lout.stride..][..cout].copy_from_slice(&gate.data()[i * cout..][..cout]);
    }
    let mut affine = (scale.clone(), shift.clone());
    affine.0.resize(lout.stride, 0.0);
    affine.1.resize(lout.stride, 0.0);
    let mut bias_padded = bias.to_vec();
    bias_padded.resize(lout.stride, 0.0);
    for isa in Isa::available() {
        let mut out = vec![0.0f32; lout.len()];
        let io = ConvIo {
            input: &xin,
            output: OutBuf(out.as_mut_ptr(), out.len()),
            output_layout: lout,
            gate: (terms.gate != 0).then_some((&gate_buf[..], terms.gate == 1)),
            gate_stride: lout.stride,
            residual: (terms.residual != 0).then(|| {
                (
                    &res[..],
                    lres,
                    (terms.residual == 2).then_some((&affine.0[..], &affine.1[..])),
                )
            }),
            bias: &bias_padded,
            activation: terms.activation,
        };
        match winograd {
            None => DirectConv::new(
                lin,
                lout,
                wt.data(),
                bias.to_vec(),
                (kernel, kernel),
                stride,
                pad,
                groups,
            )
            .run(isa, &io),
            Some(tile) => {
                Winograd::new(tile, lin, lout, wt.data(), bias.to_vec(), groups).run(isa, &io)
            }
        }
        let got = from_layout(&out, &lout);
        let scale = want.data().iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        let tol = if winograd == Some(WinogradTile::F4) {
            1e-4
        } else {
            1e-5
        };
        for (i, (a, b)) in got.iter().zip(want.data()).enumerate() {
            prop_assert!(
                (a - b).abs() <= tol * scale,
                "{isa:?} {terms:?} {winograd:?} [{i}]: fused {a} vs unfused {b}"
            );
        }
    }
    Ok(())
}

fn terms() -> impl Strategy<Value = Terms> {
    (0u8..3, 0u8..3, 0usize..3).prop_map(|(gate, residual, act)| Terms {
        // A gate on the residual needs a residual.
        gate: if gate == 2 && residual == 0 { 1 } else { gate },
        residual,
        activation: [None, Some(Activation::Relu), Some(Activation::Silu)][act],
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Direct convolutions: 1x1 and 3x3, stride 1 and 2, 1 or 2 groups, channel counts that leave
    /// partial 16-lane blocks, every combination of terms.
    #[test]
    fn direct_epilogues_match_the_unfused_ops(
        n in 1usize..=2, cin_g in 1usize..24, cout_g in 1usize..40, groups in 1usize..=2,
        h in 1usize..=9, w in 1usize..=9, k3 in any::<bool>(), s2 in any::<bool>(),
        terms in terms(), seed in any::<u64>(),
    ) {
        let (kernel, stride) = (if k3 { 3 } else { 1 }, if s2 { 2 } else { 1 });
        check((n, cin_g * groups, cout_g * groups, h, w), (kernel, stride, groups), terms, None, seed)?;
    }

    /// Winograd convolutions (stride-1 3x3) with every combination of terms.
    #[test]
    fn winograd_epilogues_match_the_unfused_ops(
        n in 1usize..=2, cin_g in 1usize..24, cout_g in 1usize..40, groups in 1usize..=2,
        h in 1usize..=11, w in 1usize..=11, f4 in any::<bool>(), terms in terms(),
        seed in any::<u64>(),
    ) {
        let tile = if f4 { WinogradTile::F4 } else { WinogradTile::F2 };
        check((n, cin_g * groups, cout_g * groups, h, w), (3, 1, groups), terms, Some(tile), seed)?;
    }
}
