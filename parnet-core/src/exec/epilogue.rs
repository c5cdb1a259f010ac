//! A convolution's epilogue on one pixel's run of output channels, applied to the sums as they
//! leave the micro-kernel: `act(((acc + bias) * g_sum) + residual' * g_res)` (see
//! [`super::graph::Epilogue`]). One plain-Rust loop compiled per ISA level, so every level gives
//! the same bits.

use std::ops::Range;

use super::layout::Layout;
use crate::kernels::activation::Activation;
use crate::kernels::activation::exp_f32;
use crate::kernels::conv::direct::kernel::{
    MR, Offsets, RegisterEpilogue, Right, Tile, tile_with_epilogue,
};
use crate::kernels::simd::{Isa, isa_kernel, prefetch_read, prefetch_write};

/// A residual of an epilogue: its buffer, its layout, and its affine map (scale, shift).
pub type ResidualIo<'a> = (&'a [f32], Layout, Option<(&'a [f32], &'a [f32])>);

/// Where a convolution writes and what its epilogue reads, for one run.
pub struct ConvIo<'a> {
    /// The input value's buffer.
    pub input: &'a [f32],
    /// The output value's buffer.
    pub output: OutBuf,
    pub output_layout: Layout,
    /// The gate buffer (`[N, gate_stride]`) and whether it multiplies the sum.
    pub gate: Option<(&'a [f32], bool)>,
    pub gate_stride: usize,
    /// The residual buffer, its layout, and its affine map (padded as `bias`).
    pub residual: Option<ResidualIo<'a>>,
    /// The bias of every output channel, zero-padded to the output's channel stride.
    pub bias: &'a [f32],
    pub activation: Option<Activation>,
}

/// Most pixels finished in one call.
pub const MAX_ROWS: usize = 16;

isa_kernel! {
/// The epilogue of `outs.len()` pixels' runs of `bias.len()` channels: `outs[r][i] =
/// act(((acc[r * acc_stride + i] + bias[i]) * gate_r[i]?) + (residual_r[i] * scale[i]? +
/// shift[i]?) * gate_r[i]?)`, one pass per term (the terms in this order at every level).
#[allow(clippy::too_many_arguments)]
fn finish_rows(
    acc: &[f32],
    acc_stride: usize,
    outs: &mut [&mut [f32]],
    bias: &[f32],
    gates: &[&[f32]],
    gate_mode: u8,
    residuals: &[&[f32]],
    scale_shift: (&[f32], &[f32]),
    residual_mode: u8,
    act: u8,
) {
    let (scale, shift) = scale_shift;
    let n = bias.len();
    for (r, out) in outs.iter_mut().enumerate() {
        let out = &mut out[..n];
        let a = &acc[r * acc_stride..][..n];
        for i in 0..n {
            out[i] = a[i] + bias[i];
        }
        if gate_mode == 1 {
            let g = &gates[r][..n];
            for i in 0..n {
                out[i] *= g[i];
            }
        }
        if residual_mode != 0 {
            let res = &residuals[r][..n];
            let gated = gate_mode == 2;
            let g: &[f32] = if gated { &gates[r][..n] } else { &[] };
            if residual_mode == 2 {
                let (s, sh) = (&scale[..n], &shift[..n]);
                if gated {
                    for i in 0..n {
                        out[i] += (res[i] * s[i] + sh[i]) * g[i];
                    }
                } else {
                    for i in 0..n {
                        out[i] += res[i] * s[i] + sh[i];
                    }
                }
            } else if gated {
                for i in 0..n {
                    out[i] += res[i] * g[i];
                }
            } else {
                for i in 0..n {
                    out[i] += res[i];
                }
            }
        }
        match act {
            1 => {
                for v in out.iter_mut() {
                    if *v < 0.0 {
                        *v = 0.0;
                    }
                }
            }
            2 => {
                for v in out.iter_mut() {
                    *v = *v / (1.0 + exp_f32(-*v));
                }
            }
            _ => {}
        }
    }
}
}

isa_kernel! {
/// [`finish_rows`] for runs of whole 16-lane chunks (`bias.len()` a multiple of 16), in one pass
/// per chunk: the value stays in registers until it is stored. The same operations in the same
/// order as [`finish_rows`], so the same bits.
#[allow(clippy::too_many_arguments)]
fn finish_chunks(
    acc: &[f32],
    acc_stride: usize,
    outs: &mut [&mut [f32]],
    bias: &[f32],
    gates: &[&[f32]],
    gate_mode: u8,
    residuals: &[&[f32]],
    scale_shift: (&[f32], &[f32]),
    residual_mode: u8,
    act: u8,
) {
    let (scale, shift) = scale_shift;
    let chunks = bias.len() / 16;
    let lanes = |s: &[f32], c: usize| -> [f32; 16] { s[c * 16..][..16].try_into().unwrap() };
    for (r, out) in outs.iter_mut().enumerate() {
        for c in 0..chunks {
            let (a, b) = (lanes(&acc[r * acc_stride..], c), lanes(bias, c));
            let mut v = [0.0f32; 16];
            for i in 0..16 {
                v[i] = a[i] + b[i];
            }
            let g = if gate_mode != 0 { lanes(gates[r], c) } else { [1.0; 16] };
            if gate_mode == 1 {
                for i in 0..16 {
                    v[i] *= g[i];
                }
            }
            if residual_mode != 0 {
                let res = lanes(residuals[r], c);
                if residual_mode == 2 {
                    let (s, t) = (lanes(scale, c), lanes(shift, c));
                    if gate_mode == 2 {
                        for i in 0..16 {
                            v[i] += (res[i] * s[i] + t[i]) * g[i];
                        }
                    } else {
                        for i in 0..16 {
                            v[i] += res[i] * s[i] + t[i];
                        }
                    }
                } else if gate_mode == 2 {
                    for i in 0..16 {
                        v[i] += res[i] * g[i];
                    }
                } else {
                    for i in 0..16 {
                        v[i] += res[i];
                    }
                }
            }
            match act {
                1 => {
                    for x in v.iter_mut() {
                        if *x < 0.0 {
                            *x = 0.0;
                        }
                    }
                }
                2 => {
                    for x in v.iter_mut() {
                        *x = *x / (1.0 + exp_f32(-*x));
                    }
                }
                _ => {}
            }
            let o: &mut [f32; 16] = (&mut out[c * 16..][..16]).try_into().unwrap();
            *o = v;
        }
    }
}
}

isa_kernel! {
/// `v = v / (1 + e^-v)` over a run, as [`finish_chunks`] computes SiLU.
fn silu_run(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x = *x / (1.0 + exp_f32(-*x));
    }
}
}

/// The activation code the loops switch on (0 none, 1 ReLU, 2 SiLU).
fn activation_code(a: Option<Activation>) -> u8 {
    match a {
        None => 0,
        Some(Activation::Relu) => 1,
        Some(Activation::Silu) => 2,
    }
}

impl ConvIo<'_> {
    /// Stores up to [`MAX_ROWS`] pixels' runs of `lanes` (at most 64) output channels from
    /// `co0` on, through the epilogue; pixel `r` (`(n, y, x)` of the output) has its sums at
    /// `acc[r * acc_stride..]`. With `may_pad`, a run that ends inside a pixel's channel padding
    /// is stored as whole 16-lane chunks (the extra lanes land in the padding, which no node
    /// reads).
    pub(crate) fn finish(
        &self,
        isa: Isa,
        (acc, acc_stride): (&[f32], usize),
        pixels: &[(usize, usize, usize)],
        (co0, lanes): (usize, usize),
        may_pad: bool,
    ) {
        let padded = lanes.div_ceil(16) * 16;
        let whole = lanes == padded || (may_pad && co0 + padded <= self.output_layout.stride);
        let n = if whole { padded } else { lanes };
        assert!(
            pixels.len() <= MAX_ROWS && n <= 64,
            "epilogue block too large"
        );
        let mut outs: [&mut [f32]; MAX_ROWS] = Default::default();
        let mut gates: [&[f32]; MAX_ROWS] = Default::default();
        let mut residuals: [&[f32]; MAX_ROWS] = Default::default();
        for (r, &(img, y, x)) in pixels.iter().enumerate() {
            let at = self.output_layout.pixel(img, y, x) + co0;
            // SAFETY: tasks store disjoint (pixel, channel run) pairs of the output, which no
            // other node reads or writes while this one runs (the schedule's guarantee); a
            // padded run stays in the pixel's padding.
            outs[r] = unsafe { self.output.slice(at, n) };
            if let Some((g, _)) = self.gate {
                gates[r] = &g[img * self.gate_stride + co0..][..n];
            }
            if let Some((data, layout, _)) = self.residual {
                let at = layout.pixel(img, y, x) + co0;
                residuals[r] = &data[at..at + n];
            }
        }
        let rows = pixels.len();
        let gate_mode = match self.gate {
            None => 0,
            Some((_, true)) => 1,
            Some((_, false)) => 2,
        };
        let empty: &[f32] = &[];
        let (scale, shift, residual_mode) = match self.residual {
            None => (empty, empty, 0),
            Some((_, _, None)) => (empty, empty, 1),
            Some((_, _, Some((s, t)))) => (&s[co0..co0 + n], &t[co0..co0 + n], 2),
        };
        let kernel = if whole { finish_chunks } else { finish_rows };
        kernel(
            isa,
            acc,
            acc_stride,
            &mut outs[..rows],
            &self.bias[co0..co0 + n],
            &gates[..rows],
            gate_mode,
            &residuals[..rows],
            (scale, shift),
            residual_mode,
            activation_code(self.activation),
        );
    }
}

impl ConvIo<'_> {
    /// Computes one direct-convolution tile (`rows`, offsets `ks[range]`, starting from zero or
    /// from the partial sums `start` over the offsets before `range`) and stores it through the
    /// epilogue in registers, when the level has such a kernel (AVX-512) and the run is whole
    /// 16-lane chunks; SiLU is then applied to the stored runs. Returns `false` (having done
    /// nothing) otherwise.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finish_in_registers(
        &self,
        isa: Isa,
        (rows, (ks, range)): (&[usize; MR], (&Offsets, Range<usize>)),
        start: Option<&Tile>,
        b: Right<'_>,
        pixels: &[(usize, usize, usize)],
        (co0, lanes): (usize, usize),
        may_pad: bool,
    ) -> bool {
        let padded = lanes.div_ceil(16) * 16;
        let whole = lanes == padded || (may_pad && co0 + padded <= self.output_layout.stride);
        if isa.min(Isa::detected()) != Isa::Avx512 || !whole || padded != b.blocks * 16 {
            return false;
        }
        let null = std::ptr::null::<f32>();
        let mut e = RegisterEpilogue {
            rows: pixels.len(),
            out: [std::ptr::null_mut(); MR],
            bias: self.bias[co0..co0 + padded].as_ptr(),
            gate_mode: match self.gate {
                None => 0,
                Some((_, true)) => 1,
                Some((_, false)) => 2,
            },
            gate: [null; MR],
            residual_mode: match self.residual {
                None => 0,
                Some((_, _, None)) => 1,
                Some((_, _, Some(_))) => 2,
            },
            residual: [null; MR],
            scale: null,
            shift: null,
            relu: self.activation == Some(Activation::Relu),
        };
        for (r, &(img, y, x)) in pixels.iter().enumerate() {
            let at = self.output_layout.pixel(img, y, x) + co0;
            assert!(at + padded <= self.output.1, "executor write out of bounds");
            e.out[r] = self.output.0.wrapping_add(at);
            if let Some((g, _)) = self.gate {
                e.gate[r] = g[img * self.gate_stride + co0..][..padded].as_ptr();
            }
            if let Some((data, layout, _)) = self.residual {
                let at = layout.pixel(img, y, x) + co0;
                e.residual[r] = data[at..at + padded].as_ptr();
            }
        }
        if let Some((_, _, Some((s, t)))) = self.residual {
            e.scale = s[co0..co0 + padded].as_ptr();
            e.shift = t[co0..co0 + padded].as_ptr();
        }
        // SAFETY: every pointer was built from a slice of at least `padded` floats (checked by
        // the slicing and the assert above); the output rows are this task's alone (the
        // schedule's guarantee, as in `finish`).
        let done = unsafe { tile_with_epilogue(isa, self.input, rows, ks, range, b, start, &e) };
        if done && self.activation == Some(Activation::Silu) {
            for &out in &e.out[..pixels.len()] {
                // SAFETY: the run just stored, this task's alone.
                let run = unsafe { std::slice::from_raw_parts_mut(out, padded) };
                silu_run(isa, run);
            }
        }
        done
    }

    /// Prefetches the output (for writing) and the residual (for reading) of `pixels`' runs of
    /// `lanes` channels from `co0`, so that the epilogue does not wait on them.
    #[inline]
    pub(crate) fn prefetch(&self, pixels: &[(usize, usize, usize)], (co0, lanes): (usize, usize)) {
        for &(img, y, x) in pixels {
            let at = self.output_layout.pixel(img, y, x) + co0;
            for l in (0..lanes).step_by(16) {
                prefetch_write(self.output.0.wrapping_add(at + l));
            }
            if let Some((data, layout, _)) = self.residual {
                let at = layout.pixel(img, y, x) + co0;
                for l in (0..lanes).step_by(16) {
                    prefetch_read(data.as_ptr().wrapping_add(at + l));
                }
            }
        }
    }
}

/// A raw view of an output buffer, for tasks that write disjoint elements.
#[derive(Clone, Copy)]
pub struct OutBuf(pub *mut f32, pub usize);

// SAFETY: tasks holding an `OutBuf` write disjoint elements (see each use).
unsafe impl Send for OutBuf {}
unsafe impl Sync for OutBuf {}

impl OutBuf {
    /// The `len` elements from `start`.
    ///
    /// # Safety
    /// No other thread may access them while the slice lives.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start + len <= self.1, "executor write out of bounds");
        // SAFETY: in bounds (checked), exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_term_and_activation_as_written_and_levels_agree() {
        let acc = [1.0f32, -2.0, 0.5, 3.0];
        let bias = [0.5f32, 0.25, -1.0, 0.0];
        let gate = [2.0f32, 0.5, 1.0, 0.0];
        let res = [1.0f32, 1.0, -4.0, 2.0];
        let (s, t) = ([2.0f32, 1.0, 0.5, 1.0], [0.0f32, 1.0, 1.0, -1.0]);
        let run = |isa, gate_mode, residual_mode, act| {
            let mut out = [0.0f32; 4];
            let mut outs: [&mut [f32]; 1] = [&mut out];
            finish_rows(
                isa,
                &acc,
                4,
                &mut outs,
                &bias,
                &[&gate[..]],
                gate_mode,
                &[&res[..]],
                (&s, &t),
                residual_mode,
                act,
            );
            out
        };
        for isa in Isa::available() {
            // Case B: (acc + bias) * gate, ReLU.
            assert_eq!(run(isa, 1, 0, 1), [3.0, 0.0, 0.0, 0.0]);
            // Case A: acc + bias + (res * s + t) * gate, no activation.
            assert_eq!(run(isa, 2, 2, 0), [5.5, -0.75, -1.5, 3.0]);
            // ResNet: acc + bias + res, SiLU.
            let silu = |v: f32| v / (1.0 + (-v).exp());
            for (o, v) in run(isa, 0, 1, 2).iter().zip([2.5f32, -0.75, -4.5, 5.0]) {
                assert!((o - silu(v)).abs() < 1e-6, "{o} vs {v}");
            }
        }
    }
}
