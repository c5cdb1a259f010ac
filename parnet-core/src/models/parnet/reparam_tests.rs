//! Reparameterization must not change what the network computes (spec section 5).
//! Tolerance: |fused - unfused| <= 1e-4 * max(|unfused|, 1e-3) + 1e-5, fp32, eval mode.

use proptest::prelude::*;

use super::ParNet;
use super::block::RepBlock;
use super::config::{Activation, Layout, ParNetConfig};
use super::fusion::FusionBlock;
use super::plan::{BlockSpec, FusionSpec};
use crate::Tensor;
use crate::nn::testing::perturb_batch_norms;
use crate::nn::{Ctx, Init, Module};
use crate::testing::{random_values, to_f32};

fn assert_agree(what: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(a.dims(), b.dims(), "{what}");
    let scale = a.data().iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for (i, (u, v)) in a.data().iter().zip(b.data()).enumerate() {
        assert!(
            (u - v).abs() <= 1e-4 * scale + 1e-5,
            "{what}[{i}]: unfused {u} vs fused {v}"
        );
    }
}

fn input(n: usize, c: usize, h: usize, w: usize, seed: u64) -> Tensor {
    Tensor::from_vec(
        to_f32(&random_values(n * c * h * w, 1.5, seed)),
        [n, c, h, w],
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every block kind: case A (Cin == Cout, stride 1), case B at stride 1 and 2, groups 1 and 2
    /// (with the shuffle), SiLU and ReLU, factor-2 gate on and off.
    #[test]
    fn fused_block_matches_unfused(
        cin_half in 1usize..6, cout_half in 1usize..6, same in any::<bool>(),
        stride in 1usize..3, grouped in any::<bool>(), relu in any::<bool>(), double in any::<bool>(),
        n in 1usize..3, h_half in 1usize..5, w_half in 1usize..5, seed in any::<u64>(),
    ) {
        let groups = if grouped { 2 } else { 1 };
        let cin = 2 * cin_half;
        let cout = if same { cin } else { 2 * cout_half };
        let spec = BlockSpec { prefix: "b".into(), cin, cout, stride, groups };
        let act = if relu { Activation::Relu } else { Activation::Silu };
        let block = RepBlock::new(&spec, act, double, Init::new(seed)).unwrap();
        perturb_batch_norms(&block, seed ^ 1);
        let fused = block.fused().unwrap();
        prop_assert!(fused.num_params() < block.num_params());
        let x = input(n, cin, 2 * h_half, 2 * w_half, seed ^ 2);
        let a = block.forward(&x, Ctx::eval()).unwrap();
        let b = fused.forward(&x, Ctx::eval()).unwrap();
        assert_agree("block", &a, &b);
    }

    #[test]
    fn fused_fusion_block_matches_unfused(c_half in 1usize..5, cout_half in 1usize..5, stride in 1usize..3,
                                          size_half in 1usize..5, seed in any::<u64>()) {
        let c = 2 * c_half;
        let spec = FusionSpec {
            prefix: "f".into(),
            channels: c,
            block: BlockSpec { prefix: "f.2.block".into(), cin: 2 * c, cout: 2 * cout_half, stride, groups: 2 },
        };
        let fusion = FusionBlock::new(&spec, Activation::Silu, true, Init::new(seed)).unwrap();
        perturb_batch_norms(&fusion, seed ^ 3);
        let fused = fusion.fused().unwrap();
        let (a_in, b_in) = (input(2, c, 2 * size_half, 2 * size_half, seed), input(2, c, 2 * size_half, 2 * size_half, !seed));
        let a = fusion.forward(&a_in, &b_in, Ctx::eval()).unwrap();
        let b = fused.forward(&a_in, &b_in, Ctx::eval()).unwrap();
        assert_agree("fusion", &a, &b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// Whole small models of both layouts, random widths and input sizes.
    #[test]
    fn fused_model_matches_unfused(w in prop::array::uniform4(1usize..5), cifar in any::<bool>(),
                                   size_mult in 1usize..4, seed in any::<u64>()) {
        let widths = w.map(|x| 2 * x);
        let layout = if cifar { Layout::Cifar } else { Layout::ImageNet };
        let cfg = ParNetConfig::custom("p", layout, widths, 3).unwrap();
        let model = ParNet::new(cfg.clone(), seed).unwrap();
        perturb_batch_norms(&model, seed ^ 5);
        let fused = model.fused().unwrap();
        let size = cfg.size_multiple() * size_mult;
        let x = input(2, 3, size, size, seed ^ 7);
        assert_agree("model", &model.forward(&x, Ctx::eval()).unwrap(), &fused.forward(&x, Ctx::eval()).unwrap());
    }
}
