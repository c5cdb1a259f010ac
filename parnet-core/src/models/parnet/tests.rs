//! ParNet structure checks from PARNET-SPEC sections 4, 6 and 12.

use super::*;
use crate::nn::testing::perturb_batch_norms;
use crate::nn::{Ctx, Module};
use crate::ops::{mean, sum};
use crate::testing::{random_values, to_f32};
use crate::{BackwardOptions, Tensor};

/// (variant, classes, params train graph, params fused), spec 6.1 and section 3.
const COUNTS: [(&str, usize, usize, usize); 7] = [
    ("parnet-s", 1000, 20_930_936, 19_128_980),
    ("parnet-s96", 1000, 20_983_848, 19_177_032),
    ("parnet-m", 1000, 38_953_256, 35_576_616),
    ("parnet-l", 1000, 60_180_008, 54_914_824),
    ("parnet-xl", 1000, 93_176_168, 84_962_784),
    ("parnet-cifar", 10, 22_381_962, 20_380_426),
    ("parnet-cifar", 100, 22_474_212, 0),
];

#[test]
fn planned_parameter_counts_match_the_spec() {
    for (name, classes, train, fused) in COUNTS {
        let info = Plan::new(&ParNetConfig::from_name(name, classes).unwrap()).info(224);
        assert_eq!(
            info.params_train, train,
            "{name} ({classes} classes) training graph"
        );
        if fused > 0 {
            assert_eq!(info.params_fused, fused, "{name} fused");
        }
    }
    let small = ParNetConfig::custom("small", Layout::Cifar, [64, 128, 256, 512], 10).unwrap();
    assert_eq!(Plan::new(&small).info(32).params_train, 5_608_138);
}

#[test]
fn built_models_hold_exactly_the_planned_parameters() {
    for (name, classes, train, fused) in COUNTS.into_iter().filter(|c| c.3 > 0) {
        let model = ParNet::new(ParNetConfig::from_name(name, classes).unwrap(), 0).unwrap();
        assert_eq!(model.num_params(), train, "{name}");
        assert_eq!(model.fused().unwrap().num_params(), fused, "{name} fused");
    }
}

#[test]
fn parnet_s_multiply_adds_match_appendix_a() {
    let info = Plan::new(&ParNetConfig::from_name("parnet-s", 1000).unwrap()).info(224);
    assert_eq!(info.macs_train, 5_259_501_056);
    assert_eq!(info.macs_fused, 4_733_857_280);
    let cifar = Plan::new(&ParNetConfig::from_name("parnet-cifar", 10).unwrap()).info(32);
    assert_eq!(cifar.macs_train, 2_723_834_240);
    assert_eq!(cifar.macs_fused, 2_455_005_568);
}

#[test]
fn every_variant_has_depth_12() {
    for name in VARIANTS {
        let cfg = ParNetConfig::from_name(name, 10).unwrap();
        assert_eq!(
            Plan::new(&cfg).info(cfg.default_image_size()).depth,
            12,
            "{name}"
        );
    }
}

#[test]
fn stage_shapes_at_224_match_spec_section_12() {
    let info = Plan::new(&ParNetConfig::from_name("parnet-s", 1000).unwrap()).info(224);
    let shape = |name: &str| {
        info.layers
            .iter()
            .find(|l| l.name == name)
            .unwrap()
            .out_shape
    };
    assert_eq!(shape("inits.0.0"), [64, 112, 112]);
    assert_eq!(shape("inits.0.1"), [92, 56, 56]);
    assert_eq!(shape("inits.1"), [192, 28, 28]);
    assert_eq!(shape("inits.2"), [384, 14, 14]);
    assert_eq!(shape("streams.0.3"), [92, 56, 56]);
    assert_eq!(shape("downsamples_2.0"), [192, 28, 28]);
    assert_eq!(shape("downsamples_2.1.0"), [384, 28, 28]);
    assert_eq!(shape("downsamples_2.1.2"), [384, 14, 14]);
    assert_eq!(shape("combine.2"), [384, 14, 14]);
    assert_eq!(shape("combine.3"), [1280, 7, 7]);
    assert_eq!(shape("head.fc"), [1000, 1, 1]);
}

#[test]
fn parameter_names_follow_the_official_state_dict() {
    let model = ParNet::new(ParNetConfig::from_name("parnet-s", 1000).unwrap(), 0).unwrap();
    let mut names = Vec::new();
    model.visit_params(&mut |p| names.push(p.name().to_string()));
    model.visit_buffers(&mut |b| names.push(b.name.clone()));
    for key in [
        "inits.0.0.block.rbr_dense.conv.weight",
        "inits.0.0.block.rbr_1x1.1.conv.weight",
        "inits.0.0.block.rbr_1x1.1.bn.running_var",
        "inits.0.1.block.se.cvsig.conv.weight",
        "streams.2.4.block.rbr_identity.weight",
        "streams.0.0.block.rbr_1x1.conv.weight",
        "streams.1.3.block.rbr_dense.bn.num_batches_tracked",
        "downsamples_2.0.block.rbr_dense.conv.weight",
        "downsamples_2.1.0.b1.running_mean",
        "downsamples_2.1.0.b2.weight",
        "downsamples_2.1.2.block.rbr_1x1.1.conv.weight",
        "combine.0.b1.bias",
        "combine.2.block.rbr_1x1.conv.weight",
        "combine.3.block.rbr_dense.conv.weight",
        "head.fc.weight",
        "head.fc.bias",
    ] {
        assert!(names.iter().any(|n| n == key), "missing {key}");
    }
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "names are unique");
}

#[test]
fn parnet_s_runs_at_224_and_refuses_other_sizes() {
    let model = ParNet::new(ParNetConfig::from_name("parnet-s", 1000).unwrap(), 0).unwrap();
    let x = Tensor::from_vec(
        to_f32(&random_values(3 * 224 * 224, 1.0, 1)),
        [1, 3, 224, 224],
    )
    .unwrap();
    let logits = model.forward(&x, Ctx::eval()).unwrap();
    assert_eq!(logits.dims(), &[1, 1000]);
    assert!(logits.data().iter().all(|v| v.is_finite()));
    let bad = Tensor::zeros([1, 3, 225, 224]);
    let err = model.forward(&bad, Ctx::eval()).unwrap_err().to_string();
    assert!(
        err.contains("multiples of 32") && err.contains("225"),
        "{err}"
    );
    assert!(
        model
            .forward(&Tensor::zeros([1, 4, 224, 224]), Ctx::eval())
            .is_err()
    );
}

fn tiny_imagenet_layout() -> ParNetConfig {
    ParNetConfig::custom("tiny", Layout::ImageNet, [8, 16, 16, 32], 5).unwrap()
}

#[test]
fn parallel_and_sequential_streams_are_bit_identical() {
    for cfg in [
        tiny_imagenet_layout(),
        ParNetConfig::custom("c", Layout::Cifar, [8, 16, 16, 24], 7).unwrap(),
    ] {
        let size = if cfg.layout == Layout::ImageNet {
            64
        } else {
            16
        };
        let x = Tensor::from_vec(
            to_f32(&random_values(2 * 3 * size * size, 1.0, 5)),
            [2, 3, size, size],
        )
        .unwrap();
        let run = |parallel: bool| {
            let model = ParNet::new(cfg.clone(), 3).unwrap();
            let ctx = Ctx {
                parallel_streams: parallel,
                ..Ctx::train(9)
            };
            let out = model.forward(&x, ctx).unwrap();
            mean(&out)
                .backward_with_options(crate::Buffer::filled(1, 1.0), BackwardOptions { parallel })
                .unwrap();
            let grads: Vec<Vec<u32>> = model
                .params()
                .iter()
                .map(|p| p.grad().unwrap().iter().map(|v| v.to_bits()).collect())
                .collect();
            let outs: Vec<u32> = out.data().iter().map(|v| v.to_bits()).collect();
            (outs, grads)
        };
        let (o1, g1) = run(true);
        let (o2, g2) = run(false);
        assert_eq!(o1, o2, "{} outputs", cfg.name);
        assert_eq!(g1, g2, "{} gradients", cfg.name);
    }
}

#[test]
fn fused_and_unfused_models_agree_in_eval_mode() {
    for (cfg, size) in [
        (tiny_imagenet_layout(), 64),
        (tiny_imagenet_layout(), 96),
        (
            ParNetConfig::custom("c", Layout::Cifar, [8, 16, 24, 32], 10).unwrap(),
            32,
        ),
    ] {
        let model = ParNet::new(cfg.clone(), 11).unwrap();
        perturb_batch_norms(&model, 4);
        let fused = model.fused().unwrap();
        assert!(fused.is_fused() && fused.num_params() < model.num_params());
        let x = Tensor::from_vec(
            to_f32(&random_values(2 * 3 * size * size, 1.0, 6)),
            [2, 3, size, size],
        )
        .unwrap();
        let a = model.forward(&x, Ctx::eval()).unwrap();
        let b = fused.forward(&x, Ctx::eval()).unwrap();
        let scale = a.data().iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (u, v) in a.data().iter().zip(b.data()) {
            assert!(
                (u - v).abs() <= 1e-4 * scale + 1e-5,
                "{}: {u} vs {v}",
                cfg.name
            );
        }
    }
}

#[test]
fn training_step_produces_gradients_for_every_parameter() {
    let model = ParNet::new(tiny_imagenet_layout(), 1).unwrap();
    let x = Tensor::from_vec(
        to_f32(&random_values(2 * 3 * 64 * 64, 1.0, 2)),
        [2, 3, 64, 64],
    )
    .unwrap();
    let out = model.forward(&x, Ctx::train(0)).unwrap();
    sum(&out).backward().unwrap();
    model.visit_params(&mut |p| {
        let g = p
            .grad()
            .unwrap_or_else(|| panic!("{} has no gradient", p.name()));
        assert!(g.iter().all(|v| v.is_finite()), "{}", p.name());
    });
}
