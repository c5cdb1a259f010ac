//! The plain reference convolution: the definition as nested loops, generic over the float type
//! (f64 for the gradient checks).

use num_traits::Float;

use super::{Conv2dGeometry, Conv2dParams};

/// `out[n][o][y][x] = bias[o] + sum_{c, i, j} x[n][g*Cin/g + c][y*s + i - p][x*s + j - p] *
/// w[o][c][i][j]`, with `g = o / (Cout/groups)` and out-of-range input pixels read as zero.
///
/// Panics on inconsistent shapes (it is a test oracle; [`super::conv2d`] reports errors).
pub fn conv2d_reference<T: Float>(
    x: &[T],
    x_dims: [usize; 4],
    w: &[T],
    w_dims: [usize; 4],
    bias: Option<&[T]>,
    params: Conv2dParams,
) -> Vec<T> {
    let geo = Conv2dGeometry::new(x_dims, w_dims, params).expect("conv2d_reference: shapes");
    let [batch, cin, h, wd] = x_dims;
    let [cout, cin_g, kh, kw] = w_dims;
    let cout_g = cout / params.groups;
    let (s, p) = (params.stride as isize, params.padding as isize);
    let mut out = Vec::with_capacity(batch * cout * geo.out_h * geo.out_w);
    for n in 0..batch {
        for o in 0..cout {
            let g = o / cout_g;
            for oy in 0..geo.out_h {
                for ox in 0..geo.out_w {
                    let mut acc = bias.map_or(T::zero(), |b| b[o]);
                    for c in 0..cin_g {
                        let ci = g * cin_g + c;
                        for i in 0..kh {
                            let iy = oy as isize * s + i as isize - p;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for j in 0..kw {
                                let ix = ox as isize * s + j as isize - p;
                                if ix < 0 || ix >= wd as isize {
                                    continue;
                                }
                                let xv = x[((n * cin + ci) * h + iy as usize) * wd + ix as usize];
                                acc = acc + xv * w[((o * cin_g + c) * kh + i) * kw + j];
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    out
}
