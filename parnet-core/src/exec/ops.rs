//! The executor's small nodes, on the channels-last layout: the input reorder, the SE gate,
//! the fusion's interleave, the channel shuffle, max pooling and the classifier. Each output
//! element is computed by one task in a fixed order, so results do not depend on the thread
//! count.

use rayon::prelude::*;

use super::epilogue::OutBuf;
use super::graph::Affine;
use super::layout::Layout;
use crate::kernels::activation::exp_f32;
use crate::kernels::simd::{Isa, isa_kernel};

/// Copies images `[N, C, H, W]` into the interior of `layout` (the border stays as it is: zero).
pub fn reorder_input(x: &[f32], layout: &Layout, out: &mut [f32]) {
    let (c, h, w) = (layout.channels, layout.height, layout.width);
    let image = layout.image_len();
    out.par_chunks_mut(image)
        .zip(x.par_chunks(c * h * w))
        .for_each(|(dst, src)| {
            for y in 0..h {
                for xx in 0..w {
                    let at = layout.pixel(0, y, xx);
                    for ch in 0..c {
                        dst[at + ch] = src[(ch * h + y) * w + xx];
                    }
                }
            }
        });
}

/// Per image and channel, the mean of `x` over its interior pixels (`[N][C]`): f32 sums over
/// runs of [`MEAN_RUN`] pixels, 16 channels at a time, added into f64 in run order, so the result
/// does not depend on the thread count.
fn channel_means(isa: Isa, x: &[f32], layout: &Layout) -> Vec<Vec<f32>> {
    let (c, hw) = (layout.channels, layout.height * layout.width);
    let chunks = c.div_ceil(16);
    let jobs: Vec<(usize, usize)> = (0..layout.batch)
        .flat_map(|n| (0..chunks).map(move |k| (n, k)))
        .collect();
    let sums: Vec<[f64; 16]> = jobs
        .par_iter()
        .map(|&(n, k)| {
            let c0 = k * 16;
            let lanes = 16.min(c - c0);
            let mut total = [0.0f64; 16];
            let mut p = 0;
            while p < hw {
                let run = MEAN_RUN.min(hw - p);
                let partial = pixel_sums(isa, x, layout, n, (p, run), c0);
                for (t, &v) in total.iter_mut().zip(&partial[..lanes]) {
                    *t += v as f64;
                }
                p += run;
            }
            total
        })
        .collect();
    (0..layout.batch)
        .map(|n| {
            (0..c)
                .map(|ch| (sums[n * chunks + ch / 16][ch % 16] / hw as f64) as f32)
                .collect()
        })
        .collect()
}

/// Pixels summed in f32 before the partial sum goes into f64.
const MEAN_RUN: usize = 64;

isa_kernel! {
/// The sums of channels `c0..c0 + 16` (as far as the stride holds them) over interior pixels
/// `p0..p0 + len` of image `n`.
fn pixel_sums(x: &[f32], layout: &Layout, n: usize, run: (usize, usize), c0: usize) -> [f32; 16] {
    let (p0, len) = run;
    let mut acc = [0.0f32; 16];
    for p in p0..p0 + len {
        let (y, xx) = (p / layout.width, p % layout.width);
        let px = &x[layout.pixel(n, y, xx) + c0..][..16];
        for l in 0..16 {
            acc[l] += px[l];
        }
    }
    acc
}
}

isa_kernel! {
/// `sum_i a[i] * b[i]` in 16 lane sums added at the end (the same order at every level).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let chunks = a.len() / 16;
    for k in 0..chunks {
        let (a, b) = (&a[k * 16..][..16], &b[k * 16..][..16]);
        for l in 0..16 {
            acc[l] += a[l] * b[l];
        }
    }
    let mut tail = 0.0f32;
    for i in chunks * 16..a.len() {
        tail += a[i] * b[i];
    }
    acc.iter().sum::<f32>() + tail
}
}

/// The SE gate: `out[n * out_stride + o] = factor * sigmoid(W[o] . gap[n][group(o)])` with
/// `gap = affine(mean(x))`.
#[allow(clippy::too_many_arguments)]
pub fn se_gate(
    isa: Isa,
    x: &[f32],
    layout: &Layout,
    pre_affine: Option<&Affine>,
    weight: &[f32],
    (cout, groups): (usize, usize),
    factor: f32,
    out: OutBuf,
    out_stride: usize,
) {
    let means = channel_means(isa, x, layout);
    let (cin_g, cout_g) = (layout.channels / groups, cout / groups);
    for (n, mean) in means.iter().enumerate() {
        let gap: Vec<f32> = match pre_affine {
            None => mean.clone(),
            Some(a) => mean
                .iter()
                .enumerate()
                .map(|(c, &m)| m * a.scale[c] + a.shift[c])
                .collect(),
        };
        // SAFETY: this step owns its output.
        let out = unsafe { out.slice(n * out_stride, cout) };
        out.par_chunks_mut(64).enumerate().for_each(|(k, o)| {
            for (i, o) in o.iter_mut().enumerate() {
                let oc = k * 64 + i;
                let g = oc / cout_g;
                let z = dot(
                    isa,
                    &weight[oc * cin_g..][..cin_g],
                    &gap[g * cin_g..][..cin_g],
                );
                let s = 1.0 / (1.0 + exp_f32(-z));
                *o = if factor == 1.0 { s } else { s * factor };
            }
        });
    }
}

/// `out[2c] = affine_a(a)[c]`, `out[2c + 1] = affine_b(b)[c]` at every interior pixel.
#[allow(clippy::too_many_arguments)]
pub fn interleave(
    (a, la, aa): (&[f32], &Layout, &Affine),
    (b, lb, ab): (&[f32], &Layout, &Affine),
    lo: &Layout,
    out: OutBuf,
) {
    let c = la.channels;
    (0..lo.batch * lo.height).into_par_iter().for_each(|row| {
        let (n, y) = (row / lo.height, row % lo.height);
        for x in 0..lo.width {
            let (pa, pb) = (&a[la.pixel(n, y, x)..][..c], &b[lb.pixel(n, y, x)..][..c]);
            // SAFETY: each task writes its own output rows.
            let po = unsafe { out.slice(lo.pixel(n, y, x), 2 * c) };
            for ch in 0..c {
                po[2 * ch] = pa[ch] * aa.scale[ch] + aa.shift[ch];
                po[2 * ch + 1] = pb[ch] * ab.scale[ch] + ab.shift[ch];
            }
        }
    });
}

/// `out[j * groups + i] = in[i * (C / groups) + j]` at every interior pixel.
pub fn shuffle(x: &[f32], lx: &Layout, groups: usize, lo: &Layout, out: OutBuf) {
    let (c, m) = (lx.channels, lx.channels / groups);
    (0..lo.batch * lo.height).into_par_iter().for_each(|row| {
        let (n, y) = (row / lo.height, row % lo.height);
        for xx in 0..lo.width {
            let src = &x[lx.pixel(n, y, xx)..][..c];
            // SAFETY: each task writes its own output rows.
            let dst = unsafe { out.slice(lo.pixel(n, y, xx), c) };
            for i in 0..groups {
                for j in 0..m {
                    dst[j * groups + i] = src[i * m + j];
                }
            }
        }
    });
}

isa_kernel! {
/// `dst[i] = max(dst[i], src[i])`, NaN winning, as the training op compares.
fn max_into(dst: &mut [f32], src: &[f32]) {
    for (d, &v) in dst.iter_mut().zip(src) {
        if v > *d || v.is_nan() {
            *d = v;
        }
    }
}
}

/// Max pooling over the valid taps (implicit `-inf` padding). NaN propagates, as in the training
/// op.
pub fn max_pool(
    isa: Isa,
    data: &[f32],
    lx: &Layout,
    (k, s, p): (usize, usize, usize),
    lo: &Layout,
    out: OutBuf,
) {
    let c = lx.channels;
    (0..lo.batch * lo.height).into_par_iter().for_each(|row| {
        let (n, oy) = (row / lo.height, row % lo.height);
        let ys = (oy * s).saturating_sub(p)..(oy * s + k - p).min(lx.height);
        for ox in 0..lo.width {
            let xs = (ox * s).saturating_sub(p)..(ox * s + k - p).min(lx.width);
            // SAFETY: each task writes its own output rows.
            let dst = unsafe { out.slice(lo.pixel(n, oy, ox), c) };
            dst.fill(f32::NEG_INFINITY);
            for y in ys.clone() {
                for xx in xs.clone() {
                    max_into(isa, dst, &data[lx.pixel(n, y, xx)..][..c]);
                }
            }
        }
    });
}

/// The classifier: `logits[n][k] = bias[k] + W[k] . mean(x[n])` into `out` (`[N, classes]`,
/// dense).
pub fn head(isa: Isa, x: &[f32], lx: &Layout, weight: &[f32], bias: &[f32], out: &mut [f32]) {
    let means = channel_means(isa, x, lx);
    let (c, classes) = (lx.channels, bias.len());
    for (n, f) in means.iter().enumerate() {
        out[n * classes..][..classes]
            .par_chunks_mut(64)
            .enumerate()
            .for_each(|(k, o)| {
                for (i, o) in o.iter_mut().enumerate() {
                    let row = k * 64 + i;
                    *o = bias[row] + dot(isa, &weight[row * c..][..c], f);
                }
            });
    }
}
