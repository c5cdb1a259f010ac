//! The `parnet` binary: the commands work end to end, and bad input gives a clear message and a
//! non-zero exit, never a panic.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use common::{
    assert_clean_failure, parnet, parnet_json, save_model, tiny_parnet_cifar,
    tiny_parnet_cifar_spec,
};
use parnet_core::io::{read_tensors, write_tensors};
use parnet_core::nn::state::NamedTensor;
use parnet_core::nn::testing::perturb_batch_norms;

#[test]
fn info_reports_counts_depth_and_shapes_as_json() {
    let v = parnet_json(&["info", "--model", "parnet-s", "--json"]);
    assert_eq!(v["params_train"], 20_930_936);
    assert_eq!(v["params_fused"], 19_128_980);
    assert_eq!(v["depth"], 12);
    let text =
        String::from_utf8(parnet(&["info", "--model", "parnet-cifar", "--classes", "100"]).stdout)
            .unwrap();
    assert!(
        text.contains("22474212") && text.contains("depth: 12"),
        "{text}"
    );
}

#[test]
fn bench_train_times_every_width_and_batch_case() {
    let cases = parnet_json(&[
        "bench",
        "train",
        "--model",
        "parnet-cifar",
        "--width-mult",
        "0.125,0.25",
        "--batch",
        "2,3",
        "--image-size",
        "16",
        "--warmup",
        "0",
        "--steps",
        "1",
        "--threads",
        "1",
        "--json",
    ]);
    let cases = cases.as_array().expect("a JSON array of cases");
    let got: Vec<(f64, u64)> = cases
        .iter()
        .map(|c| {
            (
                c["width_mult"].as_f64().unwrap(),
                c["batch"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(0.125, 2), (0.125, 3), (0.25, 2), (0.25, 3)]);
    assert_eq!(cases[2]["params"], 1_408_362);
    assert!(
        cases
            .iter()
            .all(|c| c["images_per_s"].as_f64().unwrap() > 0.0)
    );
    assert_clean_failure(
        &parnet(&["bench", "train", "--model", "resnet-7", "--steps", "1"]),
        "resnet-7",
    );
}

#[test]
fn fuse_then_infer_gives_the_same_logits_as_the_training_weights() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let model = tiny_parnet_cifar();
    perturb_batch_norms(model.as_ref(), 4);
    save_model(
        model.as_ref(),
        &tiny_parnet_cifar_spec(),
        &p("w.safetensors"),
    );
    let input = NamedTensor {
        name: "input".into(),
        shape: vec![2, 3, 32, 32],
        data: (0..6144)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect(),
        integer: false,
    };
    write_tensors(&p("x.safetensors"), &[input], &HashMap::new()).unwrap();
    let s = |path: &Path| path.to_str().unwrap().to_string();
    let common = ["--model", "parnet-cifar", "--width-mult", "0.0625"];
    let ok = |o: Output| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut fuse = vec!["fuse".to_string()];
    fuse.extend(common.iter().map(|a| a.to_string()));
    fuse.extend([
        "--weights".into(),
        s(&p("w.safetensors")),
        "--output".into(),
        s(&p("deploy.safetensors")),
    ]);
    ok(parnet(&fuse.iter().map(String::as_str).collect::<Vec<_>>()));
    for (weights, out, fused) in [
        ("w.safetensors", "y1.safetensors", false),
        ("deploy.safetensors", "y2.safetensors", false),
        ("w.safetensors", "y3.safetensors", true),
    ] {
        let mut args = vec!["infer".to_string()];
        args.extend(common.iter().map(|a| a.to_string()));
        args.extend([
            "--weights".into(),
            s(&p(weights)),
            "--input".into(),
            s(&p("x.safetensors")),
            "--output".into(),
            s(&p(out)),
        ]);
        if fused {
            args.push("--fused".into());
        }
        ok(parnet(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    let logits = |name: &str| read_tensors(&p(name)).unwrap().0.remove(0);
    let (a, b, c) = (
        logits("y1.safetensors"),
        logits("y2.safetensors"),
        logits("y3.safetensors"),
    );
    assert_eq!(a.name, "logits");
    assert_eq!(a.shape, vec![2, 10]);
    let scale = a.data.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for other in [&b, &c] {
        for (x, y) in a.data.iter().zip(&other.data) {
            assert!((x - y).abs() <= 1e-4 * scale + 1e-5, "{x} vs {y}");
        }
    }
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    assert_clean_failure(&parnet(&["info", "--model", "parnet-q"]), "unknown model");
    assert_clean_failure(
        &parnet(&["info", "--model", "parnet-s", "--image-size", "225"]),
        "multiple of 32",
    );
    assert_clean_failure(
        &parnet(&["info", "--model", "parnet-s", "--activation", "tanh"]),
        "unknown activation",
    );
    let missing = dir.path().join("none.safetensors");
    let m = missing.to_str().unwrap();
    assert_clean_failure(
        &parnet(&[
            "infer",
            "--model",
            "parnet-cifar",
            "--weights",
            m,
            "--input",
            m,
            "--output",
            m,
        ]),
        "none.safetensors",
    );
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"junk").unwrap();
    let j = junk.to_str().unwrap();
    assert_clean_failure(
        &parnet(&[
            "fuse",
            "--model",
            "parnet-cifar",
            "--weights",
            j,
            "--output",
            m,
        ]),
        "junk.safetensors",
    );
    assert_clean_failure(
        &parnet(&[
            "bench",
            "latency",
            "--model",
            "parnet-s",
            "--image-size",
            "100",
            "--runs",
            "1",
        ]),
        "multiples of 32",
    );
    assert_clean_failure(&parnet(&["train", "--config", m]), "none.safetensors");
    assert_clean_failure(
        &parnet(&["eval", "--checkpoint", m, "--data", m]),
        "does not exist",
    );
    assert_clean_failure(&parnet(&["data", "inspect", m]), "none.safetensors");
}
