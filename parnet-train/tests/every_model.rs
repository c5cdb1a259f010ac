//! One model door: every subcommand that names a network (`info`, `bench latency`, `bench train`,
//! `train`, `fuse`, `infer`, `eval`, `study`) takes every network of the registry, through the
//! same `--model/--width-mult/--classes/--activation` arguments; the weight-file commands also
//! find the network in the file's metadata alone. Tiny widths where the network has a width
//! multiplier, 32x32 inputs, a tiny synthetic data set.

use std::path::Path;
use std::process::{Command, Output};

use parnet_core::io::{read_tensors, write_tensors};
use parnet_core::models::example_names;
use parnet_core::nn::state::NamedTensor;

fn parnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parnet"))
        .args(args)
        .output()
        .expect("run parnet")
}

fn ok(args: &[&str]) -> String {
    let out = parnet(args);
    assert!(
        out.status.success(),
        "parnet {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).unwrap()
}

/// The model arguments of `name`: a tiny width where the name takes one.
fn model_args(name: &str) -> Vec<String> {
    let mut args = vec!["--model".to_string(), name.to_string()];
    if name.starts_with("parnet") || name.starts_with("sequential") {
        args.extend(["--width-mult".to_string(), "0.0625".to_string()]);
    }
    args
}

/// A training config on 64 synthetic images (32 validation), batches of 16, one epoch.
fn tiny_config(dir: &Path) -> String {
    let path = dir.join("tiny.toml");
    let text = r#"
[model]
name = "parnet-cifar"

[data]
source = "synthetic"
synthetic_train = 64
synthetic_val = 32
augment = "cifar"

[optim]
lr = 0.05

[schedule]
kind = "cosine"

[train]
epochs = 1
batch_size = 16
eval_batch_size = 32
threads = 2
out = "unused"
"#;
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn logits(path: &Path) -> Vec<f32> {
    let (tensors, _) = read_tensors(path).unwrap();
    tensors
        .into_iter()
        .find(|t| t.name == "logits")
        .unwrap()
        .data
}

#[test]
fn every_subcommand_takes_every_registry_network() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path());
    let input = tmp.path().join("input.safetensors");
    let values: Vec<f32> = (0..2 * 3 * 32 * 32)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let image = NamedTensor {
        name: "input".into(),
        shape: vec![2, 3, 32, 32],
        data: values,
        integer: false,
    };
    write_tensors(&input, &[image], &Default::default()).unwrap();
    let input = input.to_str().unwrap();
    let names = example_names();
    assert!(names.len() >= 13, "{names:?}");
    for name in &names {
        let m = model_args(name);
        let m: Vec<&str> = m.iter().map(String::as_str).collect();
        let with = |cmd: &[&str], rest: &[&str]| -> Vec<String> {
            cmd.iter()
                .chain(&m)
                .chain(rest)
                .map(|s| s.to_string())
                .collect()
        };
        let run_json =
            |args: Vec<String>| json(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let run_ok = |args: Vec<String>| ok(&args.iter().map(String::as_str).collect::<Vec<_>>());

        let info = run_json(with(&["info"], &["--image-size", "32", "--json"]));
        assert_eq!(info["model"], name.as_str());
        assert!(info["depth"].as_u64().unwrap() >= 8, "{name}: {info}");
        assert!(
            info["params_fused"].as_u64() < info["params_train"].as_u64(),
            "{name}"
        );

        let latency = run_json(with(
            &["bench", "latency"],
            &[
                "--image-size",
                "32",
                "--runs",
                "1",
                "--warmup",
                "0",
                "--fused",
                "--json",
            ],
        ));
        assert!(latency["median_ms"].as_f64().unwrap() > 0.0, "{name}");

        let step = run_json(with(
            &["bench", "train"],
            &[
                "--image-size",
                "32",
                "--batch",
                "2",
                "--steps",
                "1",
                "--warmup",
                "0",
                "--json",
            ],
        ));
        assert!(step[0]["images_per_s"].as_f64().unwrap() > 0.0, "{name}");

        let run = tmp.path().join(name);
        let run_dir = run.to_str().unwrap();
        run_ok(with(
            &["train", "--config", &config],
            &["--out", run_dir, "--quiet"],
        ));
        let checkpoint = run.join("last.safetensors");
        let checkpoint = checkpoint.to_str().unwrap();

        // The weight-file commands read the network from the file's metadata ...
        let deploy = run.join("deploy.safetensors");
        let deploy = deploy.to_str().unwrap();
        run_ok(vec![
            "fuse".into(),
            "--weights".into(),
            checkpoint.into(),
            "--output".into(),
            deploy.into(),
        ]);
        let out_train = run.join("train_logits.safetensors");
        let out_deploy = run.join("deploy_logits.safetensors");
        for (weights, out) in [(checkpoint, &out_train), (deploy, &out_deploy)] {
            ok(&[
                "infer",
                "--weights",
                weights,
                "--input",
                input,
                "--output",
                out.to_str().unwrap(),
            ]);
        }
        let (a, b) = (logits(&out_train), logits(&out_deploy));
        assert_eq!(a.len(), 20, "{name}");
        let scale = a.iter().fold(1e-3f32, |s, v| s.max(v.abs()));
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() <= 1e-3 * scale, "{name}: {u} vs {v}");
        }
        // ... or take it from the same arguments as every other command.
        run_ok(with(
            &["infer"],
            &[
                "--weights",
                checkpoint,
                "--input",
                input,
                "--output",
                out_train.to_str().unwrap(),
                "--fused",
            ],
        ));
        let eval = run_json(with(
            &["eval"],
            &["--checkpoint", deploy, "--held-out", "--json"],
        ));
        assert_eq!(eval["images"], 32, "{name}");
    }
    // The depth study takes any network as the reference whose multiply-adds the sweep matches.
    for name in ["resnet-20", "sweep-s2-b3-w16", "parnet-s"] {
        let m = model_args(name);
        let out = tmp.path().join(format!("study-{name}"));
        let mut args = vec![
            "study",
            "depth",
            "--quick",
            "--no-baselines",
            "--latency-repeats",
            "1",
        ];
        args.extend(["--batch", "1", "--out", out.to_str().unwrap()]);
        args.extend(m.iter().map(String::as_str));
        ok(&args);
        assert!(out.join("depth_study.csv").exists(), "{name}");
    }
}
