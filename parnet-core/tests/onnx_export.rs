//! The ONNX export run by tract (a pure-Rust ONNX runtime, independent of ours) on every kind
//! of registry network, exported from both forms, with a dynamic and a fixed batch: its logits
//! match the executor's (deploy weights) and the training graph's eval forward (training
//! weights) within 1e-5 relative. The ignored test writes the same cases (file, input and our
//! logits) for `tools/check_onnx.py`, which checks them with `onnx.checker` and ONNX Runtime.

use std::collections::HashMap;

use parnet_core::Tensor;
use parnet_core::exec::ExecOptions;
use parnet_core::io::write_tensors;
use parnet_core::models::{Network, NetworkSpec, example_names};
use parnet_core::nn::Ctx;
use parnet_core::nn::state::NamedTensor;
use parnet_core::nn::testing::perturb_batch_norms;
use parnet_core::onnx::{OnnxBatch, OnnxExport, export_onnx};
use parnet_core::testing::{random_values, to_f32};
use tract_onnx::prelude::{Datum, Framework, InferenceFact, InferenceModelExt, tvec};

/// Every registry name at a tiny width, with its input size (ImageNet layouts at 64x64).
fn tiny_specs() -> Vec<(NetworkSpec, usize)> {
    example_names()
        .into_iter()
        .map(|name| {
            let mut spec = NetworkSpec::new(&name, 10);
            if name.starts_with("parnet") || name.starts_with("sequential") {
                spec.width_mult = Some(0.0625);
            }
            let imagenet = name.starts_with("parnet") && name != "parnet-cifar";
            (spec, if imagenet { 64 } else { 32 })
        })
        .collect()
}

/// Runs the ONNX file at `path` in tract on `x` (`[N, 3, H, W]`).
fn tract_logits(path: &std::path::Path, x: &Tensor) -> Vec<f32> {
    let dims = x.dims().to_vec();
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), &dims))
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = tract_onnx::prelude::Tensor::from_shape(&dims, x.data()).unwrap();
    let out = model.run(tvec!(input.into())).unwrap();
    out[0]
        .to_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

/// The largest `|a - b|` over the largest `|b|`.
fn relative_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// One export: a network in one form, the input it is run on and our logits for it.
struct Case {
    name: String,
    export: OnnxExport,
    input: Tensor,
    want: Tensor,
}

/// Every registry network exported from the training form and from the deploy form (dynamic
/// batch), and from the deploy form with a fixed batch of 2, written into `dir`; `f(case, path)`
/// is called on each.
fn for_each_case(dir: &std::path::Path, mut f: impl FnMut(&Case, &std::path::Path)) {
    for (k, (spec, size)) in tiny_specs().into_iter().enumerate() {
        let train = spec.build(k as u64).unwrap();
        perturb_batch_norms(train.as_ref(), 100 + k as u64);
        let deploy = train.deploy().unwrap();
        let input = Tensor::from_vec(
            to_f32(&random_values(2 * 3 * size * size, 1.0, 200 + k as u64)),
            [2, 3, size, size],
        )
        .unwrap();
        let from_training_form = train.forward(&input, Ctx::eval()).unwrap();
        let mut exec = deploy
            .executor(2, (size, size), &ExecOptions::default())
            .unwrap();
        let from_executor = exec.forward(&input).unwrap();
        let forms: [(&str, &dyn Network, OnnxBatch, &Tensor); 3] = [
            (
                "train",
                train.as_ref(),
                OnnxBatch::Dynamic,
                &from_training_form,
            ),
            (
                "deploy",
                deploy.as_ref(),
                OnnxBatch::Dynamic,
                &from_executor,
            ),
            (
                "deploy-b2",
                deploy.as_ref(),
                OnnxBatch::Fixed(2),
                &from_executor,
            ),
        ];
        for (form, net, batch, want) in forms {
            let case = Case {
                name: format!("{}-{form}", spec.name),
                export: OnnxExport {
                    image_size: (size, size),
                    batch,
                    metadata: HashMap::from([("form".to_string(), form.to_string())]),
                },
                input: input.clone(),
                want: want.clone(),
            };
            let path = dir.join(format!("{}.onnx", case.name));
            export_onnx(net, &case.export, &path).unwrap();
            f(&case, &path);
        }
    }
}

#[test]
fn tract_runs_every_exported_network_as_we_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut worst = (0.0f32, String::new());
    for_each_case(dir.path(), |case, path| {
        let got = tract_logits(path, &case.input);
        let err = relative_error(&got, case.want.data());
        assert!(err <= 1e-5, "{}: relative error {err}", case.name);
        if err > worst.0 {
            worst = (err, case.name.clone());
        }
    });
    println!(
        "worst relative error against tract: {:e} ({})",
        worst.0, worst.1
    );
}

fn named(name: &str, t: &Tensor) -> NamedTensor {
    NamedTensor {
        name: name.into(),
        shape: t.dims().to_vec(),
        data: t.data().to_vec(),
        integer: false,
    }
}

/// Writes every case into `$PARNET_ONNX_CASES`: `<case>.onnx` and `<case>.io.safetensors`
/// (`input`, and `logits`, ours). `.ci/run` runs it, then `tools/check_onnx.py` on the folder.
#[test]
#[ignore = "writes the cases of tools/check_onnx.py into $PARNET_ONNX_CASES"]
fn write_cases_for_onnx_runtime() {
    let dir = std::path::PathBuf::from(
        std::env::var("PARNET_ONNX_CASES").expect("PARNET_ONNX_CASES names a folder"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let mut count = 0;
    for_each_case(&dir, |case, _| {
        let io = dir.join(format!("{}.io.safetensors", case.name));
        write_tensors(
            &io,
            &[named("input", &case.input), named("logits", &case.want)],
            &HashMap::new(),
        )
        .unwrap();
        count += 1;
    });
    println!("wrote {count} cases to {}", dir.display());
}
