//! `parnet import` of checkpoints that torch itself saved (tools/make_pytorch_checkpoints.py, from
//! the independent tools/parnet_reference.py): a timm training checkpoint in the zip format with
//! `module.` prefixes and EMA weights, and a bare state dict in the legacy format. The imported
//! weights reproduce PyTorch's logits, in the training form and fused; bad input is refused.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_clean_failure, parnet};
use parnet_core::Tensor;
use parnet_core::io::read_tensors;
use parnet_core::nn::Ctx;
use parnet_train::checkpoint::load_network;

/// The two networks the fixtures were saved from (tools/make_pytorch_checkpoints.py).
const PARNET_S: &[&str] = &[
    "--model",
    "parnet-s",
    "--width-mult",
    "0.0625",
    "--classes",
    "10",
];
const PARNET_CIFAR: &[&str] = &["--model", "parnet-cifar", "--width-mult", "0.0625"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The golden tensor `name` of pytorch_checkpoints.io.safetensors.
fn golden(name: &str) -> Tensor {
    let (tensors, _) = read_tensors(&fixture("pytorch_checkpoints.io.safetensors")).unwrap();
    let t = tensors.into_iter().find(|t| t.name == name).unwrap();
    Tensor::from_vec(t.data, t.shape.as_slice()).unwrap()
}

fn import(args: &[&str], checkpoint: &Path, output: &Path) -> std::process::Output {
    let mut all = vec![
        "import",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    parnet(&all)
}

/// Largest |a - b| over the largest |b|.
fn relative_error(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (a.to_vec(), b.to_vec());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// Imports `checkpoint` as `model_args` and checks the logits of both forms against the golden.
fn check_case(case: &str, checkpoint: &str, model_args: &[&str], ema: bool) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.safetensors");
    let mut args = model_args.to_vec();
    if ema {
        args.push("--ema");
    }
    let run = import(&args, &fixture(checkpoint), &out);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let source = if ema {
        "state_dict_ema"
    } else if checkpoint.ends_with(".tar") {
        "state_dict"
    } else {
        "the whole file"
    };
    assert!(stdout.contains(&format!("from {source} of")), "{stdout}");
    let loaded = load_network(None, &out, false).unwrap();
    let x = golden(&format!("{case}.input"));
    let want = golden(&format!("{case}.logits{}", if ema { "_ema" } else { "" }));
    let train = loaded.model.forward(&x, Ctx::eval()).unwrap();
    let fused = loaded.model.deploy().unwrap();
    let deploy = fused.forward(&x, Ctx::eval()).unwrap();
    let (e_train, e_deploy) = (
        relative_error(&train, &want),
        relative_error(&deploy, &want),
    );
    println!("{case} ema={ema}: relative error train {e_train:.2e}, fused {e_deploy:.2e}");
    assert!(e_train < 1e-5, "{case}: training form {e_train}");
    assert!(e_deploy < 1e-5, "{case}: deploy form {e_deploy}");
    assert_eq!(
        loaded
            .file_metadata
            .get("imported_from")
            .map(String::as_str),
        Some(format!("{checkpoint} ({source})").as_str())
    );
}

#[test]
fn a_timm_zip_checkpoint_imports_raw_and_ema_weights_that_reproduce_pytorch() {
    check_case("parnet_s", "parnet_s_x0.0625.pth.tar", PARNET_S, false);
    check_case("parnet_s", "parnet_s_x0.0625.pth.tar", PARNET_S, true);
}

#[test]
fn a_legacy_bare_state_dict_imports_and_reproduces_pytorch() {
    check_case(
        "parnet_cifar",
        "parnet_cifar_x0.0625.legacy.pth",
        PARNET_CIFAR,
        false,
    );
}

#[test]
fn imported_imagenet_weights_record_the_evaluation_transform() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.safetensors");
    let run = import(PARNET_S, &fixture("parnet_s_x0.0625.pth.tar"), &out);
    assert!(run.status.success());
    let md = parnet_core::io::read_metadata(&out).unwrap();
    assert_eq!(md["crop_pct"], "0.875");
    assert_eq!(md["image_size"], "224");
    assert_eq!(md["mean"], "0.485,0.456,0.406");
    assert_eq!(md["form"], "train");
}

#[test]
fn bad_checkpoints_are_refused_with_the_file_and_the_problem_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.safetensors");
    let zip = fixture("parnet_s_x0.0625.pth.tar");
    let legacy = fixture("parnet_cifar_x0.0625.legacy.pth");

    let bytes = std::fs::read(&zip).unwrap();
    let truncated = dir.path().join("truncated.pth.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let text = dir.path().join("notes.pth");
    std::fs::write(&text, "these are not weights\n").unwrap();
    let lbytes = std::fs::read(&legacy).unwrap();
    let cut_legacy = dir.path().join("cut.pth");
    std::fs::write(&cut_legacy, &lbytes[..lbytes.len() - 1000]).unwrap();

    let cases: Vec<(&[&str], &Path, &str)> = vec![
        (
            PARNET_S,
            &truncated,
            "truncated.pth.tar: not a readable PyTorch checkpoint",
        ),
        (
            PARNET_S,
            &text,
            "notes.pth: not a readable PyTorch checkpoint",
        ),
        (PARNET_CIFAR, &cut_legacy, "cut.pth"),
        // Another architecture: every mismatch is listed.
        (
            PARNET_S,
            &legacy,
            "not a checkpoint of parnet-s with 10 classes at width x0.0625 (read the whole file",
        ),
        (PARNET_CIFAR, &zip, "missing"),
        // A wider network than the checkpoint's.
        (
            &["--model", "parnet-cifar", "--width-mult", "0.125"],
            &legacy,
            "with the wrong shape",
        ),
        (PARNET_CIFAR, &legacy, ""),
        (&[], &legacy, "--model is required"),
        (PARNET_S, Path::new("no-such-file.pth"), "no-such-file.pth"),
    ];
    for (args, checkpoint, needle) in cases {
        if needle.is_empty() {
            // --ema of a file without EMA weights.
            let mut with_ema = args.to_vec();
            with_ema.push("--ema");
            assert_clean_failure(&import(&with_ema, checkpoint, &out), "holds no EMA weights");
        } else {
            assert_clean_failure(&import(args, checkpoint, &out), needle);
        }
        assert!(!out.exists(), "{} left an output", checkpoint.display());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
    // The output may not be the checkpoint itself.
    let copy = dir.path().join("copy.pth");
    std::fs::copy(&legacy, &copy).unwrap();
    assert_clean_failure(&import(PARNET_CIFAR, &copy, &copy), "would destroy it");
    assert_eq!(std::fs::read(&copy).unwrap(), lbytes);
}

/// `parnet eval --json` of `weights` on `data`, plus `extra` arguments: the plain loss.
fn eval_loss(weights: &Path, data: &Path, extra: &[&str]) -> f64 {
    let mut args = vec![
        "eval",
        "--checkpoint",
        weights.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let run = parnet(&args);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["images"], 5);
    report["loss"].as_f64().unwrap()
}

#[test]
fn imported_weights_evaluate_an_imagenet_folder_as_timm_does() {
    // The class folders of tools/make_pytorch_checkpoints.py's EVAL_FOLDER, images of several
    // sizes (one grayscale, one smaller than the resize), from parnet-data's fixtures.
    let dir = tempfile::tempdir().unwrap();
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../parnet-data/tests/fixtures/eval");
    let data = dir.path().join("val");
    for (class, names) in [
        ("a", &["portrait.png", "small.png"][..]),
        ("b", &["landscape.png", "gray.png", "bilinear.png"][..]),
    ] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for name in names {
            std::fs::copy(images.join(name), data.join(class).join(name)).unwrap();
        }
    }
    let weights = dir.path().join("w.safetensors");
    assert!(
        import(PARNET_S, &fixture("parnet_s_x0.0625.pth.tar"), &weights)
            .status
            .success()
    );
    let fused = dir.path().join("fused.safetensors");
    let run = parnet(&[
        "fuse",
        "--weights",
        weights.to_str().unwrap(),
        "--output",
        fused.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Our f32 loss has come out equal to PyTorch's float64 one rounded to f32; allow a few ulps
    // for other accumulation orders (ISA levels).
    let want = golden("parnet_s.folder_loss").to_vec()[0] as f64;
    for file in [&weights, &fused] {
        let loss = eval_loss(file, &data, &[]);
        println!("{}: loss {loss:.9}, PyTorch {want:.9}", file.display());
        assert!((loss - want).abs() <= 1e-6, "{loss} vs {want}");
    }
    // The shipped config is the same transform, stated.
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/imagenet-eval.toml");
    let loss = eval_loss(&fused, &data, &["--config", config.to_str().unwrap()]);
    assert!((loss - want).abs() <= 1e-6, "--config: {loss} vs {want}");
    // The comparison sees the crop: this random network's outputs hardly depend on its input
    // (the loss moves by 3e-6 for crop_pct 1.0, 1e-5 for a 192 crop, not at all for a bilinear
    // resize, whose pixels parnet-data's eval_transform test checks), but past the tolerance.
    for other in [&["--crop-pct", "1.0"][..], &["--image-size", "192"][..]] {
        let loss = eval_loss(&weights, &data, other);
        assert!((loss - want).abs() > 2e-6, "{other:?}: {loss} vs {want}");
    }
    // A crop_pct outside (0, 1] is refused.
    let run = parnet(&[
        "eval",
        "--checkpoint",
        weights.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--crop-pct",
        "1.5",
    ]);
    assert_clean_failure(&run, "crop_pct must be in (0, 1]");
    let missing = dir.path().join("missing.toml");
    let run = parnet(&[
        "eval",
        "--checkpoint",
        weights.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--config",
        missing.to_str().unwrap(),
    ]);
    assert_clean_failure(&run, "missing.toml");
}
