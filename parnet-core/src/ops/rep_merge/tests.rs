//! Merge tests: the forward against the unfused ops (same bits) and the f64 reference, the
//! backward against finite differences of the reference and against the unfused ops' autograd,
//! thread-count independence, and argument errors.

use proptest::prelude::*;

use super::*;
use crate::ops::activation::{relu, silu};
use crate::ops::batch_norm::{batch_norm2d_train, batch_norm2d_train_gap};
use crate::ops::{add, mul_channel};
use crate::testing::*;

const EPS: f32 = 1e-5;

/// Random inputs of one case: `u, v, x` `[N, C, H, W]` (off-centre), `(gamma, beta)` of the
/// three normalisations, a gate `[N, C]` in `(0, 2)`.
struct Case {
    dims: [usize; 4],
    u: Vec<f64>,
    v: Vec<f64>,
    x: Vec<f64>,
    bn: [(Vec<f64>, Vec<f64>); 3],
    gate: Vec<f64>,
}

impl Case {
    fn new(dims: [usize; 4], seed: u64) -> Case {
        let [n, c, h, w] = dims;
        let len = n * c * h * w;
        let off_centre = |s: u64, offset: f64| shifted_values(len, 2.0, offset, s);
        let bn = |s: u64| {
            let gamma = random_values(c, 1.0, s)
                .iter()
                .map(|g| ((g + 1.5) as f32) as f64)
                .collect();
            (gamma, random_values(c, 1.0, s + 1))
        };
        Case {
            dims,
            u: off_centre(seed, 1.5),
            v: off_centre(seed + 1, -0.5),
            x: off_centre(seed + 2, 3.0),
            bn: [bn(seed + 3), bn(seed + 5), bn(seed + 7)],
            gate: random_values(n * c, 1.0, seed + 9)
                .iter()
                .map(|g| ((g + 1.0) as f32) as f64)
                .collect(),
        }
    }

    /// The case's values in `rep_merge_train`'s input order (`x` and its norm last).
    fn inputs(&self, identity: bool) -> Vec<GradInput> {
        let [n, c, _, _] = self.dims;
        let mut inputs = vec![
            GradInput::new(self.u.clone(), &self.dims),
            GradInput::new(self.bn[0].0.clone(), &[c]),
            GradInput::new(self.bn[0].1.clone(), &[c]),
            GradInput::new(self.v.clone(), &self.dims),
            GradInput::new(self.bn[1].0.clone(), &[c]),
            GradInput::new(self.bn[1].1.clone(), &[c]),
            GradInput::new(self.gate.clone(), &[n, c, 1, 1]),
        ];
        if identity {
            inputs.push(GradInput::new(self.x.clone(), &self.dims));
            inputs.push(GradInput::new(self.bn[2].0.clone(), &[c]));
            inputs.push(GradInput::new(self.bn[2].1.clone(), &[c]));
        }
        inputs
    }
}

fn leaves(inputs: &[GradInput]) -> Vec<Tensor> {
    inputs
        .iter()
        .map(|i| {
            Tensor::from_vec(to_f32(&i.values), i.shape.clone())
                .unwrap()
                .into_leaf()
        })
        .collect()
}

/// The merge on tensors in its input order.
fn fused(t: &[Tensor], activation: Activation) -> Tensor {
    let bn = |i: usize| BnParams {
        gamma: &t[i],
        beta: &t[i + 1],
        eps: EPS,
    };
    let moments =
        (t.len() == 10).then(|| batch_norm2d_train_gap(&t[7], &t[8], &t[9], EPS).unwrap().1);
    let identity = moments.as_ref().map(|m| IdentityBranch {
        x: &t[7],
        bn: bn(8),
        moments: m,
    });
    rep_merge_train(&t[0], bn(1), &t[3], bn(4), &t[6], identity, activation)
        .unwrap()
        .0
}

/// The same from the unfused ops, as the block computed it before the merge existed.
fn unfused(t: &[Tensor], activation: Activation) -> Tensor {
    let d = batch_norm2d_train(&t[0], &t[1], &t[2], EPS).unwrap().0;
    let o = batch_norm2d_train(&t[3], &t[4], &t[5], EPS).unwrap().0;
    let convs = add(&d, &o).unwrap();
    let z = if t.len() == 10 {
        let i = batch_norm2d_train(&t[7], &t[8], &t[9], EPS).unwrap().0;
        add(&convs, &mul_channel(&i, &t[6]).unwrap()).unwrap()
    } else {
        mul_channel(&convs, &t[6]).unwrap()
    };
    match activation {
        Activation::Silu => silu(&z),
        Activation::Relu => relu(&z),
    }
}

fn reference(values: &[Vec<f64>], dims: [usize; 4], activation: Activation) -> Vec<f64> {
    let identity = (values.len() == 10).then(|| (&values[7][..], &values[8][..], &values[9][..]));
    rep_merge_train_reference(
        (&values[0], &values[3]),
        dims,
        [(&values[1], &values[2]), (&values[4], &values[5])],
        &values[6],
        identity,
        activation,
        EPS as f64,
    )
}

fn activation_of(silu: bool) -> Activation {
    if silu {
        Activation::Silu
    } else {
        Activation::Relu
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The forward has the unfused ops' bits (both cases, both activations) and is close to the
    /// f64 reference.
    #[test]
    fn forward_matches_the_unfused_ops_bit_for_bit(
        n in 1usize..5, c in 1usize..6, h in 1usize..7, w in 2usize..9,
        identity in any::<bool>(), silu_act in any::<bool>(), seed in any::<u64>(),
    ) {
        let dims = [n, c, h, w];
        let case = Case::new(dims, seed);
        let inputs = case.inputs(identity);
        let t = leaves(&inputs);
        let activation = activation_of(silu_act);
        let y = fused(&t, activation);
        let bits = |t: &Tensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        prop_assert!(bits(&y) == bits(&unfused(&t, activation)));
        let values: Vec<Vec<f64>> = inputs.iter().map(|i| i.values.clone()).collect();
        assert_close("rep_merge forward", y.data(), &reference(&values, dims, activation), 1e-4, 1e-4);
    }

    /// Every gradient (both branches, the three normalisations' parameters, the gate, the
    /// identity input) against f64 central differences of the reference.
    #[test]
    fn backward_matches_finite_differences(
        n in 1usize..4, c in 1usize..3, h in 1usize..4, w in 2usize..4,
        identity in any::<bool>(), seed in any::<u64>(),
    ) {
        let dims = [n, c, h, w];
        let case = Case::new(dims, seed);
        check_gradients(
            OP,
            &case.inputs(identity),
            |t| fused(t, Activation::Silu),
            |v| reference(v, dims, Activation::Silu),
            GradTolerance::default(),
            seed,
        );
    }

    /// The backward against the unfused ops' autograd, both activations, on larger planes.
    #[test]
    fn backward_matches_the_unfused_ops(
        n in 1usize..5, c in 1usize..5, h in 2usize..9, w in 2usize..9,
        identity in any::<bool>(), silu_act in any::<bool>(), seed in any::<u64>(),
    ) {
        let dims = [n, c, h, w];
        let case = Case::new(dims, seed);
        let inputs = case.inputs(identity);
        let activation = activation_of(silu_act);
        let upstream = to_f32(&random_values(n * c * h * w, 1.0, seed ^ 77));
        let grads = |f: &dyn Fn(&[Tensor]) -> Tensor| {
            let t = leaves(&inputs);
            f(&t).backward_with(Buffer::from_slice(&upstream)).unwrap();
            t.iter().map(|t| t.grad().unwrap().to_vec()).collect::<Vec<_>>()
        };
        let fast = grads(&|t| fused(t, activation));
        let slow = grads(&|t| unfused(t, activation));
        for (k, (a, b)) in fast.iter().zip(&slow).enumerate() {
            let b: Vec<f64> = b.iter().map(|&v| v as f64).collect();
            let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            assert_close(&format!("gradient of input {k}"), a, &b, 1e-4, 1e-5 * scale);
        }
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let dims = [5, 6, 7, 9];
    let case = Case::new(dims, 3);
    let run = |threads: usize| {
        on_threads(threads, || {
            let t = leaves(&case.inputs(true));
            let y = fused(&t, Activation::Silu);
            y.backward_with(Buffer::from_vec(to_f32(&random_values(y.numel(), 1.0, 5))))
                .unwrap();
            let mut bits: Vec<u32> = y.data().iter().map(|v| v.to_bits()).collect();
            for t in &t {
                bits.extend(t.grad().unwrap().iter().map(|v| v.to_bits()));
            }
            bits
        })
    };
    assert!(run(1) == run(2));
}

#[test]
fn rejects_mismatched_shapes_and_moments() {
    let case = Case::new([2, 3, 4, 4], 1);
    let t = leaves(&case.inputs(true));
    let bn = |i: usize| BnParams {
        gamma: &t[i],
        beta: &t[i + 1],
        eps: EPS,
    };
    let err =
        |r: Result<(Tensor, [BatchStats; 2])>| r.map(|_| ()).expect_err("an error").to_string();
    let wide = Tensor::zeros([2, 3, 4, 5]);
    let e = err(rep_merge_train(
        &t[0],
        bn(1),
        &wide,
        bn(4),
        &t[6],
        None,
        Activation::Silu,
    ));
    assert!(e.contains(OP) && e.contains("[2, 3, 4, 5]"), "{e}");
    let gate = Tensor::zeros([2, 3]);
    let e = err(rep_merge_train(
        &t[0],
        bn(1),
        &t[3],
        bn(4),
        &gate,
        None,
        Activation::Silu,
    ));
    assert!(e.contains("gate"), "{e}");
    let other = Tensor::from_vec(vec![1.0; 2 * 2 * 16], [2, 2, 4, 4]).unwrap();
    let (g2, b2) = (
        Tensor::from_vec(vec![1.0; 2], [2]).unwrap(),
        Tensor::zeros([2]),
    );
    let moments = batch_norm2d_train_gap(&other, &g2, &b2, EPS).unwrap().1;
    let identity = IdentityBranch {
        x: &t[7],
        bn: bn(8),
        moments: &moments,
    };
    let e = err(rep_merge_train(
        &t[0],
        bn(1),
        &t[3],
        bn(4),
        &t[6],
        Some(identity),
        Activation::Silu,
    ));
    assert!(e.contains("moments for 2 channels"), "{e}");
    let single = Tensor::zeros([1, 3, 1, 1]);
    let e = err(rep_merge_train(
        &single,
        bn(1),
        &single,
        bn(4),
        &Tensor::zeros([1, 3, 1, 1]),
        None,
        Activation::Silu,
    ));
    assert!(e.contains("more than 1 value"), "{e}");
}
