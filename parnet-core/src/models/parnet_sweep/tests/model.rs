//! The built network: names, forward shapes and input checks, parallel vs sequential streams,
//! deploy form, gradients.

use super::{bits, images, spec};
use crate::models::Network;
use crate::models::parnet::Activation;
use crate::models::parnet_sweep::spec::MAX_STREAMS;
use crate::models::parnet_sweep::{SweepNet, SweepSpec};
use crate::nn::testing::perturb_batch_norms;
use crate::nn::{Ctx, Module};
use crate::ops::loss::cross_entropy;
use crate::ops::mean;
use crate::{BackwardOptions, Buffer, Tensor};
#[test]
fn names_round_trip_and_bad_names_are_refused() {
    for sp in [
        spec(3, 4, 32),
        spec(1, 24, 2),
        spec(4, 1, 128).with_activation(Activation::Relu),
    ] {
        let name = sp.name();
        assert_eq!(SweepSpec::parse(&name, 10).unwrap(), sp, "{name}");
    }
    assert_eq!(spec(3, 4, 32).name(), "sweep-s3-b4-w32");
    assert_eq!(
        spec(2, 5, 8).with_activation(Activation::Relu).name(),
        "sweep-s2-b5-w8-relu"
    );
    for bad in [
        "",
        "parnet-cifar",
        "sweep-s3-b4",
        "sweep-s3-b4-w32-gelu",
        "sweep-s3-b-w32",
        "sweep-s+3-b4-w32",
        "sweep-b4-s3-w32",
        "sweep-s3-b4-w32-",
        "sweep-s5-b4-w32",
        "sweep-s3-b0-w32",
        "sweep-s3-b4-w31",
        "sweep-s3-b4-w99999999999999999999999",
    ] {
        let err = SweepSpec::parse(bad, 10).expect_err(bad).to_string();
        assert!(!err.is_empty(), "{bad}");
    }
    let msg = SweepSpec::parse("sweep-s3-b4", 10).unwrap_err().to_string();
    assert!(
        msg.contains("sweep-s3-b4") && msg.contains("sweep-s<streams>"),
        "{msg}"
    );
    assert!(SweepSpec::parse("sweep-s3-b4-w32", 0).is_err());
    let net = SweepNet::new(spec(2, 3, 4), 0).unwrap();
    assert_eq!(Network::name(&net), "sweep-s2-b3-w4");
}

#[test]
fn forward_shapes_keys_and_input_checks() {
    for s in 1..=MAX_STREAMS {
        let net = SweepNet::new(SweepSpec::new(s, 2, 4, 7).unwrap(), s as u64).unwrap();
        for size in [16, 32] {
            let out = net.forward(&images(2, size, 1), Ctx::eval()).unwrap();
            assert_eq!(out.dims(), &[2, 7], "S = {s} at {size}");
            assert!(out.data().iter().all(|v| v.is_finite()));
        }
        assert!(net.forward(&images(1, 12, 1), Ctx::eval()).is_err() == (s == 4));
        assert!(net.forward(&images(1, 18, 1), Ctx::eval()).is_err());
        assert!(
            net.forward(&Tensor::zeros([1, 1, 16, 16]), Ctx::eval())
                .is_err()
        );
        let mut names = Vec::new();
        net.visit_params(&mut |p| names.push(p.name().to_string()));
        net.visit_buffers(&mut |b| names.push(b.name.clone()));
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        let mut keys = vec![
            "stem.0.rbr_dense.conv.weight".to_string(),
            "stem.1.rbr_identity.running_var".to_string(),
            format!("streams.{}.1.rbr_1x1.conv.weight", s - 1),
            "final.conv.weight".to_string(),
            "final.bn.running_mean".to_string(),
            "head.fc.bias".to_string(),
        ];
        if s > 1 {
            keys.push(format!("inits.{}.rbr_1x1.1.conv.weight", s - 1));
            keys.push("down0.se.cvsig.conv.weight".to_string());
            keys.push(format!("fuse.{}.0.b2.weight", s - 1));
            keys.push(format!("fuse.{}.2.block.rbr_dense.bn.bias", s - 1));
        }
        if s < 3 {
            keys.push(format!("tail.{}.rbr_dense.conv.weight", 2 - s));
        }
        for key in &keys {
            assert!(names.contains(key), "S = {s}: missing {key}");
        }
        assert!(!names.iter().any(|n| n.starts_with("tail.")) || s < 3);
    }
}

#[test]
fn parallel_and_sequential_streams_are_bit_identical() {
    let x = images(2, 16, 5);
    for s in [2, 3, 4] {
        let run = |parallel: bool| {
            let net = SweepNet::new(spec(s, 2, 4), 3).unwrap();
            let ctx = Ctx {
                parallel_streams: parallel,
                ..Ctx::train(9)
            };
            let out = net.forward(&x, ctx).unwrap();
            mean(&out)
                .backward_with_options(Buffer::filled(1, 1.0), BackwardOptions { parallel })
                .unwrap();
            let grads: Vec<Vec<u32>> = net
                .params()
                .iter()
                .map(|p| bits(&p.grad().unwrap()))
                .collect();
            let eval = net
                .forward(
                    &x,
                    Ctx {
                        parallel_streams: parallel,
                        ..Ctx::eval()
                    },
                )
                .unwrap();
            (bits(out.data()), grads, bits(eval.data()))
        };
        assert_eq!(run(true), run(false), "S = {s}");
    }
}

#[test]
fn fused_model_agrees_in_eval_mode() {
    for s in 1..=MAX_STREAMS {
        let net = SweepNet::new(spec(s, 2, 4), 11).unwrap();
        perturb_batch_norms(&net, 4);
        let fused = net.fused().unwrap();
        assert!(fused.is_fused() && !net.is_fused());
        let deployed = Network::deploy(&net).unwrap();
        assert_eq!(deployed.num_params(), fused.num_params());
        assert_eq!(Network::input_multiple(&net), if s == 4 { 8 } else { 4 });
        assert!(fused.num_params() < net.num_params());
        let x = images(2, 16, 6);
        let a = net.forward(&x, Ctx::eval()).unwrap();
        let b = fused.forward(&x, Ctx::eval()).unwrap();
        let scale = a.data().iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        let spread = a
            .data()
            .iter()
            .fold(0f32, |m, v| m.max((v - a.data()[0]).abs()));
        assert!(
            spread > 1e-3 * scale,
            "S = {s}: outputs too uniform to compare"
        );
        for (u, v) in a.data().iter().zip(b.data()) {
            assert!((u - v).abs() <= 1e-4 * scale + 1e-5, "S = {s}: {u} vs {v}");
        }
    }
}

#[test]
fn every_parameter_gets_a_nonzero_gradient() {
    for s in 1..=MAX_STREAMS {
        let net = SweepNet::new(spec(s, 1, 4), 2).unwrap();
        let logits = net.forward(&images(4, 16, 7), Ctx::train(5)).unwrap();
        cross_entropy(&logits, &[3, 8, 0, 5], 0.0)
            .unwrap()
            .backward()
            .unwrap();
        let mut count = 0;
        net.visit_params(&mut |p| {
            let g = p
                .grad()
                .unwrap_or_else(|| panic!("S = {s}: {} has no gradient", p.name()));
            assert!(g.iter().all(|v| v.is_finite()), "{}", p.name());
            assert!(
                g.iter().any(|&v| v != 0.0),
                "S = {s}: {} has a zero gradient",
                p.name()
            );
            count += 1;
        });
        assert!(count > 20);
    }
}
