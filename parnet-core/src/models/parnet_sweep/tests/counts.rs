//! Depth, multiply-adds and parameters: by hand, against the built layers and ParNet-CIFAR; the
//! sweep's coverage and width matching.

use super::spec;
use crate::models::Network;
use crate::models::parnet::block::{Branches, RepBlock};
use crate::models::parnet::model::FinalLayer;
use crate::models::parnet::{Layout, ParNet, ParNetConfig};
use crate::models::parnet_sweep::spec::MAX_STREAMS;
use crate::models::parnet_sweep::sweep::MACS_TOLERANCE;
use crate::models::parnet_sweep::{SweepNet, SweepSpec, depth_sweep};
use crate::nn::Module;

/// Per-block training MACs: `ho·wo·cout·(cin/g)·(9 + 1) + cout·(cin/g)` (3x3, 1x1, SE);
/// training params: `11·cout·(cin/g) + 4·cout` (+ `2·cin` for the identity BN of case A).
#[test]
fn hand_computed_depth_macs_and_params() {
    // sweep-s1-b1-w2 at 8x8 (widths 2, 4, 8; final 8 -> 16):
    //   stem.0  3->2 @8x8 : 64·2·3·10 + 6   = 3846   params 11·6 + 8        = 74
    //   stem.1  2->2 @8x8 : 64·2·2·10 + 4   = 2564   params 11·4 + 8 + 4    = 56
    //   streams.0.0       : 2564                     params 56
    //   tail.0  2->4 s2 @4x4: 16·4·2·10 + 8 = 1288   params 11·8 + 16       = 104
    //   tail.1  4->8 s2 @2x2: 4·8·4·10 + 32 = 1312   params 11·32 + 32      = 384
    //   final   8->16 @2x2: 4·8·16          = 512    params 8·16 + 2·16     = 160
    //   head    16->10    : 160                      params 160 + 10        = 170
    let s1 = spec(1, 1, 2);
    assert_eq!(s1.macs(8), 3846 + 2564 + 2564 + 1288 + 1312 + 512 + 160);
    assert_eq!(s1.macs(8), 12_246);
    assert_eq!(s1.params(), 74 + 56 + 56 + 104 + 384 + 160 + 170);
    // stem.0, stem.1, streams.0.0, tail.0, tail.1, final, head.
    assert_eq!(s1.depth(), 7);

    // sweep-s2-b1-w2 at 8x8 (widths 2, 4; merge at 4x4, one tail block to 2x2):
    //   stem.0, stem.1 as above              3846 + 2564        params 74 + 56
    //   inits.1 2->4 s2 @4x4                 1288               params 104
    //   streams.0.0 2->2 @8x8                2564               params 56
    //   streams.1.0 4->4 @4x4: 16·4·4·10+16 = 2576              params 11·16 + 16 + 8 = 200
    //   down0 2->4 s2 @4x4                   1288               params 104
    //   fuse.1 BNs (2 x 4 channels)          0                  params 16
    //   fuse.1 block 8->4 g2 @4x4: 16·4·4·10 + 16 = 2576        params 11·16 + 16 = 192
    //   tail.0 4->8 s2 @2x2                  1312               params 384
    //   final 8->16 @2x2, head 16->10        512 + 160          params 160 + 170
    let s2 = spec(2, 1, 2);
    assert_eq!(
        s2.macs(8),
        3846 + 2564 + 1288 + 2564 + 2576 + 1288 + 2576 + 1312 + 512 + 160
    );
    assert_eq!(s2.macs(8), 18_686);
    assert_eq!(
        s2.params(),
        74 + 56 + 104 + 56 + 200 + 104 + 16 + 192 + 384 + 160 + 170
    );
    // stem.0, stem.1, inits.1, streams.1.0, fuse.1, tail.0, final, head.
    assert_eq!(s2.depth(), 8);

    // Longest paths: S = 1: 2 stem + B + 2 tail + final + head; S = 2: 3 (to stream 1) + B +
    // fuse.1 + tail.0 + 2; S = 3: 4 + B + fuse.2 + 2 (fuse.1 = down0 + 1 ties stream 2's
    // input); S = 4: 5 + B + fuse.3 + 2.
    for blocks in 1..=12 {
        for (s, extra) in [(1, 6), (2, 7), (3, 7), (4, 8)] {
            assert_eq!(spec(s, blocks, 4).depth(), blocks + extra, "s{s} b{blocks}");
        }
    }
}

fn block_macs(b: &RepBlock, hw: usize) -> (usize, usize) {
    let (convs, stride) = match &b.branches {
        Branches::Train { dense, one_by_one } => {
            let s = dense.conv.params.stride;
            let o = hw / s;
            (dense.conv.macs(o, o) + one_by_one.conv.macs(o, o), s)
        }
        Branches::Fused { conv } => {
            let s = conv.params.stride;
            (conv.macs(hw / s, hw / s), s)
        }
    };
    (convs + b.se.macs(1, 1), hw / stride)
}

fn chain_macs(blocks: &[RepBlock], mut hw: usize) -> (usize, usize) {
    let mut total = 0;
    for b in blocks {
        let (m, out) = block_macs(b, hw);
        (total, hw) = (total + m, out);
    }
    (total, hw)
}

/// Multiply-adds summed over the built model's convolutions and classifier, following the
/// resolution through the layers' own strides (independently of the plan's formulas).
fn built_macs(net: &SweepNet, image_size: usize) -> usize {
    let (mut total, mut hw) = chain_macs(&net.stem, image_size);
    let mut stream_out = Vec::new();
    for (i, stream) in net.streams.iter().enumerate() {
        if i > 0 {
            let (m, out) = block_macs(&net.inits[i - 1], hw);
            (total, hw) = (total + m, out);
        }
        let (m, out) = chain_macs(stream, hw);
        total += m;
        stream_out.push(out);
    }
    let mut merged = stream_out[0];
    if let Some(d) = &net.down0 {
        let (m, out) = block_macs(d, merged);
        (total, merged) = (total + m, out);
    }
    for (fusion, &hw) in net.fusions.iter().zip(&stream_out[1..]) {
        let (m, out) = block_macs(&fusion.block, hw);
        (total, merged) = (total + m, out);
    }
    let (m, hw) = chain_macs(&net.tail, merged);
    total += m;
    total += match &net.final_layer {
        FinalLayer::Conv(c) => c.conv().macs(hw, hw),
        FinalLayer::Block(_) => unreachable!("the sweep ends in a 1x1 conv"),
    };
    total + net.head.in_features * net.head.out_features
}

#[test]
fn counts_match_the_built_layers() {
    for s in 1..=MAX_STREAMS {
        for (blocks, width) in [(1, 4), (3, 6)] {
            let sp = spec(s, blocks, width);
            let net = SweepNet::new(sp.clone(), 0).unwrap();
            let fused = net.fused().unwrap();
            for size in [32, 64] {
                let info = sp.info(size);
                assert_eq!(built_macs(&net, size), sp.macs(size), "{}", sp.name());
                assert_eq!(Network::macs(&net, size), sp.macs(size));
                assert_eq!(built_macs(&fused, size), info.macs_fused, "{}", sp.name());
                assert_eq!(Network::macs(&fused, size), info.macs_fused);
                assert!(info.macs_fused < info.macs_train);
            }
            assert_eq!(net.num_params(), sp.params(), "{}", sp.name());
            assert_eq!(fused.num_params(), sp.info(32).params_fused);
            assert_eq!(Network::depth(&net), sp.depth());
            // Every member ends at R/4 (R/8 with four streams) with width 2·(last width).
            let last = sp.info(32).layers.len() - 2;
            let [c, h, _] = sp.info(32).layers[last].out_shape;
            let (levels, last_width) = if s == 4 {
                (3, width * 8)
            } else {
                (2, width * 4)
            };
            assert_eq!((c, h), (2 * last_width, 32 >> levels), "{}", sp.name());
        }
    }
}

#[test]
fn three_streams_of_four_blocks_match_parnet_cifar() {
    let x025 = ParNetConfig::from_name("parnet-cifar", 10)
        .unwrap()
        .with_width_mult(0.25)
        .unwrap();
    let custom = ParNetConfig::custom("c", Layout::Cifar, [8, 16, 32, 64], 100).unwrap();
    for (cfg, sp) in [
        (x025, spec(3, 4, 32)),
        (custom, SweepSpec::new(3, 4, 8, 100).unwrap()),
    ] {
        let parnet = ParNet::new(cfg, 0).unwrap();
        for size in [32, 64] {
            let (a, b) = (parnet.info(size), sp.info(size));
            assert_eq!(
                (a.macs_train, a.macs_fused, a.params_train, a.params_fused),
                (b.macs_train, b.macs_fused, b.params_train, b.params_fused),
                "{} at {size}",
                sp.name()
            );
        }
        assert_eq!(
            parnet.num_params(),
            SweepNet::new(sp.clone(), 0).unwrap().num_params()
        );
        // ParNet's longest path runs through its third stem block; here that block is in stream 0.
        assert_eq!((Network::depth(&parnet), sp.depth()), (12, 11));
    }
}

fn parnet_cifar_quarter_macs() -> usize {
    let cfg = ParNetConfig::from_name("parnet-cifar", 10)
        .unwrap()
        .with_width_mult(0.25)
        .unwrap();
    ParNet::new(cfg, 0).unwrap().info(32).macs_train
}

#[test]
fn depth_sweep_covers_depths_8_to_30_at_constant_macs() {
    let quarter = parnet_cifar_quarter_macs();
    assert!((170_000_000..172_000_000).contains(&quarter), "{quarter}");
    for target in [quarter, 20_000_000] {
        let members = depth_sweep(target, 32, 10, false);
        for s in 1..=MAX_STREAMS {
            let depths: Vec<usize> = members
                .iter()
                .filter(|m| m.streams == s)
                .map(SweepSpec::depth)
                .collect();
            assert!(depths.windows(2).all(|w| w[0] < w[1]), "{depths:?}");
            assert!(
                depths.len() >= 3,
                "target {target}, S = {s}: depths {depths:?}"
            );
            // At the x0.25 budget every stream count spans the whole range. At 20 M the deep
            // four-stream members would need widths below 6, whose even steps miss by > 10%.
            if target == quarter {
                assert_eq!(depths.len(), 5, "S = {s}: depths {depths:?}");
                assert!(
                    depths[0] <= 9 && depths[4] >= 28,
                    "S = {s}: depths {depths:?}"
                );
            }
        }
        let depths: Vec<usize> = members.iter().map(SweepSpec::depth).collect();
        let (lo, hi) = (depths.iter().min().unwrap(), depths.iter().max().unwrap());
        assert!(*lo <= 9 && *hi >= 28, "target {target}: depths {lo}..{hi}");
        for m in &members {
            let ratio = m.macs(32) as f64 / target as f64;
            assert!(
                (ratio - 1.0).abs() <= MACS_TOLERANCE,
                "{}: {ratio}",
                m.name()
            );
            assert_eq!(m.num_classes, 10);
        }
        let quick = depth_sweep(target, 32, 10, true);
        assert!(!quick.is_empty() && quick.len() <= 4);
        assert!(
            quick
                .iter()
                .all(|m| [1, 3].contains(&m.streams) && members.contains(m))
        );
    }
    // Three streams of four blocks match parnet-cifar x0.25 exactly at width 32.
    let members = depth_sweep(quarter, 32, 10, false);
    assert!(depth_sweep(quarter, 30, 10, false).is_empty());
    let s3b4 = SweepSpec::matching_macs(3, 4, quarter, 32, 10).unwrap();
    assert_eq!((s3b4.width, s3b4.macs(32)), (32, quarter));
    assert!(members.iter().all(|m| m.width % 2 == 0 && m.width >= 2));
}

#[test]
fn matching_macs_picks_the_closest_even_width() {
    for (s, b, target) in [(1, 20, 20_000_000), (4, 3, 171_000_000), (2, 9, 5_000_000)] {
        let m = SweepSpec::matching_macs(s, b, target, 32, 10).unwrap();
        let err = |w: usize| spec(s, b, w).macs(32).abs_diff(target);
        assert!(err(m.width) <= err(m.width + 2), "{}", m.name());
        if m.width > 2 {
            assert!(err(m.width) <= err(m.width - 2), "{}", m.name());
        }
    }
    assert!(SweepSpec::matching_macs(4, 2, 1_000_000, 36, 10).is_err());
    assert!(SweepSpec::matching_macs(3, 2, 0, 32, 10).is_err());
    assert!(SweepSpec::matching_macs(5, 2, 1_000_000, 32, 10).is_err());
    assert!(SweepSpec::matching_macs(1, 1, usize::MAX / 4, 32, 10).is_err());
    assert_eq!(SweepSpec::matching_macs(1, 1, 1, 32, 10).unwrap().width, 2);
}
