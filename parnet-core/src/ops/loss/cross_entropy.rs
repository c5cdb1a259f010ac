//! `cross_entropy(logits, targets, label_smoothing)`: batch mean of the label-smoothed
//! cross-entropy of `log_softmax(logits)`, as `nn.CrossEntropyLoss(label_smoothing = eps)`.

use rayon::prelude::*;

use super::{log_sum_exp, log_sum_exp_reference, rows_and_classes};
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, invalid, shape_error};
use crate::tensor::{Buffer, Tensor};

/// Mean over the batch of the label-smoothed cross-entropy: `logits` `[N, K]`, `targets` `N`
/// class indices `< K`, `label_smoothing = eps` in `[0, 1)`. With `log p = log_softmax(logits)`:
/// `loss_i = (1 - eps) * (-log p[i, t_i]) + eps * mean_k(-log p[i, k])`. Returns a scalar `[]`;
/// the gradient to the logits is `(softmax - smoothed_onehot) / N`, `smoothed_onehot =
/// (1 - eps) * onehot + eps / K`.
pub fn cross_entropy(logits: &Tensor, targets: &[usize], label_smoothing: f32) -> Result<Tensor> {
    const OP: &str = "cross_entropy";
    let (n, k) = rows_and_classes(OP, logits)?;
    if n == 0 {
        return Err(shape_error(OP, "the batch is empty", &[logits.dims()]));
    }
    if targets.len() != n {
        return Err(shape_error(
            OP,
            format!("{} targets for a batch of {n}", targets.len()),
            &[logits.dims()],
        ));
    }
    if let Some((i, &t)) = targets.iter().enumerate().find(|&(_, &t)| t >= k) {
        return Err(invalid(
            OP,
            format!("target {i} is class {t}, but the logits have K = {k} classes"),
        ));
    }
    if !(0.0..1.0).contains(&label_smoothing) {
        return Err(invalid(
            OP,
            format!("label_smoothing must be in [0, 1), got {label_smoothing}"),
        ));
    }

    let eps = label_smoothing as f64;
    // Per row: (log-sum-exp, loss), in f64.
    let rows: Vec<(f64, f64)> = logits
        .data()
        .par_chunks(k)
        .zip(targets.par_iter())
        .map(|(row, &t)| {
            let lse = log_sum_exp(row);
            let mean_logit = row.iter().map(|&v| v as f64).sum::<f64>() / k as f64;
            let loss = lse - (1.0 - eps) * row[t] as f64 - eps * mean_logit;
            (lse, loss)
        })
        .collect();
    let loss = rows.iter().map(|r| r.1).sum::<f64>() / n as f64;
    Ok(Tensor::from_op(
        Buffer::from_vec(vec![loss as f32]),
        Vec::<usize>::new(),
        &[logits],
        || CrossEntropyBackward {
            log_sum_exp: rows.iter().map(|r| r.0).collect(),
            targets: targets.to_vec(),
            label_smoothing: eps,
        },
    ))
}

/// `dlogits[i, k] = g / N * (softmax[i, k] - eps / K - (1 - eps) * [k == t_i])`.
struct CrossEntropyBackward {
    log_sum_exp: Vec<f64>,
    targets: Vec<usize>,
    label_smoothing: f64,
}

impl BackwardOp for CrossEntropyBackward {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let logits = &ctx.inputs[0];
        let (n, k) = (logits.dims()[0], logits.dims()[1]);
        let scale = ctx.grad_output[0] as f64 / n as f64;
        let eps = self.label_smoothing;
        let off = eps / k as f64;
        let on = 1.0 - eps;
        let mut grad = Buffer::for_overwrite(logits.numel());
        grad.par_chunks_mut(k)
            .zip(logits.data().par_chunks(k))
            .enumerate()
            .for_each(|(i, (g, row))| {
                let (lse, t) = (self.log_sum_exp[i], self.targets[i]);
                for (j, (g, &v)) in g.iter_mut().zip(row).enumerate() {
                    let hot = if j == t { on } else { 0.0 };
                    *g = (((v as f64 - lse).exp() - off - hot) * scale) as f32;
                }
            });
        vec![Some(grad)]
    }
}

/// Plain reference of [`cross_entropy`] on a row-major `[n, k]` slice (scalar loss).
pub fn cross_entropy_reference<T: num_traits::Float>(
    logits: &[T],
    k: usize,
    targets: &[usize],
    label_smoothing: T,
) -> T {
    let n = T::from(targets.len()).unwrap();
    let k_t = T::from(k).unwrap();
    let total = logits
        .chunks(k)
        .zip(targets)
        .fold(T::zero(), |acc, (row, &t)| {
            let lse = log_sum_exp_reference(row);
            let nll_target = lse - row[t];
            let nll_mean = row.iter().fold(T::zero(), |s, &v| s + (lse - v)) / k_t;
            acc + (T::one() - label_smoothing) * nll_target + label_smoothing * nll_mean
        });
    total / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use proptest::prelude::*;

    fn logits(values: &[f64], n: usize, k: usize) -> Tensor {
        Tensor::from_vec(to_f32(values), [n, k]).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Forward vs f64 reference (rtol 1e-5, atol 1e-5), backward vs finite differences with
        /// tolerances scaled to the 1/N-sized gradients (rtol 1e-4, atol 1e-6).
        #[test]
        fn forward_and_backward_match_reference(n in 1usize..8, k in 1usize..16,
                                                eps in prop::sample::select(vec![0.0f32, 0.1, 0.6]),
                                                scale in prop::sample::select(vec![1.0f64, 20.0]),
                                                seed in any::<u64>()) {
            let x = random_values(n * k, scale, seed);
            let targets: Vec<usize> = random_values(n, 1.0, seed + 1).iter()
                .map(|v| (((v + 1.0) / 2.0 * k as f64) as usize).min(k - 1)).collect();
            let loss = cross_entropy(&logits(&x, n, k), &targets, eps).unwrap();
            prop_assert_eq!(loss.dims(), &[] as &[usize]);
            let reference = cross_entropy_reference(&x, k, &targets, eps as f64);
            assert_close("cross_entropy", loss.data(), &[reference], 1e-5, 1e-5);
            check_gradients("cross_entropy", &[GradInput::new(x, &[n, k])],
                |t| cross_entropy(&t[0], &targets, eps).unwrap(),
                |v| vec![cross_entropy_reference(&v[0], k, &targets, eps as f64)],
                GradTolerance { rtol: 1e-4, atol: 1e-6, eps: 1e-6 }, seed);
        }
    }

    /// By hand: logits [1, 2, 3], target 0: lse = ln(e + e^2 + e^3) = 3.40760596; the plain loss
    /// is lse - 1, the smoothed one (eps 0.1) is 0.9 * (lse - 1) + 0.1 * (lse - 2).
    #[test]
    fn matches_hand_computed_values() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], [1, 3]).unwrap();
        let lse = 3.40760596444438_f64;
        let plain = cross_entropy(&x, &[0], 0.0).unwrap().item().unwrap();
        assert!((plain as f64 - (lse - 1.0)).abs() < 1e-6, "{plain}");
        let smooth = cross_entropy(&x, &[0], 0.1).unwrap().item().unwrap();
        let expected = 0.9 * (lse - 1.0) + 0.1 * (lse - 2.0);
        assert!(
            (smooth as f64 - expected).abs() < 1e-6,
            "{smooth} vs {expected}"
        );
    }

    #[test]
    fn gradient_is_softmax_minus_smoothed_onehot_over_n() {
        let x = Tensor::from_vec(vec![0.0, 0.0, 0.0, 0.0], [2, 2])
            .unwrap()
            .into_leaf();
        cross_entropy(&x, &[1, 0], 0.2).unwrap().backward().unwrap();
        // softmax 0.5; smoothed onehot: 0.8 + 0.1 on the target, 0.1 elsewhere; / N = 2.
        let g = x.grad().unwrap();
        let expected = [0.2, -0.2, -0.2, 0.2];
        assert!(
            g.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-7),
            "{:?}",
            &g[..]
        );
    }

    #[test]
    fn rejects_bad_arguments() {
        let x = Tensor::zeros([2, 3]);
        let err = |r: Result<Tensor>| r.unwrap_err().to_string();
        assert!(err(cross_entropy(&x, &[0, 3], 0.0)).contains("class 3"));
        let e = err(cross_entropy(&x, &[0], 0.0));
        assert!(e.contains("1 targets") && e.contains("[2, 3]"), "{e}");
        assert!(err(cross_entropy(&x, &[0, 1], 1.0)).contains("label_smoothing"));
        assert!(err(cross_entropy(&x, &[0, 1], -0.1)).contains("label_smoothing"));
        assert!(err(cross_entropy(&x, &[0, 1], f32::NAN)).contains("label_smoothing"));
        assert!(err(cross_entropy(&Tensor::zeros([2, 3, 1]), &[0, 1], 0.0)).contains("[2, 3, 1]"));
        assert!(err(cross_entropy(&Tensor::zeros([0, 3]), &[], 0.0)).contains("empty"));
    }
}
