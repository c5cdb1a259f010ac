//! The micro-kernel of the direct convolution: one tile of an "offset-gather" matrix product,
//!
//! ```text
//! tile[r][j * NR + l] = sum over k of  src[rows[r] + ks[k]] * b[j * block_stride + k * k_stride + l]
//!                                                              (r < MR, j < blocks, l < NR)
//! ```
//!
//! `src` is a channels-last image (or its gradient, or Winograd-transformed tiles), `rows` and
//! `ks` are offsets into it whose sums address the left operand, and `b` holds `NR` contiguous
//! floats per `(block, k)`. The forward convolution takes `rows` = output pixels and `ks` = (tap,
//! input channel) with `b` the packed weights (one block per 16 output channels); the weight
//! gradient takes `rows` = (tap, input channel) and `ks` = output pixels with `b` the
//! channels-last output gradient. No operand is packed per call.
//!
//! One accumulation order per output element, whatever the level and the tile shape: the sum
//! over `k` runs in order from zero, one fused multiply-add per term. AVX-512 (tiles of 6 rows by
//! up to 4 blocks, 24 of its 32 registers accumulating) and AVX2 (6 rows by 1 block in 12 of 16)
//! therefore give the same bits; the portable kernel rounds each product before adding it, so
//! it differs from them in the last bits.

use std::ops::Range;

use crate::kernels::simd::Isa;

/// Rows of a tile (output pixels in the forward).
pub const MR: usize = 6;
/// Lanes of one block (output channels in the forward).
pub const NR: usize = 16;
/// Most blocks one tile covers (AVX-512).
pub const MAX_BLOCKS: usize = 4;

/// The results of one tile: `[MR][MAX_BLOCKS * NR]`, block `j` at lanes `j * NR..`.
pub type Tile = [[f32; MAX_BLOCKS * NR]; MR];

/// How many blocks one tile of `isa` covers when `left` blocks remain.
pub fn tile_blocks(isa: Isa, left: usize) -> usize {
    match isa {
        Isa::Avx512 => left.clamp(1, MAX_BLOCKS),
        Isa::Avx2 | Isa::Portable => 1,
    }
}

/// A table of `k` offsets with its largest entry, so a tile can check its reads in O(1).
#[derive(Clone, Debug, Default)]
pub struct Offsets {
    pub values: Vec<usize>,
    pub max: usize,
}

impl Offsets {
    pub fn new(values: Vec<usize>) -> Self {
        let max = values.iter().copied().max().unwrap_or(0);
        Offsets { values, max }
    }
}

/// The right operand of a tile: `blocks` blocks of [`NR`] lanes; step `k` of block `j` is
/// `data[j * block_stride + k * k_stride..][..NR]` (`k` counted from the start of the tile's
/// range).
#[derive(Clone, Copy, Debug)]
pub struct Right<'a> {
    pub data: &'a [f32],
    pub k_stride: usize,
    pub block_stride: usize,
    pub blocks: usize,
}

/// Computes one tile over `ks[range]` into `out[r][j * NR + l]` (`j < b.blocks`; the other
/// lanes are left as they are).
///
/// Panics if a read would fall outside `src` or `b` (a bug in the caller's tables), or if
/// `b.blocks` is 0 or above [`MAX_BLOCKS`].
pub fn tile(
    isa: Isa,
    src: &[f32],
    rows: &[usize; MR],
    ks: &Offsets,
    range: Range<usize>,
    b: Right<'_>,
    out: &mut Tile,
) {
    let isa = isa.min(Isa::detected());
    let ks_slice = &ks.values[range];
    if ks_slice.is_empty() {
        out.iter_mut()
            .for_each(|row| row[..b.blocks * NR].fill(0.0));
        return;
    }
    check_reads(src, rows, ks, ks_slice.len(), &b);
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY (both arms): the level is available (lowered to `Isa::detected` above), and
        // every read stays in bounds: src[rows[r] + ks[k]] <=
        // row_max + ks.max < src.len(), and b is read at j * block_stride + k * k_stride + l <=
        // (blocks - 1) * block_stride + (len - 1) * k_stride + NR - 1 < b.len() (checked above).
        match isa {
            Isa::Avx512 => {
                return unsafe { avx512::tile(src.as_ptr(), rows, ks_slice, &b, out) };
            }
            Isa::Avx2 => {
                for j in 0..b.blocks {
                    let bj = b.data[j * b.block_stride..].as_ptr();
                    let t = unsafe { avx2::tile(src.as_ptr(), rows, ks_slice, bj, b.k_stride) };
                    for (o, t) in out.iter_mut().zip(&t) {
                        o[j * NR..][..NR].copy_from_slice(t);
                    }
                }
                return;
            }
            Isa::Portable => {}
        }
    }
    for j in 0..b.blocks {
        let t = portable_tile(
            src,
            rows,
            ks_slice,
            &b.data[j * b.block_stride..],
            b.k_stride,
        );
        for (o, t) in out.iter_mut().zip(&t) {
            o[j * NR..][..NR].copy_from_slice(t);
        }
    }
}

/// Adds one tile over `ks[range]` into `dst`: `dst[r * dst_stride + j * NR + l] += tile[r][j *
/// NR + l]` for the first `valid_rows` rows (the others, duplicates padding a partial tile, are
/// dropped). The tile is summed from zero as in [`tile`] and added at the end, so the bits are
/// those of adding [`tile`]'s result.
///
/// Panics if a read or write would fall outside `src`, `b` or `dst`.
#[allow(clippy::too_many_arguments)]
pub fn tile_add(
    isa: Isa,
    src: &[f32],
    rows: &[usize; MR],
    ks: &Offsets,
    range: Range<usize>,
    b: Right<'_>,
    (dst, dst_stride): (&mut [f32], usize),
    valid_rows: usize,
) {
    let isa = isa.min(Isa::detected());
    let ks_slice = &ks.values[range.clone()];
    let valid_rows = valid_rows.min(MR);
    if ks_slice.is_empty() || valid_rows == 0 {
        return;
    }
    assert!(
        (valid_rows - 1) * dst_stride + b.blocks * NR <= dst.len(),
        "direct conv tile writes past its destination"
    );
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        check_reads(src, rows, ks, ks_slice.len(), &b);
        // SAFETY: AVX-512 is available; reads are in bounds as in `tile`, and the writes touch
        // dst[r * dst_stride + j * NR + l] <= (valid_rows - 1) * dst_stride + blocks * NR - 1.
        return unsafe {
            avx512::tile_add(
                src.as_ptr(),
                rows,
                ks_slice,
                &b,
                (dst.as_mut_ptr(), dst_stride),
                valid_rows,
            )
        };
    }
    let mut t = [[0.0f32; MAX_BLOCKS * NR]; MR];
    tile(isa, src, rows, ks, range, b, &mut t);
    for (r, values) in t.iter().enumerate().take(valid_rows) {
        let d = &mut dst[r * dst_stride..][..b.blocks * NR];
        d.iter_mut().zip(values).for_each(|(d, &v)| *d += v);
    }
}

/// What an AVX-512 tile does with its sums before storing them: the executor's convolution
/// epilogue in registers, `out = relu?(((acc + bias) * gate?) + (res * scale + shift)? * gate?)`
/// over whole 16-lane chunks (the same operations in the same order as the executor's
/// `finish_chunks`, so the same bits).
pub struct RegisterEpilogue {
    /// Valid rows of the tile (the others are not stored).
    pub rows: usize,
    /// Where each row's `blocks * NR` lanes go.
    pub out: [*mut f32; MR],
    pub bias: *const f32,
    /// 0: no gate; 1: the gate multiplies the sum; 2: it multiplies the residual.
    pub gate_mode: u8,
    pub gate: [*const f32; MR],
    /// 0: no residual; 1: added as it is; 2: through `scale`, `shift`.
    pub residual_mode: u8,
    pub residual: [*const f32; MR],
    pub scale: *const f32,
    pub shift: *const f32,
    pub relu: bool,
}

/// [`tile`] with `epilogue` applied in registers and stored, at AVX-512; returns `false` (and
/// does nothing) at other levels, where the caller stores [`tile`]'s sums itself.
///
/// # Safety
/// Every pointer of `epilogue` must be valid for `b.blocks * NR` floats per valid row (reads for
/// `bias`, `gate`, `residual`, `scale`, `shift` as their modes use them; writes for `out`), and no
/// other thread may touch the written ones.
pub unsafe fn tile_with_epilogue(
    isa: Isa,
    src: &[f32],
    rows: &[usize; MR],
    ks: &Offsets,
    range: Range<usize>,
    b: Right<'_>,
    epilogue: &RegisterEpilogue,
) -> bool {
    let isa = isa.min(Isa::detected());
    let ks_slice = &ks.values[range];
    if isa != Isa::Avx512 || ks_slice.is_empty() {
        return false;
    }
    check_reads(src, rows, ks, ks_slice.len(), &b);
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: AVX-512 is available, reads are in bounds (checked), the epilogue's pointers
        // are the caller's contract.
        unsafe { avx512::tile_epilogue(src.as_ptr(), rows, ks_slice, &b, epilogue) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = epilogue;
        false
    }
}

/// Panics unless every read of a tile over `k_len >= 1` offsets stays inside `src` (at
/// `rows[r] + ks[k]`) and `b`: the O(1) check that makes the unchecked vector loads sound.
fn check_reads(src: &[f32], rows: &[usize; MR], ks: &Offsets, k_len: usize, b: &Right<'_>) {
    assert!(
        (1..=MAX_BLOCKS).contains(&b.blocks),
        "direct conv tile of {} blocks",
        b.blocks
    );
    let row_max = rows.iter().copied().max().unwrap_or(0);
    assert!(
        row_max + ks.max < src.len(),
        "direct conv tile reads past its source"
    );
    assert!(
        (b.blocks - 1) * b.block_stride + (k_len - 1) * b.k_stride + NR <= b.data.len(),
        "direct conv tile reads past its right operand"
    );
}

/// The sums of one block in plain Rust (product rounded, then added).
pub fn portable_tile(
    src: &[f32],
    rows: &[usize; MR],
    ks: &[usize],
    b: &[f32],
    k_stride: usize,
) -> [[f32; NR]; MR] {
    let mut acc = [[0.0f32; NR]; MR];
    for (step, &k) in ks.iter().enumerate() {
        let b_row = &b[step * k_stride..][..NR];
        for (acc_row, &row) in acc.iter_mut().zip(rows) {
            let a = src[row + k];
            for (acc, &bv) in acc_row.iter_mut().zip(b_row) {
                *acc += a * bv;
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// One block's sums.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `src + rows[r] + ks[k]` and `b + k * k_stride + l`
    /// (`l < NR`) must be readable for every `r`, `k`, `l`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile(
        src: *const f32,
        rows: &[usize; MR],
        ks: &[usize],
        b: *const f32,
        k_stride: usize,
    ) -> [[f32; NR]; MR] {
        // SAFETY (whole body): the caller guarantees every pointer formed here is in bounds and
        // that the CPU has AVX2 and FMA.
        unsafe {
            let p: [*const f32; MR] = rows.map(|r| src.add(r));
            let mut acc = [[_mm256_setzero_ps(); 2]; MR];
            let mut bp = b;
            for &k in ks {
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                bp = bp.add(k_stride);
                for r in 0..MR {
                    let a = _mm256_broadcast_ss(&*p[r].add(k));
                    acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
                    acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
                }
            }
            let mut out = [[0.0f32; NR]; MR];
            for r in 0..MR {
                _mm256_storeu_ps(out[r].as_mut_ptr(), acc[r][0]);
                _mm256_storeu_ps(out[r].as_mut_ptr().add(8), acc[r][1]);
            }
            out
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{MR, NR, RegisterEpilogue, Right, Tile};
    use std::arch::x86_64::*;

    /// The accumulators of `NB` blocks.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `src + rows[r] + ks[k]` and `b + j * block_stride + k *
    /// k_stride + l` (`j < NB`, `l < NR`) must be readable for every `r`, `k`.
    #[inline(always)]
    unsafe fn sums<const NB: usize>(
        src: *const f32,
        rows: &[usize; MR],
        ks: &[usize],
        b: *const f32,
        (k_stride, block_stride): (usize, usize),
    ) -> [[__m512; NB]; MR] {
        // SAFETY (whole body): the caller's contract.
        unsafe {
            let p: [*const f32; MR] = rows.map(|r| src.add(r));
            let bj: [*const f32; NB] = std::array::from_fn(|j| b.add(j * block_stride));
            let mut acc = [[_mm512_setzero_ps(); NB]; MR];
            for (step, &k) in ks.iter().enumerate() {
                let bv: [__m512; NB] =
                    std::array::from_fn(|j| _mm512_loadu_ps(bj[j].add(step * k_stride)));
                for r in 0..MR {
                    let a = _mm512_set1_ps(*p[r].add(k));
                    for j in 0..NB {
                        acc[r][j] = _mm512_fmadd_ps(a, bv[j], acc[r][j]);
                    }
                }
            }
            acc
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn tile_nb<const NB: usize>(
        src: *const f32,
        rows: &[usize; MR],
        ks: &[usize],
        b: &Right<'_>,
        out: &mut Tile,
    ) {
        // SAFETY: the caller's contract; `out` rows hold MAX_BLOCKS * NR >= NB * NR floats.
        unsafe {
            let acc = sums::<NB>(src, rows, ks, b.data.as_ptr(), (b.k_stride, b.block_stride));
            for (o, acc) in out.iter_mut().zip(&acc) {
                for (j, v) in acc.iter().enumerate() {
                    _mm512_storeu_ps(o.as_mut_ptr().add(j * NR), *v);
                }
            }
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn tile_add_nb<const NB: usize>(
        src: *const f32,
        rows: &[usize; MR],
        ks: &[usize],
        b: &Right<'_>,
        (dst, dst_stride): (*mut f32, usize),
        valid_rows: usize,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            let acc = sums::<NB>(src, rows, ks, b.data.as_ptr(), (b.k_stride, b.block_stride));
            for (r, acc) in acc.iter().enumerate().take(valid_rows) {
                for (j, v) in acc.iter().enumerate() {
                    let d = dst.add(r * dst_stride + j * NR);
                    _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), *v));
                }
            }
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn tile_epilogue_nb<const NB: usize>(
        src: *const f32,
        rows: &[usize; MR],
        ks: &[usize],
        b: &Right<'_>,
        e: &RegisterEpilogue,
    ) {
        // SAFETY: the caller's contract (`tile_with_epilogue`).
        unsafe {
            let acc = sums::<NB>(src, rows, ks, b.data.as_ptr(), (b.k_stride, b.block_stride));
            let zero = _mm512_setzero_ps();
            for (r, acc) in acc.iter().enumerate().take(e.rows) {
                for (j, a) in acc.iter().enumerate() {
                    let off = j * NR;
                    let mut v = _mm512_add_ps(*a, _mm512_loadu_ps(e.bias.add(off)));
                    let g = if e.gate_mode != 0 {
                        _mm512_loadu_ps(e.gate[r].add(off))
                    } else {
                        zero
                    };
                    if e.gate_mode == 1 {
                        v = _mm512_mul_ps(v, g);
                    }
                    if e.residual_mode != 0 {
                        let mut t = _mm512_loadu_ps(e.residual[r].add(off));
                        if e.residual_mode == 2 {
                            t = _mm512_mul_ps(t, _mm512_loadu_ps(e.scale.add(off)));
                            t = _mm512_add_ps(t, _mm512_loadu_ps(e.shift.add(off)));
                        }
                        if e.gate_mode == 2 {
                            t = _mm512_mul_ps(t, g);
                        }
                        v = _mm512_add_ps(v, t);
                    }
                    if e.relu {
                        // max(0, v): 0 where v < 0, v otherwise (NaN and -0 kept), as `v < 0 ? 0
                        // : v`.
                        v = _mm512_max_ps(zero, v);
                    }
                    _mm512_storeu_ps(e.out[r].add(off), v);
                }
            }
        }
    }

    /// # Safety
    /// As [`super::tile_with_epilogue`], with AVX-512F available and `b.blocks` 1 to 4.
    pub unsafe fn tile_epilogue(
        src: *const f32,
        rows: &[usize; MR],
        ks: &[usize],
        b: &Right<'_>,
        e: &RegisterEpilogue,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            match b.blocks {
                1 => tile_epilogue_nb::<1>(src, rows, ks, b, e),
                2 => tile_epilogue_nb::<2>(src, rows, ks, b, e),
                3 => tile_epilogue_nb::<3>(src, rows, ks, b, e),
                _ => tile_epilogue_nb::<4>(src, rows, ks, b, e),
            }
        }
    }

    /// # Safety
    /// AVX-512F must be available and the reads of `b.blocks` (1 to 4) blocks in bounds.
    pub unsafe fn tile(
        src: *const f32,
        rows: &[usize; MR],
        ks: &[usize],
        b: &Right<'_>,
        out: &mut Tile,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            match b.blocks {
                1 => tile_nb::<1>(src, rows, ks, b, out),
                2 => tile_nb::<2>(src, rows, ks, b, out),
                3 => tile_nb::<3>(src, rows, ks, b, out),
                _ => tile_nb::<4>(src, rows, ks, b, out),
            }
        }
    }

    /// # Safety
    /// As [`tile`], and the writes to `dst` in bounds.
    pub unsafe fn tile_add(
        src: *const f32,
        rows: &[usize; MR],
        ks: &[usize],
        b: &Right<'_>,
        dst: (*mut f32, usize),
        valid_rows: usize,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            match b.blocks {
                1 => tile_add_nb::<1>(src, rows, ks, b, dst, valid_rows),
                2 => tile_add_nb::<2>(src, rows, ks, b, dst, valid_rows),
                3 => tile_add_nb::<3>(src, rows, ks, b, dst, valid_rows),
                _ => tile_add_nb::<4>(src, rows, ks, b, dst, valid_rows),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{random_values, to_f32};

    fn seeded_vec(seed: u64, len: usize) -> Vec<f32> {
        to_f32(&random_values(len, 1.0, seed))
    }

    fn right(data: &[f32], k_stride: usize, block_stride: usize, blocks: usize) -> Right<'_> {
        Right {
            data,
            k_stride,
            block_stride,
            blocks,
        }
    }

    /// Every level against the f64 sums, and the SIMD levels against each other bit for bit,
    /// for every block count.
    #[test]
    fn every_level_matches_the_exact_sums_and_simd_levels_agree_bitwise() {
        let src = seeded_vec(1, 4000);
        let (k_len, k_stride, block_stride) = (300, 20, 300 * 20 + 5);
        let b = seeded_vec(2, 3 * block_stride + k_len * k_stride + NR);
        let rows = [0, 7, 100, 101, 2000, 3000];
        let ks = Offsets::new((0..k_len).map(|k| (k * 3) % 900).collect());
        for blocks in 1..=MAX_BLOCKS {
            let mut simd: Option<Tile> = None;
            for isa in Isa::available() {
                let mut t = [[f32::NAN; MAX_BLOCKS * NR]; MR];
                let b = right(&b, k_stride, block_stride, blocks);
                tile(isa, &src, &rows, &ks, 0..k_len, b, &mut t);
                for r in 0..MR {
                    for j in 0..blocks {
                        for l in 0..NR {
                            let exact: f64 = (0..k_len)
                                .map(|k| {
                                    src[rows[r] + ks.values[k]] as f64
                                        * b.data[j * block_stride + k * k_stride + l] as f64
                                })
                                .sum();
                            let got = t[r][j * NR + l] as f64;
                            assert!((got - exact).abs() < 1e-4, "{isa:?} {r} {j} {l}");
                        }
                    }
                }
                if isa >= Isa::Avx2 {
                    let bits = |t: &Tile| -> Vec<u32> {
                        t.iter()
                            .flat_map(|row| row[..blocks * NR].iter().map(|v| v.to_bits()))
                            .collect()
                    };
                    match &simd {
                        None => simd = Some(t),
                        Some(first) => assert_eq!(bits(first), bits(&t), "{isa:?} {blocks}"),
                    }
                }
            }
        }
    }

    #[test]
    fn sub_range_reads_b_from_its_start() {
        let src = seeded_vec(3, 64);
        let b = seeded_vec(4, 10 * NR);
        let rows = [0; MR];
        let ks = Offsets::new((0..10).collect());
        for isa in Isa::available() {
            let mut part = [[0.0; MAX_BLOCKS * NR]; MR];
            tile(
                isa,
                &src,
                &rows,
                &ks,
                4..10,
                right(&b[4 * NR..], NR, 0, 1),
                &mut part,
            );
            let want = portable_tile(&src, &rows, &ks.values[4..10], &b[4 * NR..], NR);
            for r in 0..MR {
                for l in 0..NR {
                    assert!((part[r][l] - want[r][l]).abs() < 1e-5, "{isa:?}");
                }
            }
        }
    }

    #[test]
    fn tile_add_adds_the_valid_rows_of_the_tile() {
        let src = seeded_vec(5, 500);
        let b = seeded_vec(6, 3 * 40 * NR);
        let rows = [3, 50, 97, 140, 200, 260];
        let ks = Offsets::new((0..40).map(|k| k * 5).collect());
        for isa in Isa::available() {
            for blocks in 1..=tile_blocks(isa, 3) {
                let stride = blocks * NR + 3;
                let mut dst = seeded_vec(7, 6 * stride);
                let before = dst.clone();
                let b = right(&b, 3 * NR, NR, blocks);
                tile_add(isa, &src, &rows, &ks, 0..40, b, (&mut dst, stride), 4);
                let mut t = [[0.0; MAX_BLOCKS * NR]; MR];
                tile(isa, &src, &rows, &ks, 0..40, b, &mut t);
                for r in 0..MR {
                    for l in 0..blocks * NR {
                        let want = if r < 4 {
                            before[r * stride + l] + t[r][l]
                        } else {
                            before[r * stride + l]
                        };
                        assert_eq!(dst[r * stride + l].to_bits(), want.to_bits(), "{r} {l}");
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "reads past its source")]
    fn out_of_bounds_rows_panic() {
        let src = vec![0.0; 10];
        let b = vec![0.0; NR];
        let ks = Offsets::new(vec![5]);
        let mut t = [[0.0; MAX_BLOCKS * NR]; MR];
        tile(
            Isa::current(),
            &src,
            &[5; MR],
            &ks,
            0..1,
            right(&b, NR, 0, 1),
            &mut t,
        );
    }
}
