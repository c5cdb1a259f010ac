//! Golden tests: our conv2d, batch norm and cross-entropy against numbers computed by PyTorch.
//!
//! The fixtures in `tests/fixtures/*.safetensors` are made by `tools/make_golden.py` (see
//! `tools/README.md`; CI needs no Python). PyTorch computed every expected output and gradient in
//! float64 from float32 inputs, rounded once to float32, so the only error being measured is ours.
//!
//! Tolerance: `got` passes against `want` when `|got - want| <= atol * max(1, max|want|) +
//! rtol * |want|` element-wise, with `(rtol, atol)` = [`FORWARD`] for outputs and [`GRADIENT`]
//! for gradients. PyTorch's own float32 results stay within 9e-6 (absolute) of these fixtures.

use std::collections::HashMap;
use std::path::PathBuf;

use parnet_core::ops::batch_norm::{batch_norm2d_eval, batch_norm2d_train, update_running_stats};
use parnet_core::ops::conv2d::{Conv2dParams, conv2d};
use parnet_core::ops::loss::cross_entropy;
use parnet_core::{Buffer, Tensor};
use safetensors::{Dtype, SafeTensors};

/// (rtol, atol) for forward outputs.
const FORWARD: (f64, f64) = (1e-4, 2e-5);
/// (rtol, atol) for gradients (longer accumulations than the forward).
const GRADIENT: (f64, f64) = (2e-4, 5e-5);

/// One fixture file: its tensors (f32 or i64, decoded) and its string metadata.
struct Fixture {
    file: &'static str,
    f32s: HashMap<String, (Vec<f32>, Vec<usize>)>,
    i64s: HashMap<String, Vec<i64>>,
    metadata: HashMap<String, String>,
}

impl Fixture {
    fn load(file: &'static str) -> Fixture {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", file]
            .iter()
            .collect();
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run tools/make_golden.py)", path.display()));
        let (_, header) = SafeTensors::read_metadata(&bytes).expect("safetensors header");
        let metadata = header.metadata().clone().unwrap_or_default();
        let tensors = SafeTensors::deserialize(&bytes).expect("safetensors file");
        let mut f32s = HashMap::new();
        let mut i64s = HashMap::new();
        for (name, view) in tensors.tensors() {
            let data = view.data();
            match view.dtype() {
                Dtype::F32 => {
                    let values = data
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                        .collect();
                    f32s.insert(name, (values, view.shape().to_vec()));
                }
                Dtype::I64 => {
                    let values = data
                        .chunks_exact(8)
                        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                        .collect();
                    i64s.insert(name, values);
                }
                other => panic!("{file}: {name}: unexpected dtype {other:?}"),
            }
        }
        Fixture {
            file,
            f32s,
            i64s,
            metadata,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.f32s.contains_key(name)
    }

    fn values(&self, name: &str) -> &[f32] {
        &self.get(name).0
    }

    fn get(&self, name: &str) -> &(Vec<f32>, Vec<usize>) {
        self.f32s
            .get(name)
            .unwrap_or_else(|| panic!("{}: no f32 tensor {name}", self.file))
    }

    /// A tensor that records its gradient.
    fn leaf(&self, name: &str) -> Tensor {
        let (values, shape) = self.get(name);
        Tensor::from_vec(values.clone(), shape.clone())
            .expect("fixture tensor")
            .into_leaf()
    }

    fn targets(&self, name: &str) -> Vec<usize> {
        self.i64s
            .get(name)
            .unwrap_or_else(|| panic!("{}: no i64 tensor {name}", self.file))
            .iter()
            .map(|&t| usize::try_from(t).expect("non-negative target"))
            .collect()
    }

    fn meta(&self, key: &str) -> &str {
        self.metadata
            .get(key)
            .unwrap_or_else(|| panic!("{}: no metadata {key}", self.file))
    }

    fn cases(&self) -> Vec<String> {
        self.meta("cases").split(',').map(str::to_owned).collect()
    }

    /// Parses metadata of the form `"a=1,b=2"` for `key`.
    fn meta_fields(&self, key: &str) -> HashMap<String, f64> {
        self.meta(key)
            .split(',')
            .map(|field| {
                let (k, v) = field.split_once('=').expect("key=value");
                (k.to_owned(), v.parse().expect("number"))
            })
            .collect()
    }
}

/// Element-wise `|got - want| <= atol * max(1, max|want|) + rtol * |want|`; on failure names the
/// worst element, the first bad one and how many are bad.
fn assert_close(what: &str, got: &[f32], want: &[f32], (rtol, atol): (f64, f64)) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs {}",
        got.len(),
        want.len()
    );
    let scale = want.iter().fold(1.0f64, |m, &w| m.max(f64::from(w).abs()));
    let bad: Vec<(usize, f64)> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter_map(|(i, (&g, &w))| {
            let (g, w) = (f64::from(g), f64::from(w));
            let excess = (g - w).abs() - (atol * scale + rtol * w.abs());
            // NaN counts as out of tolerance.
            (excess > 0.0 || excess.is_nan()).then_some((i, excess))
        })
        .collect();
    let max_error = got.iter().zip(want).fold(0.0f64, |m, (&g, &w)| {
        m.max((f64::from(g) - f64::from(w)).abs())
    });
    // Shown with `--nocapture`: how much of the budget the engine uses.
    println!("{what}: max |error| {max_error:.2e} (max |pytorch| {scale:.3})");
    if let Some(&(first, _)) = bad.first() {
        let (i, _) =
            bad.iter().copied().fold(
                (first, f64::NEG_INFINITY),
                |a, b| if b.1 > a.1 { b } else { a },
            );
        panic!(
            "{what}: {} of {} elements out of tolerance (rtol {rtol:e}, atol {atol:e} x {scale}); \
             worst index {i}: got {} vs pytorch {}; first index {first}: got {} vs pytorch {}",
            bad.len(),
            got.len(),
            got[i],
            want[i],
            got[first],
            want[first],
        );
    }
}

fn grad_of(what: &str, t: &Tensor) -> Buffer {
    t.grad()
        .unwrap_or_else(|| panic!("{what}: no gradient reached this input"))
}

#[test]
fn conv2d_matches_pytorch() {
    let fx = Fixture::load("conv2d.safetensors");
    let cases = fx.cases();
    assert!(
        cases.len() >= 5,
        "expected at least 5 conv cases, got {cases:?}"
    );
    for case in &cases {
        let p = fx.meta_fields(case);
        let params = Conv2dParams {
            stride: p["stride"] as usize,
            padding: p["padding"] as usize,
            groups: p["groups"] as usize,
        };
        let name = |t: &str| format!("{case}.{t}");
        let has_bias = p["bias"] != 0.0;
        assert_eq!(has_bias, fx.has(&name("b")), "{case}: bias flag vs tensors");

        let x = fx.leaf(&name("x"));
        let w = fx.leaf(&name("w"));
        let b = has_bias.then(|| fx.leaf(&name("b")));
        let y = conv2d(&x, &w, b.as_ref(), params)
            .unwrap_or_else(|e| panic!("conv2d {case} ({params:?}): {e}"));
        assert_eq!(
            y.dims(),
            &fx.get(&name("y")).1[..],
            "conv2d {case}: output shape"
        );
        assert_close(
            &format!("conv2d {case} y"),
            y.data(),
            fx.values(&name("y")),
            FORWARD,
        );

        y.backward_with(Buffer::from_slice(fx.values(&name("gy"))))
            .expect("conv2d backward");
        let gx = grad_of(&format!("conv2d {case} x"), &x);
        assert_close(
            &format!("conv2d {case} gx"),
            &gx,
            fx.values(&name("gx")),
            GRADIENT,
        );
        let gw = grad_of(&format!("conv2d {case} w"), &w);
        assert_close(
            &format!("conv2d {case} gw"),
            &gw,
            fx.values(&name("gw")),
            GRADIENT,
        );
        if let Some(b) = &b {
            let gb = grad_of(&format!("conv2d {case} b"), b);
            assert_close(
                &format!("conv2d {case} gb"),
                &gb,
                fx.values(&name("gb")),
                GRADIENT,
            );
        }
    }
}

#[test]
fn batch_norm_train_matches_pytorch() {
    let fx = Fixture::load("batch_norm.safetensors");
    let eps: f32 = fx.meta("eps").parse().expect("eps");
    let momentum: f32 = fx.meta("momentum").parse().expect("momentum");
    let x = fx.leaf("train.x");
    let gamma = fx.leaf("train.gamma");
    let beta = fx.leaf("train.beta");

    let (y, stats) = batch_norm2d_train(&x, &gamma, &beta, eps).expect("batch_norm2d_train");
    assert_close("bn train y", y.data(), fx.values("train.y"), FORWARD);
    assert_close(
        "bn train batch mean",
        &stats.mean,
        fx.values("train.mean"),
        FORWARD,
    );
    assert_close(
        "bn train batch var (unbiased)",
        &stats.var_unbiased,
        fx.values("train.var_unbiased"),
        FORWARD,
    );

    let mut running_mean = fx.values("train.running_mean_before").to_vec();
    let mut running_var = fx.values("train.running_var_before").to_vec();
    update_running_stats(&mut running_mean, &mut running_var, &stats, momentum);
    assert_close(
        "bn running_mean after",
        &running_mean,
        fx.values("train.running_mean_after"),
        FORWARD,
    );
    assert_close(
        "bn running_var after",
        &running_var,
        fx.values("train.running_var_after"),
        FORWARD,
    );

    y.backward_with(Buffer::from_slice(fx.values("train.gy")))
        .expect("bn train backward");
    let gx = grad_of("bn train x", &x);
    assert_close("bn train gx", &gx, fx.values("train.gx"), GRADIENT);
    let ggamma = grad_of("bn train gamma", &gamma);
    assert_close(
        "bn train ggamma",
        &ggamma,
        fx.values("train.ggamma"),
        GRADIENT,
    );
    let gbeta = grad_of("bn train beta", &beta);
    assert_close("bn train gbeta", &gbeta, fx.values("train.gbeta"), GRADIENT);
}

#[test]
fn batch_norm_eval_matches_pytorch() {
    let fx = Fixture::load("batch_norm.safetensors");
    let eps: f32 = fx.meta("eps").parse().expect("eps");
    let x = fx.leaf("eval.x");
    let gamma = fx.leaf("eval.gamma");
    let beta = fx.leaf("eval.beta");
    let running_mean = fx.values("eval.running_mean");
    let running_var = fx.values("eval.running_var");

    let y = batch_norm2d_eval(&x, &gamma, &beta, running_mean, running_var, eps)
        .expect("batch_norm2d_eval");
    assert_close("bn eval y", y.data(), fx.values("eval.y"), FORWARD);

    y.backward_with(Buffer::from_slice(fx.values("eval.gy")))
        .expect("bn eval backward");
    let gx = grad_of("bn eval x", &x);
    assert_close("bn eval gx", &gx, fx.values("eval.gx"), GRADIENT);
    let ggamma = grad_of("bn eval gamma", &gamma);
    assert_close(
        "bn eval ggamma",
        &ggamma,
        fx.values("eval.ggamma"),
        GRADIENT,
    );
    let gbeta = grad_of("bn eval beta", &beta);
    assert_close("bn eval gbeta", &gbeta, fx.values("eval.gbeta"), GRADIENT);
}

#[test]
fn cross_entropy_matches_pytorch() {
    let fx = Fixture::load("cross_entropy.safetensors");
    let cases = fx.cases();
    assert!(
        cases.len() >= 2,
        "expected the smoothing 0.0 and 0.1 cases, got {cases:?}"
    );
    for case in &cases {
        let smoothing = fx.meta_fields(case)["label_smoothing"] as f32;
        let logits = fx.leaf(&format!("{case}.logits"));
        let targets = fx.targets(&format!("{case}.targets"));
        let loss = cross_entropy(&logits, &targets, smoothing)
            .unwrap_or_else(|e| panic!("cross_entropy {case}: {e}"));
        let value = loss.item().expect("scalar loss");
        assert_close(
            &format!("cross_entropy {case} loss"),
            &[value],
            fx.values(&format!("{case}.loss")),
            FORWARD,
        );

        loss.backward().expect("cross_entropy backward");
        let glogits = grad_of(&format!("cross_entropy {case} logits"), &logits);
        assert_close(
            &format!("cross_entropy {case} glogits"),
            &glogits,
            fx.values(&format!("{case}.glogits")),
            GRADIENT,
        );
    }
}

/// The comparison itself must be able to fail: a perturbed fixture value is rejected.
#[test]
fn golden_comparison_rejects_a_wrong_value() {
    let fx = Fixture::load("conv2d.safetensors");
    let want = fx.values("k3s1g1.y");
    let mut got = want.to_vec();
    assert_close("identical", &got, want, FORWARD);
    got[7] += 1e-3;
    let caught = std::panic::catch_unwind(|| assert_close("perturbed", &got, want, FORWARD));
    assert!(
        caught.is_err(),
        "an error of 1e-3 must fail the forward tolerance"
    );
}
