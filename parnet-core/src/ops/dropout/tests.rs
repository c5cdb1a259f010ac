use super::*;
use crate::testing::*;
use proptest::prelude::*;
use std::sync::Arc;

/// Nonzero values, so that a zero in the output can only come from the mask.
fn nonzero_values(len: usize, seed: u64) -> Vec<f32> {
    random_values(len, 1.0, seed)
        .iter()
        .map(|&v| if v == 0.0 { 0.5 } else { v as f32 })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn forward_and_backward_match_reference(dims in prop::collection::vec(1usize..6, 1..4),
                                            p in 0.05f32..0.95, seed in any::<u64>()) {
        let n: usize = dims.iter().product();
        let x = random_values(n, 2.0, seed);
        let t = Tensor::from_vec(to_f32(&x), dims.clone()).unwrap();
        let reference = dropout_reference(&x, p, seed);
        assert_close("dropout", dropout(&t, p, seed).unwrap().data(), &reference, 1e-6, 0.0);
        check_gradients("dropout", &[GradInput::new(x, &dims)],
            |t| dropout(&t[0], p, seed).unwrap(), |v| dropout_reference(&v[0], p, seed),
            GradTolerance::default(), seed);
    }
}

#[test]
fn drops_a_fraction_near_p_and_scales_survivors_exactly() {
    let n = 1 << 20;
    let x = nonzero_values(n, 1);
    let t = Tensor::from_vec(x.clone(), [n]).unwrap();
    for (p, seed) in [(0.1f32, 7u64), (0.5, 8), (0.9, 9)] {
        let y = dropout(&t, p, seed).unwrap();
        let zeros = y.data().iter().filter(|&&v| v == 0.0).count();
        let frac = zeros as f64 / n as f64;
        // Five standard deviations of a binomial fraction.
        let sd = (p as f64 * (1.0 - p as f64) / n as f64).sqrt();
        assert!((frac - p as f64).abs() < 5.0 * sd, "p {p}: dropped {frac}");
        // Also on the even indices only (adjacent elements are not correlated by the hash).
        let even_zeros = y.data().iter().step_by(2).filter(|&&v| v == 0.0).count();
        let even_frac = even_zeros as f64 / (n / 2) as f64;
        assert!(
            (even_frac - p as f64).abs() < 5.0 * sd * 2f64.sqrt(),
            "p {p}: even {even_frac}"
        );
        let scale = 1.0f32 / (1.0 - p);
        for (i, (&a, &b)) in x.iter().zip(y.data()).enumerate() {
            assert!(b == 0.0 || b == a * scale, "index {i}: {a} -> {b}");
        }
    }
}

#[test]
fn mask_is_the_same_on_one_and_two_threads_and_depends_on_the_seed() {
    let n = 200_003; // several chunks and a ragged tail
    let t = Tensor::from_vec(nonzero_values(n, 2), [n]).unwrap();
    let one = on_threads(1, || dropout(&t, 0.3, 42).unwrap().to_vec());
    let two = on_threads(2, || dropout(&t, 0.3, 42).unwrap().to_vec());
    assert!(one == two, "masks differ between 1 and 2 threads");
    let other = dropout(&t, 0.3, 43).unwrap().to_vec();
    let differing = one
        .iter()
        .zip(&other)
        .filter(|(a, b)| (**a == 0.0) != (**b == 0.0))
        .count();
    // Two independent masks disagree on 2 * 0.3 * 0.7 = 42% of elements.
    assert!(
        differing > n / 3,
        "seeds 42 and 43 give near-identical masks"
    );
}

#[test]
fn backward_applies_the_same_mask_and_scale() {
    let n = 100_000;
    let x = Tensor::from_vec(nonzero_values(n, 3), [n])
        .unwrap()
        .into_leaf();
    let p = 0.25;
    let y = dropout(&x, p, 5).unwrap();
    let up = nonzero_values(n, 4);
    y.backward_with(Buffer::from_slice(&up)).unwrap();
    let g = x.grad().unwrap();
    let scale = 1.0f32 / (1.0 - p);
    for i in 0..n {
        let expected = if y.data()[i] == 0.0 {
            0.0
        } else {
            up[i] * scale
        };
        assert_eq!(g[i], expected, "index {i}");
    }
}

#[test]
fn zero_probability_returns_the_same_tensor() {
    let x = Tensor::from_vec(vec![1.0, 2.0], [2]).unwrap().into_leaf();
    let y = dropout(&x, 0.0, 1).unwrap();
    assert!(Arc::ptr_eq(&x.inner, &y.inner));
}

#[test]
fn rejects_probabilities_outside_zero_one() {
    let x = Tensor::zeros([3]);
    for p in [1.0, 1.5, -0.1, f32::NAN] {
        let e = dropout(&x, p, 0).unwrap_err().to_string();
        assert!(e.contains("dropout") && e.contains("[0, 1)"), "{e}");
    }
}
