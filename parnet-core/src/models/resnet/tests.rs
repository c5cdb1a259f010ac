//! ResNet structure checks: torchvision parameter counts and names, He et al.'s CIFAR counts,
//! depth, multiply-adds, shapes, gradients and determinism.

use super::*;
use crate::Tensor;
use crate::models::Network;
use crate::nn::testing::perturb_batch_norms;
use crate::nn::{Ctx, Module};
use crate::ops::loss::cross_entropy;
use crate::testing::{random_values, to_f32};

fn resnet(name: &str, classes: usize, seed: u64) -> ResNet {
    ResNet::new(ResNetConfig::from_name(name, classes).unwrap(), seed).unwrap()
}

fn images(n: usize, size: usize, seed: u64) -> Tensor {
    let len = n * 3 * size * size;
    Tensor::from_vec(to_f32(&random_values(len, 1.0, seed)), [n, 3, size, size]).unwrap()
}

/// (name, classes, parameters, depth): torchvision's counts for 1000 classes; ResNet-20/56 are
/// He et al.'s option-B networks with 10 classes.
const NETWORKS: [(&str, usize, usize, usize); 5] = [
    ("resnet-18", 1000, 11_689_512, 18),
    ("resnet-34", 1000, 21_797_672, 34),
    ("resnet-50", 1000, 25_557_032, 50),
    ("resnet-20", 10, 272_474, 20),
    ("resnet-56", 10, 855_770, 56),
];

#[test]
fn parameter_counts_and_depths() {
    for (name, classes, params, depth) in NETWORKS {
        let model = resnet(name, classes, 0);
        assert_eq!(model.num_params(), params, "{name} parameters");
        assert_eq!(Network::depth(&model), depth, "{name} depth");
    }
}

#[test]
fn multiply_adds() {
    // torchvision reports 1.81 / 3.66 / 4.09 GFLOPS (multiply-adds) at 224.
    for (name, reported) in [
        ("resnet-18", 1.814e9),
        ("resnet-34", 3.664e9),
        ("resnet-50", 4.09e9),
    ] {
        let macs = Network::macs(&resnet(name, 1000, 0), 224) as f64;
        assert!((macs / reported - 1.0).abs() < 0.01, "{name}: {macs}");
    }
    // ResNet-20 by hand at 32: stem 32²·16·27, stage 1 six convs 32²·16·16·9, stages 2 and 3
    // (each: one strided conv, five full convs, one 1x1 projection), classifier 64·10.
    let stage = 16 * 16 * 32 * 16 * 9 + 5 * 16 * 16 * 32 * 32 * 9 + 16 * 16 * 32 * 16;
    let by_hand = 32 * 32 * 16 * 27 + 6 * 32 * 32 * 16 * 16 * 9 + 2 * stage + 640;
    assert_eq!(by_hand, 40_813_184);
    assert_eq!(Network::macs(&resnet("resnet-20", 10, 0), 32), by_hand);
}

#[test]
fn torchvision_parameter_names() {
    let model = resnet("resnet-50", 1000, 0);
    let mut names = Vec::new();
    model.visit_params(&mut |p| names.push(p.name().to_string()));
    model.visit_buffers(&mut |b| names.push(b.name.clone()));
    for key in [
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.conv3.weight",
        "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.num_batches_tracked",
        "layer2.0.downsample.1.bias",
        "layer3.5.bn2.weight",
        "layer4.2.conv3.weight",
        "fc.weight",
        "fc.bias",
    ] {
        assert!(names.iter().any(|n| n == key), "missing {key}");
    }
    assert!(!names.iter().any(|n| n.starts_with("layer1.1.downsample")));
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "names are unique");
    // ResNet-18: no projection in layer1, one at the start of layers 2-4; 3x3 stride on conv1.
    let r18 = resnet("resnet-18", 1000, 0);
    let projections: Vec<bool> = r18
        .layers
        .iter()
        .map(|l| l[0].downsample.is_some())
        .collect();
    assert_eq!(projections, [false, true, true, true]);
    assert_eq!(r18.layers[1][0].main[0].conv().params.stride, 2);
    // ResNet-50 v1.5: the stride sits on the 3x3 conv, not on the first 1x1.
    let block = &model.layers[1][0];
    assert_eq!(
        (
            block.main[0].conv().params.stride,
            block.main[1].conv().params.stride
        ),
        (1, 2)
    );
    assert_eq!(block.main[1].conv().kernel, 3);
    // The fc weight is [classes, features] and the first conv 7x7.
    assert_eq!(model.fc.weight.shape().dims(), &[1000, 2048]);
    assert_eq!(model.stem.conv().weight.shape().dims(), &[64, 3, 7, 7]);
}

#[test]
fn forward_shapes() {
    let r18 = resnet("resnet-18", 1000, 1);
    let out = r18.forward(&images(1, 224, 1), Ctx::eval()).unwrap();
    assert_eq!(out.dims(), &[1, 1000]);
    assert!(out.data().iter().all(|v| v.is_finite()));
    // Odd sizes work (the stem pool and strided convs round as PyTorch does).
    for (name, size) in [
        ("resnet-34", 37),
        ("resnet-50", 64),
        ("resnet-20", 32),
        ("resnet-56", 20),
    ] {
        let out = resnet(name, 7, 1)
            .forward(&images(2, size, 2), Ctx::eval())
            .unwrap();
        assert_eq!(out.dims(), &[2, 7], "{name}");
    }
    let r20 = resnet("resnet-20", 10, 1);
    assert!(
        r20.forward(&Tensor::zeros([1, 4, 32, 32]), Ctx::eval())
            .is_err()
    );
    assert!(
        r20.forward(&Tensor::zeros([3, 32, 32]), Ctx::eval())
            .is_err()
    );
}

/// One training step (cross-entropy): every parameter gets a finite gradient. Returns the logits
/// and all gradients as bits.
fn training_step(name: &str, size: usize, seed: u64) -> (Vec<u32>, Vec<u32>) {
    let model = resnet(name, 10, seed);
    let logits = model.forward(&images(2, size, 3), Ctx::train(0)).unwrap();
    cross_entropy(&logits, &[1, 6], 0.0)
        .unwrap()
        .backward()
        .unwrap();
    let mut grads = Vec::new();
    model.visit_params(&mut |p| {
        let g = p
            .grad()
            .unwrap_or_else(|| panic!("{name}: {} has no gradient", p.name()));
        assert!(g.iter().all(|v| v.is_finite()), "{name}: {}", p.name());
        grads.extend(g.iter().map(|v| v.to_bits()));
    });
    (logits.data().iter().map(|v| v.to_bits()).collect(), grads)
}

#[test]
fn training_step_reaches_every_parameter() {
    for (name, size) in [
        ("resnet-18", 64),
        ("resnet-34", 64),
        ("resnet-50", 64),
        ("resnet-20", 32),
        ("resnet-56", 16),
    ] {
        training_step(name, size, 4);
    }
}

#[test]
fn fixed_seed_is_deterministic() {
    for (name, size) in [("resnet-18", 64), ("resnet-20", 32)] {
        let (a, b) = (training_step(name, size, 9), training_step(name, size, 9));
        assert_eq!(a, b, "{name}: same seed, same logits and gradients");
        assert_ne!(a.0, training_step(name, size, 10).0, "{name}: another seed");
    }
}

/// The deploy form (every BN folded into its conv) computes the eval-mode function, under
/// torchvision's names with a bias per conv and no BN tensors.
#[test]
fn deploy_form_folds_every_batch_norm_and_computes_the_same_logits() {
    for (name, size) in [("resnet-20", 16), ("resnet-50", 32)] {
        let model = resnet(name, 10, 3);
        perturb_batch_norms(&model, 4);
        let deploy = model.deploy().unwrap();
        let x = images(2, size, 5);
        let a = model.forward(&x, Ctx::eval()).unwrap();
        let b = deploy.forward(&x, Ctx::eval()).unwrap();
        let scale = a.data().iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (u, v) in a.data().iter().zip(b.data()) {
            assert!((u - v).abs() <= 1e-4 * scale + 1e-5, "{name}: {u} vs {v}");
        }
        let mut names = Vec::new();
        deploy.visit_params(&mut |p| names.push(p.name().to_string()));
        assert!(names.contains(&"conv1.bias".to_string()), "{name}");
        assert!(names.iter().all(|n| !n.contains("bn")), "{name}");
        let mut buffers = 0;
        deploy.visit_buffers(&mut |_| buffers += 1);
        assert_eq!(buffers, 0, "{name}");
    }
}
