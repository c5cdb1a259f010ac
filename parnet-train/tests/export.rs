//! `parnet export onnx` from the command line: a file from training weights and from deploy
//! weights, and bad input refused without a file left behind. (Whether the file computes our
//! logits is tested in parnet-core's `onnx_export.rs`, with tract, and by tools/check_onnx.py.)

mod common;

use common::{assert_clean_failure, parnet, tiny_weights};

#[test]
fn export_writes_an_onnx_file_from_either_form_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let weights = tiny_weights(dir.path());
    let w = weights.to_str().unwrap();
    let deploy = dir.path().join("deploy.safetensors");
    let out = parnet(&["fuse", "--weights", w, "--output", deploy.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (from, batch) in [(w, None), (deploy.to_str().unwrap(), Some("4"))] {
        let onnx = dir.path().join("m.onnx");
        let mut args = vec!["export", "onnx", "--weights", from, "--output"];
        args.push(onnx.to_str().unwrap());
        if let Some(b) = batch {
            args.extend(["--batch", b]);
        }
        let out = parnet(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let n = batch.unwrap_or("N");
        assert!(
            stdout.contains(&format!("input [{n}, 3, 32, 32]")),
            "{stdout}"
        );
        let bytes = std::fs::read(&onnx).unwrap();
        assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
        std::fs::remove_file(&onnx).unwrap();
    }
    let target = dir.path().join("x.onnx");
    let t = target.to_str().unwrap();
    assert_clean_failure(
        &parnet(&["export", "onnx", "--weights", w, "--output", w]),
        "would destroy it",
    );
    assert_clean_failure(
        &parnet(&[
            "export",
            "onnx",
            "--weights",
            "missing.safetensors",
            "--output",
            t,
        ]),
        "does not exist",
    );
    assert_clean_failure(
        &parnet(&[
            "export",
            "onnx",
            "--weights",
            w,
            "--output",
            t,
            "--batch",
            "0",
        ]),
        "--batch 0",
    );
    assert_clean_failure(
        &parnet(&[
            "export",
            "onnx",
            "--weights",
            w,
            "--output",
            t,
            "--image-size",
            "30",
        ]),
        "multiples of",
    );
    std::fs::write(dir.path().join("junk.safetensors"), b"not a weights file").unwrap();
    let junk = dir.path().join("junk.safetensors");
    assert_clean_failure(
        &parnet(&[
            "export",
            "onnx",
            "--weights",
            junk.to_str().unwrap(),
            "--output",
            t,
        ]),
        "junk.safetensors",
    );
    assert!(!target.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        3,
        "no temporary file left"
    );
}
