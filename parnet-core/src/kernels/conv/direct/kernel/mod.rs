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

/// Packed weights of one chunk of `k` for one run of blocks: small enough to stay in L1 beside
/// the tiles' inputs and partial sums while every tile of a task uses them.
pub const K_CHUNK_BYTES: usize = 32 * 1024;

/// `0..k_len` cut into near-equal consecutive ranges, each holding at most [`K_CHUNK_BYTES`] of
/// `b`'s packed weights (one range when they fit, or nearly), with `b` moved to each range's
/// first step. Walking them with [`tile_accumulate`] gives the bits of one whole-range tile.
pub fn k_chunks(k_len: usize, b: Right<'_>) -> impl Iterator<Item = (Range<usize>, Right<'_>)> {
    let most = (K_CHUNK_BYTES / (b.blocks * NR * std::mem::size_of::<f32>())).max(1);
    let count = if k_len * 4 <= most * 5 {
        1
    } else {
        k_len.div_ceil(most)
    };
    (0..count).map(move |c| {
        let range = c * k_len / count..(c + 1) * k_len / count;
        let data = &b.data[range.start * b.k_stride..];
        (range, Right { data, ..b })
    })
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
    tile_accumulate(isa, src, rows, ks, range, b, (out, true));
}

/// [`tile`] continued: with `from_zero` false, the sums over `ks[range]` are added term by term
/// onto the partial sums `acc` already holds (as the first part of the same sum), so splitting
/// `k` into consecutive ranges gives the bits of one whole-range tile.
///
/// Panics as [`tile`].
pub fn tile_accumulate(
    isa: Isa,
    src: &[f32],
    rows: &[usize; MR],
    ks: &Offsets,
    range: Range<usize>,
    b: Right<'_>,
    (acc, from_zero): (&mut Tile, bool),
) {
    let isa = isa.min(Isa::detected());
    let ks_slice = &ks.values[range];
    if ks_slice.is_empty() {
        if from_zero {
            acc.iter_mut()
                .for_each(|row| row[..b.blocks * NR].fill(0.0));
        }
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
                return unsafe { avx512::tile(src.as_ptr(), rows, ks_slice, &b, (acc, from_zero)) };
            }
            Isa::Avx2 => {
                for j in 0..b.blocks {
                    let bj = b.data[j * b.block_stride..].as_ptr();
                    let start = (!from_zero).then(|| block_of(acc, j));
                    let t = unsafe {
                        avx2::tile(src.as_ptr(), rows, ks_slice, bj, b.k_stride, start.as_ref())
                    };
                    for (o, t) in acc.iter_mut().zip(&t) {
                        o[j * NR..][..NR].copy_from_slice(t);
                    }
                }
                return;
            }
            Isa::Portable => {}
        }
    }
    for j in 0..b.blocks {
        let start = (!from_zero).then(|| block_of(acc, j));
        let t = portable_tile(
            src,
            rows,
            ks_slice,
            (&b.data[j * b.block_stride..], b.k_stride),
            start.as_ref(),
        );
        for (o, t) in acc.iter_mut().zip(&t) {
            o[j * NR..][..NR].copy_from_slice(t);
        }
    }
}

/// Block `j`'s lanes of a tile.
fn block_of(tile: &Tile, j: usize) -> [[f32; NR]; MR] {
    std::array::from_fn(|r| tile[r][j * NR..][..NR].try_into().unwrap())
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

/// [`tile_accumulate`] with `epilogue` applied in registers and stored, at AVX-512: the sums over
/// `ks[range]` start from zero or from the partial sums `start`. Returns `false` (and does
/// nothing) at other levels, where the caller stores [`tile`]'s sums itself.
///
/// # Safety
/// Every pointer of `epilogue` must be valid for `b.blocks * NR` floats per valid row (reads for
/// `bias`, `gate`, `residual`, `scale`, `shift` as their modes use them; writes for `out`), and no
/// other thread may touch the written ones.
#[allow(clippy::too_many_arguments)]
pub unsafe fn tile_with_epilogue(
    isa: Isa,
    src: &[f32],
    rows: &[usize; MR],
    ks: &Offsets,
    range: Range<usize>,
    b: Right<'_>,
    start: Option<&Tile>,
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
        let start = start.map_or(std::ptr::null(), |t| t.as_ptr().cast::<f32>());
        unsafe { avx512::tile_epilogue(src.as_ptr(), rows, ks_slice, &b, start, epilogue) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (epilogue, start);
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

/// The sums of one block in plain Rust (product rounded, then added), from zero or from
/// `start`.
pub fn portable_tile(
    src: &[f32],
    rows: &[usize; MR],
    ks: &[usize],
    (b, k_stride): (&[f32], usize),
    start: Option<&[[f32; NR]; MR]>,
) -> [[f32; NR]; MR] {
    let mut acc = start.copied().unwrap_or([[0.0f32; NR]; MR]);
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
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(test)]
mod tests;
