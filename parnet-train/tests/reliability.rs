//! Never lose work, never panic (issue 19): outputs that would destroy inputs, closed pipes,
//! overrides on resume, up-front size limits, warnings. The run-directory lock is tested in
//! `kill.rs` (it needs a live training process), the atomic pack in parnet-data's
//! `pack_inspect.rs`.

mod common;

use std::process::{Command, Stdio};

use common::{assert_clean_failure, parnet, tiny_weights};

#[test]
fn fuse_and_infer_refuse_an_output_that_is_an_input_or_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let weights = tiny_weights(dir.path());
    let before = std::fs::read(&weights).unwrap();
    let w = weights.to_str().unwrap();
    // The same file under another spelling still counts as the same file.
    let other_spelling = format!("{}/./w.safetensors", dir.path().display());
    assert_clean_failure(
        &parnet(&["fuse", "--weights", w, "--output", &other_spelling]),
        "would destroy it",
    );
    assert_eq!(std::fs::read(&weights).unwrap(), before);
    let folder = dir.path().to_str().unwrap();
    assert_clean_failure(
        &parnet(&["fuse", "--weights", w, "--output", folder]),
        "is a folder",
    );
    assert_clean_failure(
        &parnet(&["infer", "--weights", w, "--input", w, "--output", folder]),
        "is a folder",
    );
    assert_clean_failure(
        &parnet(&["infer", "--weights", w, "--input", "x", "--output", w]),
        "would destroy it",
    );
    assert_eq!(std::fs::read(&weights).unwrap(), before);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // The reading end is closed before the child starts, so its first write meets a closed pipe
    // whatever the timing (as `| head -0` would, once head has gone).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_parnet"))
        .args(["info", "--model", "resnet-50"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.code().is_none() || out.status.code() == Some(141),
        "{:?}: {stderr}",
        out.status
    );
}

#[test]
fn nan_inputs_give_a_warning_with_the_logits() {
    use parnet_core::io::write_tensors;
    use parnet_core::nn::state::NamedTensor;
    let dir = tempfile::tempdir().unwrap();
    let weights = tiny_weights(dir.path());
    let mut data = vec![0.25f32; 3 * 32 * 32];
    data[100] = f32::NAN;
    let input = NamedTensor {
        name: "input".into(),
        shape: vec![1, 3, 32, 32],
        data,
        integer: false,
    };
    let x = dir.path().join("x.safetensors");
    write_tensors(&x, &[input], &Default::default()).unwrap();
    let y = dir.path().join("y.safetensors");
    let out = parnet(&[
        "infer",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        x.to_str().unwrap(),
        "--output",
        y.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning")
            && stderr.contains("NaN")
            && stderr.contains("1 non-finite input"),
        "{stderr}"
    );
}

#[test]
fn sizes_beyond_the_limits_are_refused_up_front() {
    assert_clean_failure(
        &parnet(&["info", "--model", "parnet-s", "--width-mult", "1e9"]),
        "out of range",
    );
    // x64 is in range, but parnet-xl's widest convolution alone (2 TB) fits no machine.
    assert_clean_failure(
        &parnet(&["info", "--model", "parnet-xl", "--width-mult", "64"]),
        "for one convolution's weights",
    );
    assert_clean_failure(
        &parnet(&["info", "--model", "parnet-s", "--image-size", "1000000000"]),
        "--image-size 1000000000 is out of range",
    );
    assert_clean_failure(
        &parnet(&["info", "--model", "parnet-s", "--classes", "100000000000"]),
        "classes",
    );
    // A valid size whose activations (over a terabyte) no machine has.
    let out = Command::new(env!("CARGO_BIN_EXE_parnet"))
        .args([
            "bench",
            "latency",
            "--model",
            "parnet-s",
            "--batch",
            "4096",
            "--image-size",
            "2048",
        ])
        .args(["--runs", "1", "--warmup", "0", "--no-peak"])
        .output()
        .unwrap();
    assert_clean_failure(&out, "GiB of activations");
    // The same on the autograd graph, in eval mode and for a training step.
    let out = parnet(&[
        "bench",
        "latency",
        "--model",
        "parnet-s",
        "--engine",
        "graph",
        "--batch",
        "4096",
        "--image-size",
        "2048",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--no-peak",
    ]);
    assert_clean_failure(&out, "a forward on a batch of 4096");
    let out = parnet(&[
        "bench",
        "train",
        "--model",
        "parnet-cifar",
        "--batch",
        "4096",
        "--image-size",
        "4096",
        "--steps",
        "1",
        "--warmup",
        "0",
    ]);
    assert_clean_failure(&out, "a training step on a batch of 4096");
}

#[test]
fn more_threads_than_cores_get_a_warning() {
    let threads = (std::thread::available_parallelism().unwrap().get() * 4).to_string();
    let out = parnet(&[
        "bench",
        "latency",
        "--model",
        "parnet-cifar",
        "--width-mult",
        "0.0625",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--no-peak",
        "--threads",
        &threads,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("warning: --threads {threads}")),
        "{stderr}"
    );
}

#[test]
fn train_refuses_a_folder_with_an_image_of_another_size() {
    let dir = tempfile::tempdir().unwrap();
    for (class, sizes) in [("a", [32u32, 32]), ("b", [32, 64])] {
        std::fs::create_dir_all(dir.path().join(class)).unwrap();
        for (i, size) in sizes.into_iter().enumerate() {
            image::RgbImage::from_pixel(size, size, image::Rgb([i as u8 * 60, 90, 200]))
                .save(dir.path().join(format!("{class}/{i}.png")))
                .unwrap();
        }
    }
    let runs = tempfile::tempdir().unwrap();
    let out_dir = runs.path().join("run");
    let out = parnet(&[
        "train",
        "--quiet",
        "--data",
        dir.path().to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    assert_clean_failure(&out, "b/1.png");
    assert!(!out_dir.join("last.safetensors").exists());
}

#[test]
fn an_os_error_is_said_once_and_names_the_file_not_its_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let weights = tiny_weights(dir.path());
    let target = dir.path().join("missing-folder/deploy.safetensors");
    let out = parnet(&[
        "fuse",
        "--weights",
        weights.to_str().unwrap(),
        "--output",
        target.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_clean_failure(&out, "deploy.safetensors");
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
    assert!(!stderr.contains(".tmp-"), "{stderr}");
}

#[test]
fn a_fractional_run_reports_its_own_length() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = parnet(&[
        "train",
        "--quiet",
        "--width-mult",
        "0.0625",
        "--epochs",
        "0.01",
        "--out",
        run.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("done: 0.01 epochs"), "{stdout}");
}

#[test]
fn eval_of_nan_weights_warns() {
    use parnet_core::io::{read_tensors, write_tensors};
    let dir = tempfile::tempdir().unwrap();
    let weights = tiny_weights(dir.path());
    let (mut tensors, metadata) = read_tensors(&weights).unwrap();
    let conv = tensors
        .iter_mut()
        .find(|t| t.name.ends_with("weight") && t.shape.len() == 4)
        .unwrap();
    conv.data.fill(f32::NAN);
    write_tensors(&weights, &tensors, &metadata).unwrap();
    let data = dir.path().join("test_batch.bin");
    write_four_cifar10_records(&data);
    let out = parnet(&[
        "eval",
        "--checkpoint",
        weights.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: the loss is NaN"), "{stderr}");
}

/// Four CIFAR-10 records (labels 0..4) written to `path`.
fn write_four_cifar10_records(path: &std::path::Path) {
    let records: Vec<u8> = (0..4u8)
        .flat_map(|r| std::iter::once(r).chain((0..3072).map(move |i| (i * 7 + r as usize) as u8)))
        .collect();
    std::fs::write(path, records).unwrap();
}

#[test]
fn flags_that_do_not_fit_the_data_are_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let weights = tiny_weights(dir.path());
    let data = dir.path().join("test_batch.bin");
    write_four_cifar10_records(&data);
    assert_clean_failure(
        &parnet(&[
            "eval",
            "--checkpoint",
            weights.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--format",
            "cifar100",
        ]),
        "is a CIFAR-10 binary set, not a CIFAR-100",
    );
    let folder = dir.path().join("images/a");
    std::fs::create_dir_all(&folder).unwrap();
    image::RgbImage::new(8, 8)
        .save(folder.join("0.png"))
        .unwrap();
    let packed = dir.path().join("packed");
    assert_clean_failure(
        &parnet(&[
            "data",
            "pack",
            dir.path().join("images").to_str().unwrap(),
            packed.to_str().unwrap(),
            "--size",
            "0",
        ]),
        "--size must be at least 1",
    );
    assert!(!packed.exists());
}

#[test]
fn inspect_ends_its_report_with_a_newline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    image::RgbImage::new(8, 8)
        .save(dir.path().join("a/0.png"))
        .unwrap();
    let out = parnet(&["data", "inspect", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.ends_with(b"\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The default build has no MPI: a distributed run or a stream-parallel inference is refused
/// with the command that builds one, before any work.
#[cfg(not(feature = "mpi"))]
#[test]
fn distributed_modes_without_the_mpi_feature_say_how_to_build_them() {
    let out = parnet(&["train", "--distributed", "--quiet"]);
    assert_clean_failure(&out, "--features mpi");
    let out = parnet(&[
        "infer",
        "--stream-parallel",
        "--weights",
        "w",
        "--input",
        "x",
        "--output",
        "y",
    ]);
    assert_clean_failure(&out, "--features mpi");
    let out = parnet(&[
        "bench",
        "latency",
        "--model",
        "parnet-s",
        "--stream-parallel",
    ]);
    assert_clean_failure(&out, "--features mpi");
    let out = parnet(&["train", "--batch-norm", "local", "--quiet"]);
    assert_clean_failure(&out, "--distributed");
}
