//! Affine warps as PIL's `Image.transform(size, AFFINE, (a, b, c, d, e, f))`: output pixel
//! centre `(x+0.5, y+0.5)` samples input point `(a x' + b y' + c, d x' + e y' + f)`; points outside
//! the input get `fill`.

use crate::image::Image;
use crate::transforms::geometry::Interpolation;
use crate::transforms::resample::cubic_weight as cubic;

/// `[a, b, c, d, e, f]`: input = (a x + b y + c, d x + e y + f) for output pixel centre (x, y).
pub type Affine = [f64; 6];

/// PIL's `rotate(degrees)` matrix about the image centre (positive = counter-clockwise).
pub fn rotation(height: usize, width: usize, degrees: f64) -> Affine {
    let angle = -degrees.to_radians();
    let (cx, cy) = (width as f64 / 2.0, height as f64 / 2.0);
    let (a, b, d, e) = (angle.cos(), angle.sin(), -angle.sin(), angle.cos());
    let c = a * -cx + b * -cy + cx;
    let f = d * -cx + e * -cy + cy;
    [a, b, c, d, e, f]
}

/// Warps `src` into `out` (same size) with `matrix`, filling outside points with `fill`.
/// `interpolation` must be resolved (not `Random`); `Random` is treated as bicubic.
pub fn warp_affine(
    src: &Image,
    out: &mut Image,
    matrix: &Affine,
    interpolation: Interpolation,
    fill: [u8; 3],
) {
    let (h, w) = (src.height, src.width);
    out.resize_to(h, w);
    let [a, b, c, d, e, f] = *matrix;
    let at = |y: isize, x: isize, ch: usize| -> f64 {
        let y = y.clamp(0, h as isize - 1) as usize;
        let x = x.clamp(0, w as isize - 1) as usize;
        f64::from(src.data[(y * w + x) * 3 + ch])
    };
    for y in 0..h {
        for x in 0..w {
            let (xo, yo) = (x as f64 + 0.5, y as f64 + 0.5);
            let xin = a * xo + b * yo + c;
            let yin = d * xo + e * yo + f;
            let pixel = if xin < 0.0 || yin < 0.0 || xin >= w as f64 || yin >= h as f64 {
                fill
            } else {
                let mut rgb = [0u8; 3];
                match interpolation {
                    Interpolation::Nearest => {
                        rgb = src.pixel(yin as usize, xin as usize);
                    }
                    Interpolation::Bilinear => {
                        let (xs, ys) = (xin - 0.5, yin - 0.5);
                        let (x0, y0) = (xs.floor(), ys.floor());
                        let (fx, fy) = (xs - x0, ys - y0);
                        let (x0, y0) = (x0 as isize, y0 as isize);
                        for (ch, v) in rgb.iter_mut().enumerate() {
                            let top = at(y0, x0, ch) * (1.0 - fx) + at(y0, x0 + 1, ch) * fx;
                            let bottom =
                                at(y0 + 1, x0, ch) * (1.0 - fx) + at(y0 + 1, x0 + 1, ch) * fx;
                            *v = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
                        }
                    }
                    Interpolation::Bicubic | Interpolation::Random => {
                        let (xs, ys) = (xin - 0.5, yin - 0.5);
                        let (x0, y0) = (xs.floor(), ys.floor());
                        let (fx, fy) = (xs - x0, ys - y0);
                        let (x0, y0) = (x0 as isize, y0 as isize);
                        let wx = [cubic(fx + 1.0), cubic(fx), cubic(1.0 - fx), cubic(2.0 - fx)];
                        let wy = [cubic(fy + 1.0), cubic(fy), cubic(1.0 - fy), cubic(2.0 - fy)];
                        for (ch, v) in rgb.iter_mut().enumerate() {
                            let mut sum = 0.0;
                            for (j, wyj) in wy.iter().enumerate() {
                                for (i, wxi) in wx.iter().enumerate() {
                                    sum += wyj
                                        * wxi
                                        * at(y0 + j as isize - 1, x0 + i as isize - 1, ch);
                                }
                            }
                            *v = sum.round().clamp(0.0, 255.0) as u8;
                        }
                    }
                }
                rgb
            };
            out.set_pixel(y, x, pixel);
        }
    }
}
