//! The AVX-512 tiles: 6 rows by up to 4 blocks of 16 lanes, 24 of the 32 registers
//! accumulating.

use super::{MAX_BLOCKS, MR, NR, RegisterEpilogue, Right, Tile};
use std::arch::x86_64::*;

/// `$f::<NB>(args)` for the block count `$blocks` (1 to 4; above 4 as 4).
macro_rules! by_blocks {
    ($blocks:expr, $f:ident($($arg:expr),*)) => {
        match $blocks {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            _ => $f::<4>($($arg),*),
        }
    };
}

/// The accumulators of `NB` blocks, summed over `ks` from `start` (zero when null, else
/// `start[r * MAX_BLOCKS * NR + j * NR..]`).
///
/// # Safety
/// The CPU must support AVX-512F; `src + rows[r] + ks[k]` and `b + j * block_stride + k *
/// k_stride + l` (`j < NB`, `l < NR`) must be readable for every `r`, `k`, and `start`, unless
/// null, must point at a [`Tile`].
#[inline(always)]
unsafe fn sums<const NB: usize>(
    src: *const f32,
    rows: &[usize; MR],
    ks: &[usize],
    b: *const f32,
    (k_stride, block_stride): (usize, usize),
    start: *const f32,
) -> [[__m512; NB]; MR] {
    // SAFETY (whole body): the caller's contract.
    unsafe {
        let p: [*const f32; MR] = rows.map(|r| src.add(r));
        let bj: [*const f32; NB] = std::array::from_fn(|j| b.add(j * block_stride));
        let mut acc = [[_mm512_setzero_ps(); NB]; MR];
        if !start.is_null() {
            for (r, acc) in acc.iter_mut().enumerate() {
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = _mm512_loadu_ps(start.add(r * MAX_BLOCKS * NR + j * NR));
                }
            }
        }
        // Six broadcasts, then one block's weights at a time against them: 7 registers beside
        // the 24 accumulators (as MLAS's NCHWc kernel), so nothing spills.
        for (step, &k) in ks.iter().enumerate() {
            let a: [__m512; MR] = std::array::from_fn(|r| _mm512_set1_ps(*p[r].add(k)));
            for j in 0..NB {
                let bv = _mm512_loadu_ps(bj[j].add(step * k_stride));
                for r in 0..MR {
                    acc[r][j] = _mm512_fmadd_ps(a[r], bv, acc[r][j]);
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
    acc_io: (&mut Tile, bool),
) {
    let (out, from_zero) = acc_io;
    let start = if from_zero {
        std::ptr::null()
    } else {
        out.as_ptr().cast::<f32>()
    };
    // SAFETY: the caller's contract; `out` rows hold MAX_BLOCKS * NR >= NB * NR floats.
    unsafe {
        let acc = sums::<NB>(
            src,
            rows,
            ks,
            b.data.as_ptr(),
            (b.k_stride, b.block_stride),
            start,
        );
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
        let acc = sums::<NB>(
            src,
            rows,
            ks,
            b.data.as_ptr(),
            (b.k_stride, b.block_stride),
            std::ptr::null(),
        );
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
    start: *const f32,
    e: &RegisterEpilogue,
) {
    // SAFETY: the caller's contract (`tile_with_epilogue`).
    unsafe {
        let acc = sums::<NB>(
            src,
            rows,
            ks,
            b.data.as_ptr(),
            (b.k_stride, b.block_stride),
            start,
        );
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
/// As [`super::tile_with_epilogue`], with AVX-512F available and `b.blocks` 1 to 4; `start`
/// null or a [`Tile`].
pub unsafe fn tile_epilogue(
    src: *const f32,
    rows: &[usize; MR],
    ks: &[usize],
    b: &Right<'_>,
    start: *const f32,
    e: &RegisterEpilogue,
) {
    // SAFETY: the caller's contract.
    unsafe { by_blocks!(b.blocks, tile_epilogue_nb(src, rows, ks, b, start, e)) }
}

/// Sums into `acc`, from zero or (`from_zero` false) from the sums it holds.
///
/// # Safety
/// AVX-512F must be available and the reads of `b.blocks` (1 to 4) blocks in bounds.
pub unsafe fn tile(
    src: *const f32,
    rows: &[usize; MR],
    ks: &[usize],
    b: &Right<'_>,
    acc: (&mut Tile, bool),
) {
    // SAFETY: the caller's contract.
    unsafe { by_blocks!(b.blocks, tile_nb(src, rows, ks, b, acc)) }
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
    unsafe { by_blocks!(b.blocks, tile_add_nb(src, rows, ks, b, dst, valid_rows)) }
}
