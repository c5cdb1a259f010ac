//! Tests of the graph walk itself and of the per-op profiler (the ops test their own backward).
//! They build graphs with ops, which sit above `autograd`, so they live here rather than in
//! `src/autograd`.

use parnet_core::Param;
use parnet_core::autograd::BackwardOptions;
use parnet_core::autograd::profile::{restart_forward_clock, start_profiling, stop_profiling};
use parnet_core::ops::activation::silu;
use parnet_core::ops::{add, sum};
use parnet_core::tensor::{Buffer, Tensor};

#[test]
fn diamond_graph_sums_both_paths() {
    // y = sum((x + x) + x) => dy/dx = 3
    let x = Tensor::from_vec(vec![1.0, -2.0, 0.5], [3])
        .unwrap()
        .into_leaf();
    let a = add(&x, &x).unwrap();
    let b = add(&a, &x).unwrap();
    sum(&b).backward().unwrap();
    assert_eq!(&x.grad().unwrap()[..], &[3.0, 3.0, 3.0]);
}

#[test]
fn param_gradients_accumulate_across_backward_calls_until_zeroed() {
    let p = Param::new("w", Buffer::from_vec(vec![1.0, 2.0]), [2]).unwrap();
    for _ in 0..2 {
        sum(&p.tensor()).backward().unwrap();
    }
    assert_eq!(&p.grad().unwrap()[..], &[2.0, 2.0]);
    p.zero_grad();
    assert!(p.grad().is_none());
}

#[test]
fn detached_parameters_record_nothing() {
    let p = Param::new("w", Buffer::from_vec(vec![1.0, 2.0]), [2]).unwrap();
    let y = sum(&add(&p.detached(), &p.detached()).unwrap());
    assert!(!y.requires_grad());
    assert!(y.backward().is_err());
}

#[test]
fn update_in_place_does_not_change_handed_out_tensors() {
    let p = Param::new("w", Buffer::from_vec(vec![1.0, 2.0]), [2]).unwrap();
    let before = p.tensor();
    p.update(|v, _| v[0] = 10.0);
    assert_eq!(before.data(), &[1.0, 2.0]);
    assert_eq!(p.to_vec(), vec![10.0, 2.0]);
}

#[test]
fn parallel_and_sequential_walks_are_bit_identical() {
    let xs: Vec<Tensor> = (0..6)
        .map(|i| {
            Tensor::from_vec(
                (0..5000).map(|j| ((i * 7 + j) as f32).sin()).collect(),
                [5000],
            )
            .unwrap()
            .into_leaf()
        })
        .collect();
    let mut branches = Vec::new();
    for w in xs.windows(2) {
        branches.push(add(&add(&w[0], &w[1]).unwrap(), &w[0]).unwrap());
    }
    let mut total = branches[0].clone();
    for b in &branches[1..] {
        total = add(&total, b).unwrap();
    }
    let g = Buffer::from_fn(5000, |j| (j as f32 * 0.37).cos());
    let run = |parallel| {
        total
            .backward_with_options(g.clone(), BackwardOptions { parallel })
            .unwrap();
        let grads: Vec<Vec<f32>> = xs.iter().map(|x| x.grad().unwrap().to_vec()).collect();
        grads
    };
    let seq = run(false);
    let par = run(true);
    // The second run accumulated on top of the first: par == 2 * seq exactly.
    for (s, p) in seq.iter().zip(&par) {
        for (a, b) in s.iter().zip(p) {
            assert_eq!((2.0 * a).to_bits(), b.to_bits());
        }
    }
}

#[test]
fn a_passed_through_gradient_reaches_only_the_inputs_that_need_it_and_sums_across_chunks() {
    // Longer than several elementwise chunks, so contributions are summed by several tasks.
    let n = 3 * parnet_core::kernels::parallel::ELEMENTWISE_CHUNK + 17;
    let x = Tensor::from_vec((0..n).map(|i| i as f32).collect(), [n])
        .unwrap()
        .into_leaf();
    let c = Tensor::from_vec(vec![1.0; n], [n]).unwrap();
    // y = sum((c + x) + (x + c) + x) => dy/dx = 3; the constant gets nothing.
    let a = add(&c, &x).unwrap();
    let b = add(&x, &c).unwrap();
    let y = sum(&add(&add(&a, &b).unwrap(), &x).unwrap());
    y.backward().unwrap();
    assert!(x.grad().unwrap().iter().all(|&g| g == 3.0));
    assert!(c.grad().is_none());
}

#[test]
fn profiles_forward_and_backward_by_op_and_is_off_afterwards() {
    let x = Tensor::from_vec(vec![0.5; 64], [64]).unwrap().into_leaf();
    start_profiling();
    restart_forward_clock();
    let y = silu(&silu(&x));
    let loss = parnet_core::ops::reduce::sum(&y);
    loss.backward().unwrap();
    let rows = stop_profiling();
    let silu_row = rows.iter().find(|(n, _)| *n == "silu").expect("silu timed");
    assert_eq!(
        (silu_row.1.forward_calls, silu_row.1.backward_calls),
        (2, 2)
    );
    // Off: nothing is recorded.
    let _ = silu(&x);
    assert!(stop_profiling().is_empty());
}
