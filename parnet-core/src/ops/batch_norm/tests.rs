use super::*;
use crate::autograd::BackwardOp;
use crate::testing::*;
use proptest::prelude::*;

const EPS: f32 = 1e-5;

fn tensor(values: &[f64], dims: &[usize]) -> Tensor {
    Tensor::from_vec(to_f32(values), dims.to_vec()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Forward and batch statistics vs the f64 reference; M = N*H*W >= 4, data off-centre.
    #[test]
    fn train_forward_matches_reference(n in 2usize..5, c in 1usize..5, h in 1usize..6, w in 2usize..7,
                                       offset in -6.0f64..6.0, seed in any::<u64>()) {
        let dims = [n, c, h, w];
        let x = shifted_values(n * c * h * w, 2.0, offset, seed);
        let gamma = random_values(c, 1.5, seed + 1);
        let beta = random_values(c, 1.0, seed + 2);
        let (y, stats) = batch_norm2d_train(&tensor(&x, &dims), &tensor(&gamma, &[c]),
            &tensor(&beta, &[c]), EPS).unwrap();
        let reference = batch_norm2d_train_reference(&x, dims, &gamma, &beta, EPS as f64);
        assert_close("batch_norm2d_train", y.data(), &reference, 1e-4, 1e-4);
        let (mean, var_unbiased) = batch_stats_reference(&x, dims);
        assert_close("batch mean", &stats.mean, &mean, 1e-6, 1e-6);
        assert_close("batch var_unbiased", &stats.var_unbiased, &var_unbiased, 1e-5, 1e-6);
    }

    /// Gradients to x (through the batch statistics), gamma and beta vs finite differences of
    /// the f64 reference, default tolerances (rtol 1e-3, atol 1e-4 of the largest gradient).
    #[test]
    fn train_backward_matches_finite_differences(n in 2usize..4, c in 1usize..3, h in 1usize..4,
                                                 w in 2usize..4, offset in -3.0f64..3.0, seed in any::<u64>()) {
        let dims = [n, c, h, w];
        let x = shifted_values(n * c * h * w, 2.0, offset, seed);
        let gamma = random_values(c, 1.5, seed + 1);
        let beta = random_values(c, 1.0, seed + 2);
        check_gradients("batch_norm2d_train",
            &[GradInput::new(x, &dims), GradInput::new(gamma, &[c]), GradInput::new(beta, &[c])],
            |t| batch_norm2d_train(&t[0], &t[1], &t[2], EPS).unwrap().0,
            |v| batch_norm2d_train_reference(&v[0], dims, &v[1], &v[2], EPS as f64),
            GradTolerance::default(), seed);
    }

    #[test]
    fn eval_forward_and_backward_match_reference(n in 1usize..4, c in 1usize..4, h in 1usize..4,
                                                 w in 1usize..4, seed in any::<u64>()) {
        let dims = [n, c, h, w];
        let x = random_values(n * c * h * w, 3.0, seed);
        let gamma = random_values(c, 1.5, seed + 1);
        let beta = random_values(c, 1.0, seed + 2);
        let mean = random_values(c, 1.0, seed + 3);
        // Running variances in [0.1, 2.1), rounded to f32 as the op sees them.
        let var: Vec<f64> = random_values(c, 1.0, seed + 4).iter().map(|v| ((v + 1.1) as f32) as f64).collect();
        let (mean32, var32) = (to_f32(&mean), to_f32(&var));
        let y = batch_norm2d_eval(&tensor(&x, &dims), &tensor(&gamma, &[c]), &tensor(&beta, &[c]),
            &mean32, &var32, EPS).unwrap();
        let reference = |v: &[Vec<f64>]| {
            batch_norm2d_eval_reference(&v[0], dims, &v[1], &v[2], &mean, &var, EPS as f64)
        };
        assert_close("batch_norm2d_eval", y.data(), &reference(&[x.clone(), gamma.clone(), beta.clone()]), 1e-5, 1e-5);
        check_gradients("batch_norm2d_eval",
            &[GradInput::new(x.clone(), &dims), GradInput::new(gamma.clone(), &[c]), GradInput::new(beta.clone(), &[c])],
            |t| batch_norm2d_eval(&t[0], &t[1], &t[2], &mean32, &var32, EPS).unwrap(),
            reference, GradTolerance::default(), seed);
        // Only x wants a gradient (frozen affine parameters): the kernel skips the reductions.
        check_gradients("batch_norm2d_eval (x only)",
            &[GradInput::new(x, &dims), GradInput::constant(gamma, &[c]), GradInput::constant(beta, &[c])],
            |t| batch_norm2d_eval(&t[0], &t[1], &t[2], &mean32, &var32, EPS).unwrap(),
            reference, GradTolerance::default(), seed);
    }
}

/// Data far off-centre (mean ~1000, spread ~0.01, first value an outlier for one channel):
/// statistics and outputs stay accurate because the mean is carried in two f32 parts.
#[test]
fn off_centre_data_keeps_statistics_and_outputs_accurate() {
    let (n, c, h, w) = (4, 2, 5, 5);
    let dims = [n, c, h, w];
    let mut x = shifted_values(n * c * h * w, 0.01, 1000.0, 31);
    x[0] = 1000.5; // channel 0 starts with an outlier (the moments' shift)
    let gamma = vec![1.0; c];
    let beta = vec![0.0; c];
    let (y, stats) = batch_norm2d_train(
        &tensor(&x, &dims),
        &tensor(&gamma, &[c]),
        &tensor(&beta, &[c]),
        EPS * 1e-6,
    )
    .unwrap();
    let (mean, var_unbiased) = batch_stats_reference(&x, dims);
    assert_close("mean", &stats.mean, &mean, 1e-7, 0.0);
    assert_close(
        "var_unbiased",
        &stats.var_unbiased,
        &var_unbiased,
        1e-5,
        0.0,
    );
    let reference = batch_norm2d_train_reference(&x, dims, &gamma, &beta, EPS as f64 * 1e-6);
    assert_close("normalised", y.data(), &reference, 1e-5, 1e-5);
}

/// The two terms that come from differentiating through the batch statistics make `dx` orthogonal
/// to both the constant and `xhat` per channel; dropping either term breaks one of these.
#[test]
fn train_input_gradient_is_orthogonal_to_one_and_xhat() {
    let (n, c, h, w) = (3, 4, 5, 6);
    let dims = [n, c, h, w];
    let x = shifted_values(n * c * h * w, 2.0, 1.5, 11);
    let xt = tensor(&x, &dims).into_leaf();
    let gamma = tensor(&random_values(c, 1.5, 12), &[c]);
    let beta = tensor(&random_values(c, 1.0, 13), &[c]);
    let (y, stats) = batch_norm2d_train(&xt, &gamma, &beta, EPS).unwrap();
    y.backward_with(Buffer::from_vec(to_f32(&random_values(y.numel(), 1.0, 14))))
        .unwrap();
    let dx = xt.grad().unwrap();
    let var_unbiased = batch_stats_reference(&x, dims).1;
    let hw = h * w;
    for (ch, &var_unbiased) in var_unbiased.iter().enumerate() {
        let m = (n * hw) as f64;
        let var_biased = var_unbiased * (m - 1.0) / m;
        let invstd = 1.0 / (var_biased + EPS as f64).sqrt();
        let (mut s, mut s_abs, mut d, mut d_abs) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for i in 0..n {
            for p in 0..hw {
                let k = (i * c + ch) * hw + p;
                let xhat = (x[k] - stats.mean[ch] as f64) * invstd;
                s += dx[k] as f64;
                s_abs += (dx[k] as f64).abs();
                d += dx[k] as f64 * xhat;
                d_abs += (dx[k] as f64 * xhat).abs();
            }
        }
        assert!(
            s.abs() <= 1e-5 * s_abs,
            "channel {ch}: sum(dx) = {s} (sum |dx| = {s_abs})"
        );
        assert!(
            d.abs() <= 1e-4 * d_abs,
            "channel {ch}: sum(dx * xhat) = {d} ({d_abs})"
        );
    }
}

/// PyTorch semantics by hand: one channel holding [1, 2, 3, 4] has mean 2.5, biased variance
/// 1.25 and unbiased variance 5/3; with momentum 0.1 from (0, 1): mean 0.25, var 0.9 + 1/6.
#[test]
fn running_stats_follow_pytorch_with_unbiased_variance() {
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 1, 1, 2]).unwrap();
    let ones = Tensor::from_vec(vec![1.0], [1]).unwrap();
    let zeros = Tensor::from_vec(vec![0.0], [1]).unwrap();
    let (y, stats) = batch_norm2d_train(&x, &ones, &zeros, 0.0).unwrap();
    assert_eq!(stats.mean, vec![2.5]);
    assert!((stats.var_unbiased[0] - 5.0 / 3.0).abs() < 1e-7);
    let expected_y = [-1.5, -0.5, 0.5, 1.5].map(|v: f64| v / 1.25f64.sqrt());
    assert_close("normalised", y.data(), &expected_y, 1e-6, 1e-6);
    let (mut rm, mut rv) = (vec![0.0f32], vec![1.0f32]);
    update_running_stats(&mut rm, &mut rv, &stats, 0.1);
    assert!((rm[0] - 0.25).abs() < 1e-7, "{rm:?}");
    assert!(
        (rv[0] - (0.9 + 0.1 * 5.0 / 3.0) as f32).abs() < 1e-7,
        "{rv:?}"
    );
    // A second step blends again from the updated values.
    update_running_stats(&mut rm, &mut rv, &stats, 0.1);
    assert!((rm[0] - (0.9 * 0.25 + 0.25) as f32).abs() < 1e-6, "{rm:?}");
}

#[test]
fn results_are_bit_identical_on_one_and_two_threads() {
    let dims = [3usize, 6, 7, 9];
    let x = shifted_values(dims.iter().product(), 2.0, 0.5, 21);
    let g = random_values(6, 1.5, 22);
    let b = random_values(6, 1.0, 23);
    let up = to_f32(&random_values(x.len(), 1.0, 24));
    let run = || {
        let xt = tensor(&x, &dims).into_leaf();
        let (gt, bt) = (tensor(&g, &[6]).into_leaf(), tensor(&b, &[6]).into_leaf());
        let (y, stats) = batch_norm2d_train(&xt, &gt, &bt, EPS).unwrap();
        y.backward_with(Buffer::from_slice(&up)).unwrap();
        let ye = batch_norm2d_eval(&xt, &gt, &bt, &stats.mean, &stats.var_unbiased, EPS).unwrap();
        let grads = [xt.grad(), gt.grad(), bt.grad()].map(|g| g.unwrap().into_vec());
        (y.to_vec(), ye.to_vec(), stats, grads)
    };
    let one = on_threads(1, run);
    let two = on_threads(2, run);
    assert!(one == two, "1-thread and 2-thread results differ");
}

#[test]
fn rejects_bad_shapes_and_arguments() {
    let x = Tensor::zeros([2, 3, 4, 4]);
    let g3 = Tensor::zeros([3]);
    let g4 = Tensor::zeros([4]);
    let err = |r: Result<Tensor>| r.unwrap_err().to_string();
    let e = err(batch_norm2d_train(&Tensor::zeros([2, 3, 4]), &g3, &g3, EPS).map(|r| r.0));
    assert!(e.contains("[N, C, H, W]") && e.contains("[2, 3, 4]"), "{e}");
    let e = err(batch_norm2d_train(&x, &g4, &g3, EPS).map(|r| r.0));
    assert!(e.contains("[2, 3, 4, 4]") && e.contains("[4]"), "{e}");
    let e = err(batch_norm2d_train(&Tensor::zeros([1, 3, 1, 1]), &g3, &g3, EPS).map(|r| r.0));
    assert!(e.contains("more than 1 value"), "{e}");
    let e = err(batch_norm2d_train(&x, &g3, &g3, -1.0).map(|r| r.0));
    assert!(e.contains("eps"), "{e}");
    let e = err(batch_norm2d_eval(&x, &g3, &g3, &[0.0; 3], &[1.0; 2], EPS));
    assert!(e.contains("running_var"), "{e}");
    let e = err(batch_norm2d_eval(
        &x,
        &g3,
        &g3,
        &[0.0; 3],
        &[1.0, -1.0, 1.0],
        EPS,
    ));
    assert!(e.contains("positive"), "{e}");
}

/// Timing at a ParNet-sized activation (memory-bound) and at a cache-resident one:
/// `cargo test -p parnet-core batch_norm_timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn batch_norm_timing() {
    time_batch_norm([64, 128, 32, 32], 10);
    time_batch_norm([8, 4, 32, 32], 1000);
}

fn time_batch_norm(dims: [usize; 4], reps: usize) {
    let (len, c) = (dims.iter().product::<usize>(), dims[1]);
    println!("{dims:?}:");
    let x = Tensor::from_vec(
        (0..len)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3)
            .collect(),
        dims,
    )
    .unwrap()
    .into_leaf();
    let g = Tensor::from_vec(vec![1.0; c], [c]).unwrap().into_leaf();
    let b = Tensor::zeros([c]).into_leaf();
    let up = Buffer::filled(len, 0.5);
    let time = |what: &str, f: &mut dyn FnMut()| {
        f();
        let t = std::time::Instant::now();
        for _ in 0..reps {
            f();
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        println!(
            "  {what}: {ms:.3} ms ({:.1} GB/s of x)",
            len as f64 * 4.0 / ms / 1e6
        );
    };
    time("copy (baseline)", &mut || {
        drop(Buffer::from_slice(x.data()))
    });
    time("train forward", &mut || {
        drop(batch_norm2d_train(&x.detach(), &g.detach(), &b.detach(), EPS).unwrap())
    });
    time("train forward + backward", &mut || {
        let (y, _) = batch_norm2d_train(&x, &g, &b, EPS).unwrap();
        y.backward_with(up.clone()).unwrap();
    });
    let (y, _) = batch_norm2d_train(&x, &g, &b, EPS).unwrap();
    let op = BatchNormBackward {
        mean: vec![0.5; c],
        mean_lo: vec![0.0; c],
        invstd: vec![1.0; c],
        through_stats: true,
        count: x.numel() as f64 / c as f64,
        sync: None,
    };
    let inputs = [x.clone(), g.clone(), b.clone()];
    let ctx = crate::autograd::BackwardCtx {
        inputs: &inputs,
        output: &y,
        grad_output: &up,
        needs: &[true, true, true],
    };
    time("train backward kernel", &mut || drop(op.backward(&ctx)));
    let (rm, rv) = (vec![0.1; c], vec![1.0; c]);
    time("eval forward", &mut || {
        drop(batch_norm2d_eval(&x.detach(), &g.detach(), &b.detach(), &rm, &rv, EPS).unwrap())
    });
}
