//! Winograd convolution for stride-1, padding-1 3x3 convolutions (Lavin & Gray 2016), on the
//! executor's channels-last layout: `F(2x2, 3x3)` (4x4 input tiles, 2.25x fewer multiplies than
//! direct) and `F(4x4, 3x3)` (6x6 tiles, 4x fewer).
//!
//! A run has three phases, each parallel over its own work:
//! 1. input transform: every `a x a` input tile (`a` = 4 or 6), vectors of 16 channels at a time,
//!    to `V[position][tile][channel]` (`B^T d B`);
//! 2. one matrix product per tile position, `M[p] = V[p] U[p]`, with the direct convolution's
//!    micro-kernel (rows = tiles, `k` = input channels, the right operand the weights transformed
//!    once at plan time, `U = G g G^T`, packed in 16-lane blocks);
//! 3. output transform (`A^T M A`) with the convolution's epilogue, into the output's layout.
//!
//! Input pixels past the image's border read as zero, so the last row and column of tiles may
//! overhang; their extra outputs are not stored. The transforms are exact in real arithmetic;
//! in f32 they add rounding that grows with the tile (checked against the direct path on whole
//! networks in `exec/tests.rs`).

// The transforms index tiles by position on purpose: the formulas read as the papers write them.
#![allow(clippy::needless_range_loop)]

use std::sync::Mutex;

use rayon::prelude::*;

use super::epilogue::{ConvIo, MAX_ROWS, OutBuf};
use super::layout::Layout;
use crate::kernels::conv::direct::kernel::{
    MAX_BLOCKS, MR, NR, Offsets, Right, k_chunks, tile_accumulate, tile_blocks,
};
use crate::kernels::simd::{Isa, isa_kernel};

/// Row tiles whose partial sums one pass of the product keeps while it walks `k` in chunks.
const TILES_PER_PASS: usize = 8;

/// The Winograd tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinogradTile {
    /// `F(2x2, 3x3)`: 2x2 outputs from 4x4 inputs.
    F2,
    /// `F(4x4, 3x3)`: 4x4 outputs from 6x6 inputs.
    F4,
}

impl WinogradTile {
    /// Outputs per tile side.
    pub fn m(self) -> usize {
        match self {
            WinogradTile::F2 => 2,
            WinogradTile::F4 => 4,
        }
    }

    /// Inputs per tile side, `m + 2`.
    pub fn alpha(self) -> usize {
        self.m() + 2
    }

    /// `G` (`alpha x 3`), the weight transform.
    fn g(self) -> &'static [[f64; 3]] {
        match self {
            WinogradTile::F2 => &[
                [1.0, 0.0, 0.0],
                [0.5, 0.5, 0.5],
                [0.5, -0.5, 0.5],
                [0.0, 0.0, 1.0],
            ],
            WinogradTile::F4 => &[
                [0.25, 0.0, 0.0],
                [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
                [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
                [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
                [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
                [0.0, 0.0, 1.0],
            ],
        }
    }
}

/// Lanes of one transform vector.
const L: usize = 16;
/// Largest tile side.
const MAX_ALPHA: usize = 6;

type Vecs = [[f32; L]; MAX_ALPHA];

/// `B^T` applied to `alpha` vectors (one column or row of a tile), exactly as written (the
/// terms in this order at every ISA level).
#[inline(always)]
fn input_1d(tile: WinogradTile, d: &Vecs, out: &mut Vecs) {
    for l in 0..L {
        match tile {
            WinogradTile::F2 => {
                out[0][l] = d[0][l] - d[2][l];
                out[1][l] = d[1][l] + d[2][l];
                out[2][l] = d[2][l] - d[1][l];
                out[3][l] = d[1][l] - d[3][l];
            }
            WinogradTile::F4 => {
                let (d0, d1, d2, d3, d4, d5) =
                    (d[0][l], d[1][l], d[2][l], d[3][l], d[4][l], d[5][l]);
                out[0][l] = 4.0 * d0 - 5.0 * d2 + d4;
                out[1][l] = -4.0 * (d1 + d2) + (d3 + d4);
                out[2][l] = 4.0 * (d1 - d2) + (d4 - d3);
                out[3][l] = 2.0 * (d3 - d1) + (d4 - d2);
                out[4][l] = 2.0 * (d1 - d3) + (d4 - d2);
                out[5][l] = 4.0 * d1 - 5.0 * d3 + d5;
            }
        }
    }
}

/// `A^T` applied to `alpha` vectors, giving `m`.
#[inline(always)]
fn output_1d(tile: WinogradTile, m: &Vecs, out: &mut Vecs) {
    for l in 0..L {
        match tile {
            WinogradTile::F2 => {
                out[0][l] = m[0][l] + m[1][l] + m[2][l];
                out[1][l] = m[1][l] - m[2][l] - m[3][l];
            }
            WinogradTile::F4 => {
                let (m0, m1, m2, m3, m4, m5) =
                    (m[0][l], m[1][l], m[2][l], m[3][l], m[4][l], m[5][l]);
                let (a, b) = (m1 + m2, m1 - m2);
                let (c, d) = (m3 + m4, m3 - m4);
                out[0][l] = m0 + a + c;
                out[1][l] = b + 2.0 * d;
                out[2][l] = a + 4.0 * c;
                out[3][l] = b + 8.0 * d + m5;
            }
        }
    }
}

isa_kernel! {
/// `B^T d B` of one tile: `patch[i][j]` (16 channels) to `out[i * alpha + j]`.
fn input_tile(tile: WinogradTile, patch: &[Vecs; MAX_ALPHA], out: &mut [[f32; L]; MAX_ALPHA * MAX_ALPHA]) {
    let a = tile.alpha();
    let mut rows = [[[0.0f32; L]; MAX_ALPHA]; MAX_ALPHA];
    let mut col = [[0.0f32; L]; MAX_ALPHA];
    let mut t = [[0.0f32; L]; MAX_ALPHA];
    // Columns: rows[i][j] = (B^T d)[i][j].
    for j in 0..a {
        for i in 0..a {
            col[i] = patch[i][j];
        }
        input_1d(tile, &col, &mut t);
        for i in 0..a {
            rows[i][j] = t[i];
        }
    }
    // Rows: out[i][j] = (rows B)[i][j].
    for i in 0..a {
        input_1d(tile, &rows[i], &mut t);
        for j in 0..a {
            out[i * a + j] = t[j];
        }
    }
}
}

isa_kernel! {
/// `A^T M A` of one tile: `m[i * alpha + j]` (16 channels) to `out[i][j]` (`m x m`).
fn output_tile(tile: WinogradTile, m: &[[f32; L]; MAX_ALPHA * MAX_ALPHA], out: &mut [Vecs; MAX_ALPHA]) {
    let (a, o) = (tile.alpha(), tile.m());
    let mut rows = [[[0.0f32; L]; MAX_ALPHA]; MAX_ALPHA];
    let mut col = [[0.0f32; L]; MAX_ALPHA];
    let mut t = [[0.0f32; L]; MAX_ALPHA];
    for j in 0..a {
        for i in 0..a {
            col[i] = m[i * a + j];
        }
        output_1d(tile, &col, &mut t);
        for i in 0..o {
            rows[i][j] = t[i];
        }
    }
    for i in 0..o {
        output_1d(tile, &rows[i], &mut t);
        out[i][..o].copy_from_slice(&t[..o]);
    }
}
}

/// `dst[..lanes] = src[..lanes]`, as one fixed-size move when all 16 lanes are copied (a
/// runtime-length copy is a call to `memcpy`).
#[inline(always)]
fn copy_lanes(dst: &mut [f32; L], src: &[f32], lanes: usize) {
    if lanes == L {
        *dst = src[..L].try_into().unwrap();
    } else {
        dst[..lanes].copy_from_slice(&src[..lanes]);
    }
}

/// `dst[..lanes] = src[..lanes]` (`dst.len() == L`): the whole 16 lanes are written (the extra
/// ones land in the channel padding of the pixel), as one fixed-size move.
#[inline(always)]
fn store_lanes(dst: &mut [f32], src: &[f32; L]) {
    let dst: &mut [f32; L] = dst.try_into().unwrap();
    *dst = *src;
}

/// A stride-1 3x3 convolution planned for Winograd.
pub struct Winograd {
    pub tile: WinogradTile,
    pub input: Layout,
    pub output: Layout,
    pub groups: usize,
    /// `[groups, alpha^2, blocks, Cin/g, NR]`.
    transformed: Vec<f32>,
    pub bias: Vec<f32>,
    /// Per group: `k` = input channel offsets `g * Cin/g + c`.
    ks: Vec<Offsets>,
    /// `V` and `M` of a run, kept between runs.
    scratch: Mutex<(Vec<f32>, Vec<f32>)>,
}

impl Winograd {
    /// Plans `weight` (`[Cout, Cin/g, 3, 3]`) between the two layouts.
    pub fn new(
        tile: WinogradTile,
        input: Layout,
        output: Layout,
        weight: &[f32],
        bias: Vec<f32>,
        groups: usize,
    ) -> Winograd {
        assert!(input.pad >= 1, "the input layout lacks the conv's padding");
        let (cin_g, cout_g) = (input.channels / groups, output.channels / groups);
        let blocks = cout_g.div_ceil(NR);
        let a = tile.alpha();
        let g = tile.g();
        let mut transformed = vec![0.0f32; groups * a * a * blocks * cin_g * NR];
        for grp in 0..groups {
            for co_local in 0..cout_g {
                let co = grp * cout_g + co_local;
                let (block, l) = (co_local / NR, co_local % NR);
                for c in 0..cin_g {
                    let w = &weight[(co * cin_g + c) * 9..][..9];
                    // U = G w G^T in f64.
                    let mut gw = [[0.0f64; 3]; MAX_ALPHA];
                    for i in 0..a {
                        for j in 0..3 {
                            gw[i][j] = (0..3).map(|k| g[i][k] * w[k * 3 + j] as f64).sum();
                        }
                    }
                    for i in 0..a {
                        for j in 0..a {
                            let u: f64 = (0..3).map(|k| gw[i][k] * g[j][k]).sum();
                            let pos = i * a + j;
                            let at = (((grp * a * a + pos) * blocks + block) * cin_g + c) * NR + l;
                            transformed[at] = u as f32;
                        }
                    }
                }
            }
        }
        let ks = (0..groups)
            .map(|g| Offsets::new((0..cin_g).map(|c| g * cin_g + c).collect()))
            .collect();
        let mut bias = bias;
        bias.resize(output.stride, 0.0);
        Winograd {
            tile,
            input,
            output,
            groups,
            transformed,
            bias,
            ks,
            scratch: Mutex::new((Vec::new(), Vec::new())),
        }
    }

    /// Multiply-adds of one run, counted as the direct convolution would (9 per output and
    /// input channel of a group).
    pub fn macs(&self) -> usize {
        let lo = &self.output;
        lo.batch * lo.height * lo.width * lo.channels * 9 * (self.input.channels / self.groups)
    }

    fn tiles_per_image(&self) -> (usize, usize) {
        let m = self.tile.m();
        (
            self.output.height.div_ceil(m),
            self.output.width.div_ceil(m),
        )
    }

    /// Runs the convolution: `io.output` gets the epilogue of every sum.
    pub fn run(&self, isa: Isa, io: &ConvIo<'_>) {
        let a = self.tile.alpha();
        let positions = a * a;
        let (th, tw) = self.tiles_per_image();
        let tiles = self.output.batch * th * tw;
        let (cin_s, cout_s) = (self.input.stride, self.output.stride);
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let (v, m) = &mut *scratch;
        v.resize(positions * tiles * cin_s, 0.0);
        m.resize(positions * tiles * cout_s, 0.0);
        self.transform_input(isa, io.input, v, (th, tw));
        self.multiply(isa, v, m, tiles);
        self.transform_output(isa, m, io, (th, tw));
    }

    /// Phase 1: `v[p][t][c]` for every tile `t`.
    fn transform_input(&self, isa: Isa, x: &[f32], v: &mut [f32], (th, tw): (usize, usize)) {
        let (tile, a, mo) = (self.tile, self.tile.alpha(), self.tile.m());
        let lin = &self.input;
        let cin = lin.channels;
        let tiles = lin.batch * th * tw;
        let (ph, pw) = (lin.padded_height() as isize, lin.padded_width() as isize);
        let v_len = v.len();
        let out = OutBuf(v.as_mut_ptr(), v_len);
        let chunks = cin.div_ceil(L);
        (0..tiles * chunks).into_par_iter().for_each(|job| {
            let (t, chunk) = (job / chunks, job % chunks);
            let (n, ty, tx) = (t / (th * tw), (t / tw) % th, t % tw);
            let c0 = chunk * L;
            let lanes = L.min(cin - c0);
            let mut patch = [[[0.0f32; L]; MAX_ALPHA]; MAX_ALPHA];
            // Top-left input pixel of the tile, in padded coordinates (padding 1).
            let y0 = (ty * mo + lin.pad) as isize - 1;
            let x0 = (tx * mo + lin.pad) as isize - 1;
            for (i, row) in patch.iter_mut().enumerate().take(a) {
                let py = y0 + i as isize;
                for (j, px_vec) in row.iter_mut().enumerate().take(a) {
                    let px = x0 + j as isize;
                    if py >= 0 && py < ph && px >= 0 && px < pw {
                        let at = lin.padded_pixel(n, py as usize, px as usize) + c0;
                        copy_lanes(px_vec, &x[at..], lanes);
                    }
                }
            }
            let mut tr = [[0.0f32; L]; MAX_ALPHA * MAX_ALPHA];
            input_tile(isa, tile, &patch, &mut tr);
            for (p, vals) in tr.iter().enumerate().take(a * a) {
                let at = (p * tiles + t) * self.input.stride + c0;
                // SAFETY: each job writes its own (tile, channel chunk) of every position; the
                // chunk's 16 lanes lie in the tile's row of `v` (its stride is a multiple of 16).
                let dst = unsafe { out.slice(at, L) };
                store_lanes(dst, vals);
            }
        });
    }

    /// Phase 2: `m[p] = v[p] U[p]` per group, with the direct micro-kernel.
    fn multiply(&self, isa: Isa, v: &[f32], m: &mut [f32], tiles: usize) {
        let a = self.tile.alpha();
        let positions = a * a;
        let (cin_g, cout_g) = (
            self.input.channels / self.groups,
            self.output.channels / self.groups,
        );
        let blocks = cout_g.div_ceil(NR);
        let row_tiles = tiles.div_ceil(MR);
        let (cin_s, cout_s) = (self.input.stride, self.output.stride);
        let out = OutBuf(m.as_mut_ptr(), m.len());
        // Jobs: (group, position, block run, run of row tiles).
        let block_runs = blocks.div_ceil(MAX_BLOCKS);
        let want = 8 * rayon::current_num_threads();
        let per_pos = self.groups * block_runs;
        let row_runs = row_tiles.min((want.div_ceil(positions * per_pos)).max(1));
        let rows_per_run = row_tiles.div_ceil(row_runs);
        let jobs = self.groups * positions * block_runs * row_runs;
        // Row-run first (a thread writes whole rows of `m`) unless one position's weights
        // outweigh its rows of `v` and `m`, as in the direct convolution.
        let weights = cin_g * blocks * NR;
        let row_major = weights <= tiles * (cin_s + cout_s);
        (0..jobs).into_par_iter().for_each_init(
            || Box::new([[[0.0f32; MAX_BLOCKS * NR]; MR]; TILES_PER_PASS]),
            |partials, job| {
                let (rr, br) = if row_major {
                    ((job / block_runs) % row_runs, job % block_runs)
                } else {
                    (job % row_runs, (job / row_runs) % block_runs)
                };
                let p = (job / (row_runs * block_runs)) % positions;
                let g = job / (row_runs * block_runs * positions);
                let run_end = ((br + 1) * MAX_BLOCKS).min(blocks);
                let mut b0 = br * MAX_BLOCKS;
                while b0 < run_end {
                    let nb_here = tile_blocks(isa, run_end - b0);
                    let u = Right {
                        data: &self.transformed
                            [(((g * positions + p) * blocks + b0) * cin_g) * NR..],
                        k_stride: NR,
                        block_stride: cin_g * NR,
                        blocks: nb_here,
                    };
                    let vp = &v[p * tiles * cin_s..][..tiles * cin_s];
                    let lanes = (nb_here * NR).min(cout_g - b0 * NR);
                    let co0 = g * cout_g + b0 * NR;
                    let rt_end = ((rr + 1) * rows_per_run).min(row_tiles);
                    let mut pass = rr * rows_per_run;
                    while pass < rt_end {
                        let pass_end = (pass + TILES_PER_PASS).min(rt_end);
                        for (chunk, right) in k_chunks(cin_g, u) {
                            for (rt, acc) in (pass..pass_end).zip(partials.iter_mut()) {
                                let first = rt * MR;
                                let rows: [usize; MR] =
                                    std::array::from_fn(|r| (first + r).min(tiles - 1) * cin_s);
                                let acc = (acc, chunk.start == 0);
                                tile_accumulate(
                                    isa,
                                    vp,
                                    &rows,
                                    &self.ks[g],
                                    chunk.clone(),
                                    right,
                                    acc,
                                );
                            }
                        }
                        for (rt, acc) in (pass..pass_end).zip(partials.iter()) {
                            let first = rt * MR;
                            for (r, sums) in acc.iter().enumerate().take(tiles - first) {
                                let at = (p * tiles + first + r) * cout_s + co0;
                                // Whole 16-lane blocks where the lanes past the group's channels
                                // are the padding of the row (the last group), else the exact run.
                                let full = lanes.div_ceil(NR) * NR;
                                if (g + 1 == self.groups || lanes == full) && co0 + full <= cout_s {
                                    // SAFETY: each job writes its own (position, tiles, channels);
                                    // the `full` lanes stay in the tile's row.
                                    let dst = unsafe { out.slice(at, full) };
                                    for (d, s) in
                                        dst.chunks_exact_mut(NR).zip(sums.chunks_exact(NR))
                                    {
                                        let d: &mut [f32; NR] = d.try_into().unwrap();
                                        *d = s.try_into().unwrap();
                                    }
                                } else {
                                    // SAFETY: as above.
                                    let dst = unsafe { out.slice(at, lanes) };
                                    dst.copy_from_slice(&sums[..lanes]);
                                }
                            }
                        }
                        pass = pass_end;
                    }
                    b0 += nb_here;
                }
            },
        );
    }

    /// Phase 3: `A^T M A` of every tile through the epilogue into the output.
    fn transform_output(&self, isa: Isa, m: &[f32], io: &ConvIo<'_>, (th, tw): (usize, usize)) {
        let (tile, a, mo) = (self.tile, self.tile.alpha(), self.tile.m());
        let lo = &self.output;
        let cout = lo.channels;
        let tiles = lo.batch * th * tw;
        let chunks = cout.div_ceil(L);
        (0..tiles * chunks).into_par_iter().for_each(|job| {
            let (t, chunk) = (job / chunks, job % chunks);
            let (n, ty, tx) = (t / (th * tw), (t / tw) % th, t % tw);
            let c0 = chunk * L;
            let lanes = L.min(cout - c0);
            let mut mt = [[0.0f32; L]; MAX_ALPHA * MAX_ALPHA];
            for (p, vals) in mt.iter_mut().enumerate().take(a * a) {
                let at = (p * tiles + t) * lo.stride + c0;
                copy_lanes(vals, &m[at..], lanes);
            }
            let mut y = [[[0.0f32; L]; MAX_ALPHA]; MAX_ALPHA];
            output_tile(isa, tile, &mt, &mut y);
            let mut sums = [[0.0f32; L]; MAX_ROWS];
            let mut coords = [(0usize, 0usize, 0usize); MAX_ROWS];
            let mut rows = 0;
            for (i, row) in y.iter().enumerate().take(mo) {
                let oy = ty * mo + i;
                for (j, vals) in row.iter().enumerate().take(mo) {
                    let ox = tx * mo + j;
                    if oy < lo.height && ox < lo.width {
                        sums[rows] = *vals;
                        coords[rows] = (n, oy, ox);
                        rows += 1;
                    }
                }
            }
            io.finish(
                isa,
                (sums.as_flattened(), L),
                &coords[..rows],
                (c0, lanes),
                true,
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::conv_direct::DirectConv;
    use crate::testing::{random_values, to_f32};
    use proptest::prelude::*;

    /// One layer through `Winograd` and through `DirectConv` (bias, no epilogue): the outputs'
    /// largest difference relative to the largest output.
    fn relative_error(
        tile: WinogradTile,
        (cin, cout, groups): (usize, usize, usize),
        (n, h, w): (usize, usize, usize),
        seed: u64,
    ) -> f32 {
        let lin = Layout::new(n, (cin, h, w), 1);
        let lout = Layout::new(n, (cout, h, w), 1);
        let weight = to_f32(&random_values(cout * (cin / groups) * 9, 1.0, seed));
        let bias = to_f32(&random_values(cout, 1.0, seed + 1));
        let mut x = vec![0.0f32; lin.len()];
        let values = to_f32(&random_values(n * h * w * cin, 1.0, seed + 2));
        for (p, at) in lin.interior_pixels().enumerate() {
            x[at..at + cin].copy_from_slice(&values[p * cin..][..cin]);
        }
        let mut bias_padded = bias.clone();
        bias_padded.resize(lout.stride, 0.0);
        let run = |conv: &dyn Fn(&ConvIo<'_>)| {
            let mut y = vec![0.0f32; lout.len()];
            let io = ConvIo {
                input: &x,
                output: OutBuf(y.as_mut_ptr(), y.len()),
                output_layout: lout,
                gate: None,
                gate_stride: 0,
                residual: None,
                bias: &bias_padded,
                activation: None,
            };
            conv(&io);
            y
        };
        let isa = Isa::current();
        let direct = DirectConv::new(lin, lout, &weight, bias.clone(), (3, 3), 1, 1, groups);
        let wino = Winograd::new(tile, lin, lout, &weight, bias, groups);
        let a = run(&|io| direct.run(isa, io));
        let b = run(&|io| wino.run(isa, io));
        let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let err = a
            .iter()
            .zip(&b)
            .fold(0.0f32, |m, (u, v)| m.max((u - v).abs()));
        err / scale
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Random shapes (partial tiles, partial lane blocks, 1 or 2 groups): F(2x2,3x3) within
        /// 1e-5 of the direct convolution, F(4x4,3x3) within 1e-4.
        #[test]
        fn winograd_matches_the_direct_convolution(
            cin_g in 1usize..40, cout_g in 1usize..40, groups in 1usize..=2,
            n in 1usize..=2, h in 1usize..=13, w in 1usize..=13, seed in any::<u64>(),
        ) {
            let shape = (cin_g * groups, cout_g * groups, groups);
            prop_assert!(relative_error(WinogradTile::F2, shape, (n, h, w), seed) < 1e-5);
            prop_assert!(relative_error(WinogradTile::F4, shape, (n, h, w), seed) < 1e-4);
        }
    }

    /// ParNet-S's stride-1 layers: the errors the whole-network test averages away.
    #[test]
    fn winograd_error_on_parnet_s_layers() {
        for (c, hw) in [(92, 56), (192, 28), (384, 14)] {
            let f2 = relative_error(WinogradTile::F2, (c, c, 1), (1, hw, hw), 1);
            let f4 = relative_error(WinogradTile::F4, (c, c, 1), (1, hw, hw), 1);
            eprintln!("{c}x{hw}: F2 {f2:e}, F4 {f4:e}");
            assert!(f2 < 1e-5 && f4 < 1e-4, "{c}x{hw}: F2 {f2:e}, F4 {f4:e}");
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// Phase times of one ParNet-S layer (run by hand: `cargo test --release ... -- --ignored
    /// --nocapture winograd_phase_times`).
    #[test]
    #[ignore]
    fn winograd_phase_times() {
        for (c, hw, tile) in [
            (92usize, 56usize, WinogradTile::F4),
            (192, 28, WinogradTile::F4),
            (384, 14, WinogradTile::F4),
            (92, 56, WinogradTile::F2),
            (192, 28, WinogradTile::F2),
            (384, 14, WinogradTile::F2),
        ] {
            let lin = Layout::new(1, (c, hw, hw), 1);
            let lout = Layout::new(1, (c, hw, hw), 1);
            let w = vec![0.01f32; c * c * 9];
            let wg = Winograd::new(tile, lin, lout, &w, vec![0.0; c], 1);
            let x = vec![0.5f32; lin.len()];
            let mut y = vec![0.0f32; lout.len()];
            let io = ConvIo {
                input: &x,
                output: OutBuf(y.as_mut_ptr(), y.len()),
                output_layout: lout,
                gate: None,
                gate_stride: 0,
                residual: None,
                bias: &wg.bias,
                activation: None,
            };
            let isa = Isa::current();
            let (th, tw) = wg.tiles_per_image();
            let tiles = th * tw;
            let pos = tile.alpha() * tile.alpha();
            let mut v = vec![0.0f32; pos * tiles * lin.stride];
            let mut m = vec![0.0f32; pos * tiles * lout.stride];
            let time = |f: &mut dyn FnMut()| {
                f();
                let t = std::time::Instant::now();
                for _ in 0..20 {
                    f();
                }
                t.elapsed().as_secs_f64() * 1e3 / 20.0
            };
            let a = time(&mut || wg.transform_input(isa, &x, &mut v, (th, tw)));
            let b = time(&mut || wg.multiply(isa, &v, &mut m, tiles));
            let cc = time(&mut || wg.transform_output(isa, &m, &io, (th, tw)));
            eprintln!("{tile:?} {c}x{hw}: input {a:.3} ms, multiply {b:.3} ms, output {cc:.3} ms");
        }
    }
}
