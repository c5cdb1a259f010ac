use super::*;
use crate::testing::*;
use proptest::prelude::*;

fn tensor(values: &[f64], dims: &[usize]) -> Tensor {
    Tensor::from_vec(to_f32(values), dims.to_vec()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Forward vs the f64 reference, including several row blocks (N up to 80 > 2 * ROW_BLOCK).
    #[test]
    fn forward_matches_reference(n in 1usize..80, k in 1usize..50, o in 1usize..70,
                                 with_bias in any::<bool>(), seed in any::<u64>()) {
        let x = random_values(n * k, 1.0, seed);
        let w = random_values(o * k, 1.0, seed + 1);
        let b = random_values(o, 1.0, seed + 2);
        let bt = tensor(&b, &[o]);
        let y = linear(&tensor(&x, &[n, k]), &tensor(&w, &[o, k]), with_bias.then_some(&bt)).unwrap();
        prop_assert_eq!(y.dims(), &[n, o]);
        let reference = linear_reference(&x, &w, with_bias.then_some(&b[..]), n, k, o);
        assert_close("linear", y.data(), &reference, 1e-5, 1e-5 * (k as f64).sqrt());
    }

    /// Gradients to x, weight and bias vs finite differences (default tolerances); N and Out
    /// reach past one row block so the block split of dx and dW is exercised.
    #[test]
    fn backward_matches_finite_differences(n in 1usize..40, k in 1usize..6, o in 1usize..40,
                                           with_bias in any::<bool>(), seed in any::<u64>()) {
        let x = random_values(n * k, 1.0, seed);
        let w = random_values(o * k, 1.0, seed + 1);
        let b = random_values(o, 1.0, seed + 2);
        let mut inputs = vec![GradInput::new(x, &[n, k]), GradInput::new(w, &[o, k])];
        if with_bias {
            inputs.push(GradInput::new(b, &[o]));
        }
        check_gradients("linear", &inputs,
            |t| linear(&t[0], &t[1], t.get(2)).unwrap(),
            |v| linear_reference(&v[0], &v[1], v.get(2).map(|b| &b[..]), n, k, o),
            GradTolerance::default(), seed);
    }
}

#[test]
fn constant_weight_gets_no_gradient_but_input_does() {
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2])
        .unwrap()
        .into_leaf();
    let w = Tensor::from_vec(vec![1.0, 0.0, 0.0, 2.0, 1.0, 1.0], [3, 2]).unwrap();
    let y = linear(&x, &w, None).unwrap();
    assert_eq!(y.data(), &[1.0, 4.0, 3.0, 3.0, 8.0, 7.0]);
    y.backward_with(Buffer::from_vec(vec![1.0; 6])).unwrap();
    // dx[n, i] = sum_o w[o, i]
    assert_eq!(&x.grad().unwrap()[..], &[2.0, 3.0, 2.0, 3.0]);
}

#[test]
fn results_are_bit_identical_on_one_and_two_threads() {
    let (n, k, o) = (100, 37, 65);
    let x = random_values(n * k, 1.0, 5);
    let w = random_values(o * k, 1.0, 6);
    let b = random_values(o, 1.0, 7);
    let up = to_f32(&random_values(n * o, 1.0, 8));
    let run = || {
        let (xt, wt, bt) = (
            tensor(&x, &[n, k]).into_leaf(),
            tensor(&w, &[o, k]).into_leaf(),
            tensor(&b, &[o]).into_leaf(),
        );
        let y = linear(&xt, &wt, Some(&bt)).unwrap();
        y.backward_with(Buffer::from_slice(&up)).unwrap();
        let grads = [xt.grad(), wt.grad(), bt.grad()].map(|g| g.unwrap().into_vec());
        (y.to_vec(), grads)
    };
    let pool = |t| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap()
    };
    assert!(pool(1).install(run) == pool(2).install(run));
}

#[test]
fn rejects_mismatched_shapes() {
    let err = |r: Result<Tensor>| r.unwrap_err().to_string();
    let e = err(linear(&Tensor::zeros([2, 3]), &Tensor::zeros([4, 5]), None));
    assert!(e.contains("[2, 3]") && e.contains("[4, 5]"), "{e}");
    let e = err(linear(
        &Tensor::zeros([2, 3, 1]),
        &Tensor::zeros([4, 3]),
        None,
    ));
    assert!(e.contains("[2, 3, 1]"), "{e}");
    let e = err(linear(
        &Tensor::zeros([2, 3]),
        &Tensor::zeros([4, 3]),
        Some(&Tensor::zeros([3])),
    ));
    assert!(e.contains("bias") && e.contains("[3]"), "{e}");
}
