//! The `parnet` binary: the commands work end to end, and bad input gives a clear message and a
//! non-zero exit, never a panic.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use parnet_core::io::{read_tensors, write_tensors};
use parnet_core::models::{Network, NetworkSpec};
use parnet_core::nn::state::NamedTensor;
use parnet_core::nn::testing::perturb_batch_norms;
use parnet_train::checkpoint::save_weights;

fn parnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parnet"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `parnet` with `args` (which ask for `--json`), checks it succeeded, parses its output.
fn parnet_json(args: &[&str]) -> serde_json::Value {
    let out = parnet(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `parnet-cifar` at width x0.0625 (8/16/32/64 channels).
fn tiny_parnet_cifar_spec() -> NetworkSpec {
    NetworkSpec {
        width_mult: Some(0.0625),
        ..NetworkSpec::new("parnet-cifar", 10)
    }
}

/// [`tiny_parnet_cifar_spec`], seed 3.
fn tiny_parnet_cifar() -> Box<dyn Network> {
    tiny_parnet_cifar_spec().build(3).unwrap()
}

/// Saves `model` (built from `spec`) with the metadata that describes it.
fn save_model(model: &dyn Network, spec: &NetworkSpec, path: &Path) {
    let md = spec.to_metadata().unwrap();
    save_weights(model, &md, &Default::default(), path).unwrap();
}

fn assert_clean_failure(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
}

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

/// Writes `images` (CHW bytes, 3x32x32) with their labels as a CIFAR-10 `test_batch.bin`.
fn write_cifar_test_batch(dir: &Path, images: &[(u8, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    let bytes: Vec<u8> = images
        .iter()
        .flat_map(|(label, pixels)| std::iter::once(*label).chain(pixels.iter().copied()))
        .collect();
    std::fs::write(dir.join("test_batch.bin"), bytes).unwrap();
}

#[test]
fn eval_reports_a_checkpoint_with_and_without_flip_tta() {
    use parnet_train::config::TrainConfig;
    use parnet_train::train::{TrainOptions, last_checkpoint, train};

    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let mut cfg = TrainConfig::load(None).unwrap();
    cfg.model.width_mult = Some(0.0625);
    (cfg.data.synthetic_train, cfg.data.synthetic_val) = (128, 32);
    (cfg.train.epochs, cfg.train.batch_size) = (1.0, 32);
    cfg.train.out = run.clone();
    let quiet = TrainOptions {
        progress: false,
        verbose: false,
    };
    train(cfg, quiet).unwrap();

    // 40 images, and the same images mirrored left to right.
    let images: Vec<(u8, Vec<u8>)> = (0..40u32)
        .map(|i| {
            let pixels = (0..3072u32)
                .map(|p| ((p * (i + 3) + (p % 32) * (p % 32) * i) % 251) as u8)
                .collect();
            ((i % 10) as u8, pixels)
        })
        .collect();
    let mirrored: Vec<(u8, Vec<u8>)> = images
        .iter()
        .map(|(label, pixels)| {
            let mut m = pixels.clone();
            m.chunks_exact_mut(32).for_each(|row| row.reverse());
            (*label, m)
        })
        .collect();
    let (plain_dir, mirror_dir) = (tmp.path().join("plain"), tmp.path().join("mirror"));
    write_cifar_test_batch(&plain_dir, &images);
    write_cifar_test_batch(&mirror_dir, &mirrored);

    let checkpoint = last_checkpoint(&run);
    let eval = |data: &Path, tta: &str| {
        parnet_json(&[
            "eval",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--tta",
            tta,
            "--batch-size",
            "16",
            "--json",
        ])
    };
    let none = eval(&plain_dir, "none");
    let flip = eval(&plain_dir, "flip");
    let flip_of_mirror = eval(&mirror_dir, "flip");
    assert_eq!(none["images"], 40);
    assert!(none.get("flip").is_none(), "{none}");
    for key in ["images", "loss", "top1", "top5"] {
        assert_eq!(none[key], flip[key], "plain {key} changed by --tta flip");
    }
    assert_eq!(flip["flip"]["images"], 40);
    let loss = |v: &serde_json::Value| v["loss"].as_f64().unwrap();
    assert!(loss(&flip["flip"]).is_finite());
    // Mirroring the data set swaps the two views, so the flip-averaged figures must not move;
    // the plain ones are those of other images.
    assert_eq!(flip["flip"], flip_of_mirror["flip"]);
    assert_ne!(loss(&none), loss(&flip_of_mirror));
}

/// A CIFAR-10 training folder (`data_batch_1.bin`) of `count` deterministic images.
fn write_cifar_train_batch(dir: &Path, count: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let bytes: Vec<u8> = (0..count)
        .flat_map(|i| {
            let pixels = (0..3072u32).map(move |p| ((p * (i + 5) + (p % 7) * i * i) % 253) as u8);
            std::iter::once((i % 10) as u8).chain(pixels)
        })
        .collect();
    std::fs::write(dir.join("data_batch_1.bin"), bytes).unwrap();
}

#[test]
fn eval_held_out_rebuilds_the_runs_validation_split_for_the_checkpoint_and_its_deploy_weights() {
    use parnet_train::config::TrainConfig;
    use parnet_train::metrics::read_log;
    use parnet_train::train::{TrainOptions, last_checkpoint, train};

    let tmp = tempfile::tempdir().unwrap();
    let (data, other) = (tmp.path().join("data"), tmp.path().join("other"));
    write_cifar_train_batch(&data, 120);
    write_cifar_train_batch(&other, 100);
    let run = tmp.path().join("run");
    let mut cfg = TrainConfig::load(None).unwrap();
    cfg.model.width_mult = Some(0.0625);
    cfg.data.source = data.display().to_string();
    cfg.data.val_count = 40;
    (
        cfg.train.epochs,
        cfg.train.batch_size,
        cfg.train.eval_batch_size,
    ) = (1.0, 16, 16);
    cfg.train.seed = 7;
    cfg.train.out = run.clone();
    let quiet = TrainOptions {
        progress: false,
        verbose: false,
    };
    train(cfg, quiet).unwrap();
    let logged = read_log(&run.join("metrics.jsonl")).unwrap();
    let logged = logged.last().unwrap();

    let checkpoint = last_checkpoint(&run);
    let ckpt = checkpoint.to_str().unwrap();
    let held_out = parnet_json(&[
        "eval",
        "--checkpoint",
        ckpt,
        "--held-out",
        "--batch-size",
        "16",
        "--json",
    ]);
    assert_eq!(held_out["images"], 40);
    assert_eq!(held_out["top1"].as_f64(), logged.val_top1);
    assert_eq!(held_out["top5"].as_f64(), logged.val_top5);
    assert_eq!(held_out["loss"].as_f64(), logged.val_loss);

    // The training checkpoint fuses into deploy weights that keep the run's config, so the
    // same held-out images score the same (up to the rounding of the fused arithmetic).
    let deploy = tmp.path().join("deploy.safetensors");
    let out = parnet(&[
        "fuse",
        "--model",
        "parnet-cifar",
        "--width-mult",
        "0.0625",
        "--weights",
        ckpt,
        "--output",
        deploy.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fused = parnet_json(&[
        "eval",
        "--checkpoint",
        deploy.to_str().unwrap(),
        "--held-out",
        "--batch-size",
        "16",
        "--json",
    ]);
    assert_eq!(fused["images"], 40);
    let (f, t) = (fused["top1"].as_f64().unwrap(), logged.val_top1.unwrap());
    assert!(
        (f - t).abs() <= 1.0 / 40.0 + 1e-12,
        "fused top-1 {f}, trained {t}"
    );
    let (f, t) = (fused["loss"].as_f64().unwrap(), logged.val_loss.unwrap());
    assert!(
        (f - t).abs() <= 1e-4 * t.abs().max(1.0),
        "fused loss {f}, trained {t}"
    );

    assert_clean_failure(
        &parnet(&[
            "eval",
            "--checkpoint",
            ckpt,
            "--held-out",
            "--data",
            other.to_str().unwrap(),
        ]),
        "cannot be rebuilt",
    );
    let weights = tmp.path().join("weights.safetensors");
    let model = tiny_parnet_cifar();
    save_model(model.as_ref(), &tiny_parnet_cifar_spec(), &weights);
    assert_clean_failure(
        &parnet(&[
            "eval",
            "--checkpoint",
            weights.to_str().unwrap(),
            "--held-out",
        ]),
        "holds no training config",
    );
    assert_clean_failure(&parnet(&["eval", "--checkpoint", ckpt]), "--data");
}
