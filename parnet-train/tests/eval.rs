//! `parnet eval` through the binary: a checkpoint on a CIFAR test batch with and without flip
//! TTA, and `--held-out`, which rebuilds a run's own validation split for the checkpoint and for
//! its deploy weights.

mod common;

use std::path::Path;

use common::{
    assert_clean_failure, parnet, parnet_json, save_model, tiny_parnet_cifar,
    tiny_parnet_cifar_spec,
};

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
        distributed: None,
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
        distributed: None,
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
