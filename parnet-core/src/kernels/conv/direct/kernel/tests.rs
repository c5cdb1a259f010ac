//! The micro-kernel at every level against exact sums, and the SIMD levels against each other.

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
        let want = portable_tile(&src, &rows, &ks.values[4..10], (&b[4 * NR..], NR), None);
        for r in 0..MR {
            for l in 0..NR {
                assert!((part[r][l] - want[r][l]).abs() < 1e-5, "{isa:?}");
            }
        }
    }
}

/// Consecutive ranges accumulated one after another give the whole range's bits at every level,
/// and the epilogue tile started from partial sums gives the whole range's bits too.
#[test]
fn a_range_split_into_parts_gives_the_bits_of_the_whole() {
    let src = seeded_vec(8, 3000);
    let (k_len, k_stride, block_stride) = (200, NR, 200 * NR);
    let b = seeded_vec(9, MAX_BLOCKS * block_stride);
    let rows = [0, 11, 400, 401, 1500, 2500];
    let ks = Offsets::new((0..k_len).map(|k| (k * 7) % 499).collect());
    for isa in Isa::available() {
        for blocks in 1..=tile_blocks(isa, MAX_BLOCKS) {
            let whole_b = right(&b, k_stride, block_stride, blocks);
            let mut whole = [[0.0; MAX_BLOCKS * NR]; MR];
            tile(isa, &src, &rows, &ks, 0..k_len, whole_b, &mut whole);
            for cuts in [
                vec![0, 1, k_len],
                vec![0, 64, 128, k_len],
                vec![0, 199, k_len],
            ] {
                let mut parts = [[f32::NAN; MAX_BLOCKS * NR]; MR];
                for (i, w) in cuts.windows(2).enumerate() {
                    let b_part = right(&b[w[0] * k_stride..], k_stride, block_stride, blocks);
                    let acc = (&mut parts, i == 0);
                    tile_accumulate(isa, &src, &rows, &ks, w[0]..w[1], b_part, acc);
                }
                for r in 0..MR {
                    for l in 0..blocks * NR {
                        assert_eq!(
                            parts[r][l].to_bits(),
                            whole[r][l].to_bits(),
                            "{isa:?} {cuts:?}"
                        );
                    }
                }
            }
            if isa == Isa::Avx512 {
                let mut partial = [[0.0; MAX_BLOCKS * NR]; MR];
                tile(isa, &src, &rows, &ks, 0..100, whole_b, &mut partial);
                let bias = vec![0.0f32; blocks * NR];
                let mut out = vec![f32::NAN; MR * blocks * NR];
                let e = RegisterEpilogue {
                    rows: MR,
                    out: std::array::from_fn(|r| out[r * blocks * NR..].as_mut_ptr()),
                    bias: bias.as_ptr(),
                    gate_mode: 0,
                    gate: [std::ptr::null(); MR],
                    residual_mode: 0,
                    residual: [std::ptr::null(); MR],
                    scale: std::ptr::null(),
                    shift: std::ptr::null(),
                    relu: false,
                };
                let rest = right(&b[100 * k_stride..], k_stride, block_stride, blocks);
                // SAFETY: every pointer of `e` covers blocks * NR floats per row.
                let done = unsafe {
                    tile_with_epilogue(isa, &src, &rows, &ks, 100..k_len, rest, Some(&partial), &e)
                };
                assert!(done);
                for r in 0..MR {
                    for l in 0..blocks * NR {
                        // + 0.0 bias: the same bits (no sum here is -0).
                        let got = out[r * blocks * NR + l];
                        assert_eq!(got.to_bits(), (whole[r][l] + 0.0).to_bits(), "{r} {l}");
                    }
                }
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

/// The chunks cover `0..k_len` in order, each within the L1 budget unless one range nearly fits,
/// and each chunk's right operand starts at its first step.
#[test]
fn k_chunks_cover_the_range_within_the_budget() {
    let data: Vec<f32> = (0..MAX_BLOCKS * 5000 * NR).map(|i| i as f32).collect();
    for blocks in 1..=MAX_BLOCKS {
        for k_len in [0, 1, 100, 160, 161, 500, 4608] {
            let b = right(&data, NR, k_len * NR, blocks);
            let chunks: Vec<_> = k_chunks(k_len, b).collect();
            let most = K_CHUNK_BYTES / (blocks * NR * 4);
            assert_eq!(chunks[0].0.start, 0);
            assert_eq!(chunks.last().unwrap().0.end, k_len);
            for w in chunks.windows(2) {
                assert_eq!(w[0].0.end, w[1].0.start);
            }
            for (range, r) in &chunks {
                assert!(chunks.len() == 1 || range.len() <= most, "{blocks} {k_len}");
                assert_eq!(r.data[0], (range.start * NR) as f32);
                assert_eq!(
                    (r.k_stride, r.block_stride, r.blocks),
                    (NR, k_len * NR, blocks)
                );
            }
            assert_eq!(chunks.len() == 1, k_len * 4 <= most * 5, "{blocks} {k_len}");
        }
    }
}
