//! The stride-1 input gradient as a forward convolution: `dX` is `dY` convolved with the
//! flipped, transposed weights at padding `K - 1 - p` (no col2im).

use rayon::prelude::*;

use super::{Conv2dGeometry, Conv2dParams};
use crate::tensor::Buffer;

/// The geometry of the transposed convolution `dY -> dX` of `geo` (square kernel, stride 1,
/// `padding < K`).
pub(crate) fn transposed_geometry(geo: &Conv2dGeometry) -> Conv2dGeometry {
    let (k, p) = (geo.kernel_h, geo.params.padding);
    Conv2dGeometry {
        batch: geo.batch,
        in_channels: geo.out_channels,
        height: geo.out_h,
        width: geo.out_w,
        out_channels: geo.in_channels,
        kernel_h: k,
        kernel_w: k,
        params: Conv2dParams::new(1, k - 1 - p, geo.params.groups),
        out_h: geo.height,
        out_w: geo.width,
    }
}

/// `flipped[g*cin_g + ci][co][i][j] = w[g*cout_g + co][ci][k-1-i][k-1-j]`: the weights of
/// [`transposed_geometry`].
pub(crate) fn flipped_weights(geo: &Conv2dGeometry, w: &[f32]) -> Buffer {
    let k = geo.kernel_h;
    let (cin_g, cout_g, kk) = (geo.in_per_group(), geo.out_per_group(), k * k);
    let mut flipped = Buffer::for_overwrite(w.len());
    flipped
        .par_chunks_mut(cout_g * kk)
        .enumerate()
        .for_each(|(c_in, dst)| {
            let (g, ci) = (c_in / cin_g, c_in % cin_g);
            for (co, dst) in dst.chunks_mut(kk).enumerate() {
                let src = &w[((g * cout_g + co) * cin_g + ci) * kk..][..kk];
                dst.iter_mut()
                    .zip(src.iter().rev())
                    .for_each(|(d, &s)| *d = s);
            }
        });
    flipped
}
