//! End-to-end training runs on the synthetic set: learning, bit-exact resume, NaN handling,
//! bad configs.

use std::path::Path;

use parnet_train::checkpoint;
use parnet_train::config::TrainConfig;
use parnet_train::evaluate::Tta;
use parnet_train::metrics::read_log;
use parnet_train::train::{TrainOptions, last_checkpoint, resume, train};

const QUIET: TrainOptions = TrainOptions {
    progress: false,
    verbose: false,
    distributed: None,
};

/// A small, fast run: ParNet-CIFAR at width x0.0625 (8/16/32/64 channels).
fn tiny_config(out: &Path) -> TrainConfig {
    let mut cfg = TrainConfig::load(None).unwrap();
    cfg.model.width_mult = Some(0.0625);
    cfg.data.synthetic_train = 384;
    cfg.data.synthetic_val = 128;
    cfg.train.epochs = 2.0;
    cfg.train.batch_size = 32;
    cfg.train.out = out.to_path_buf();
    cfg
}

fn model_bits(path: &Path) -> Vec<(String, Vec<u32>)> {
    let file = checkpoint::read(path).unwrap();
    file.model
        .iter()
        .chain(&file.optim)
        .chain(&file.ema)
        .map(|t| (t.name.clone(), t.data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn assert_same_bits(a: &Path, b: &Path) {
    let (a, b) = (model_bits(a), model_bits(b));
    assert_eq!(a.len(), b.len(), "tensor counts differ");
    let differing: Vec<&str> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.0.as_str())
        .collect();
    assert!(
        differing.is_empty(),
        "{} of {} tensors differ, first: {:?}",
        differing.len(),
        a.len(),
        &differing[..differing.len().min(5)]
    );
}

#[test]
fn two_runs_with_the_same_seed_are_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(&tmp.path().join("a"));
    cfg.train.epochs = 1.0;
    train(cfg.clone(), QUIET).unwrap();
    cfg.train.out = tmp.path().join("b");
    train(cfg, QUIET).unwrap();
    assert_same_bits(
        &last_checkpoint(&tmp.path().join("a")),
        &last_checkpoint(&tmp.path().join("b")),
    );
}

#[test]
fn a_run_stopped_mid_epoch_and_resumed_ends_bit_identical_to_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let straight = tmp.path().join("straight");
    let stopped = tmp.path().join("stopped");
    // With an EMA of the weights, evaluated beside them and kept in the checkpoint.
    let with_ema = |dir: &Path| {
        let mut cfg = tiny_config(dir);
        cfg.optim.ema_decay = Some(0.9);
        cfg
    };
    let done = train(with_ema(&straight), QUIET).unwrap();
    assert!(!done.interrupted);
    let log = read_log(&straight.join("metrics.jsonl")).unwrap();
    assert!(
        log.iter()
            .all(|r| r.ema_val_top1.is_some_and(|t| (0.0..=1.0).contains(&t))),
        "{log:?}"
    );
    let file = checkpoint::read(&last_checkpoint(&straight)).unwrap();
    let names = |ts: &[parnet_core::nn::state::NamedTensor]| -> Vec<String> {
        ts.iter().map(|t| t.name.clone()).collect()
    };
    assert_eq!(names(&file.ema), names(&file.model));
    assert!(
        file.ema
            .iter()
            .zip(&file.model)
            .any(|(e, m)| e.data != m.data),
        "the EMA never moved away from the weights"
    );

    // A zero time limit stops the run (with a checkpoint) after its first step.
    let mut cfg = with_ema(&stopped);
    cfg.train.time_limit_minutes = Some(0.0);
    let first = train(cfg.clone(), QUIET).unwrap();
    assert!(first.interrupted);
    let pos = checkpoint::read(&last_checkpoint(&stopped))
        .unwrap()
        .position()
        .unwrap();
    assert_eq!((pos.epoch, pos.step_in_epoch, pos.global_step), (0, 1, 1));

    // Lift the limit, as a user would, and resume.
    cfg.train.time_limit_minutes = None;
    std::fs::write(stopped.join("config.toml"), cfg.to_toml().unwrap()).unwrap();
    let resumed = resume(&stopped, QUIET).unwrap();
    assert!(!resumed.interrupted);
    assert_eq!(resumed.epochs_done, 2);
    assert_same_bits(&last_checkpoint(&straight), &last_checkpoint(&stopped));
    assert_eq!(resumed.final_val, done.final_val);
}

#[test]
fn evaluating_less_often_or_with_flips_changes_the_log_but_not_the_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let (every, sparse) = (tmp.path().join("every"), tmp.path().join("sparse"));
    let mut cfg = tiny_config(&every);
    cfg.train.epochs = 3.0;
    let dense = train(cfg.clone(), QUIET).unwrap();
    cfg.train.out = sparse.clone();
    cfg.train.eval_every = 2;
    cfg.train.eval_tta = Tta::Flip;
    let summary = train(cfg, QUIET).unwrap();
    assert_same_bits(&last_checkpoint(&every), &last_checkpoint(&sparse));
    assert_eq!(summary.final_val, dense.final_val);
    let flip = summary.final_val_flip.expect("flip figures");
    assert_eq!(flip.images, summary.final_val.images);
    assert!((0.0..=1.0).contains(&flip.top1));

    let log = read_log(&sparse.join("metrics.jsonl")).unwrap();
    let evaluated: Vec<(bool, bool)> = log
        .iter()
        .map(|r| (r.val_top1.is_some(), r.val_flip_top1.is_some()))
        .collect();
    // Epoch 2 by `eval_every`, epoch 3 because it is the last.
    assert_eq!(evaluated, [(false, false), (true, true), (true, true)]);
    assert_eq!(log[2].val_top1, Some(summary.final_val.top1));
    assert_eq!(log[2].val_flip_top1, Some(flip.top1));
}

#[test]
fn training_on_the_synthetic_set_learns_well_above_chance() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(tmp.path());
    cfg.model.width_mult = Some(0.125);
    cfg.data.synthetic_train = 3000;
    cfg.data.synthetic_val = 500;
    cfg.train.epochs = 2.0;
    let summary = train(cfg, QUIET).unwrap();
    // Ten classes: chance is 10%.
    assert!(
        summary.final_val.top1 >= 0.35,
        "validation top-1 {}",
        summary.final_val.top1
    );
    let log = read_log(&tmp.path().join("metrics.jsonl")).unwrap();
    assert_eq!(log.len(), 2);
    for r in &log {
        let top5 = r.train_top5.expect("train top-5 logged");
        assert!(r.train_top1 <= top5 && top5 <= 1.0, "{r:?}");
        assert!(r.val_top1.unwrap() <= r.val_top5.unwrap(), "{r:?}");
    }
    // Ten classes, five guesses: top-5 is well above top-1 while the model is still learning.
    assert!(log[0].train_top5.unwrap() > log[0].train_top1);
    assert!(tmp.path().join("curves.svg").exists());
    let font = parnet_train::plot::register_first_font(&parnet_train::plot::font_candidates());
    assert_eq!(tmp.path().join("curves.png").exists(), font.is_ok());
    assert!(tmp.path().join("best.safetensors").exists());
}

#[test]
fn a_diverging_loss_stops_the_run_with_a_clear_message_and_keeps_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(tmp.path());
    cfg.train.epochs = 3.0;
    cfg.train.time_limit_minutes = None;
    // One good epoch, then an absurd learning rate from a resumed config.
    cfg.train.epochs = 1.0;
    train(cfg.clone(), QUIET).unwrap();
    let before = std::fs::read(last_checkpoint(tmp.path())).unwrap();
    cfg.train.epochs = 3.0;
    cfg.optim.lr = 1e12;
    std::fs::write(tmp.path().join("config.toml"), cfg.to_toml().unwrap()).unwrap();
    let err = format!("{:#}", resume(tmp.path(), QUIET).unwrap_err());
    assert!(
        err.contains("loss became") && err.contains("last good checkpoint"),
        "{err}"
    );
    assert_eq!(std::fs::read(last_checkpoint(tmp.path())).unwrap(), before);
}

#[test]
fn a_second_run_into_the_same_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(tmp.path());
    cfg.train.epochs = 1.0;
    cfg.data.synthetic_train = 64;
    train(cfg.clone(), QUIET).unwrap();
    let err = train(cfg, QUIET).unwrap_err().to_string();
    assert!(err.contains("already holds a run"), "{err}");
}

#[test]
fn an_ema_with_zero_decay_is_the_weights_after_every_step() {
    // ema = 0 * ema + 1 * w after each update, so the checkpoint's EMA must equal the weights
    // bit for bit; a loop that skipped an update (the last one, say) would leave older values.
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(tmp.path());
    cfg.train.epochs = 1.0;
    cfg.optim.ema_decay = Some(0.0);
    train(cfg, QUIET).unwrap();
    let file = checkpoint::read(&last_checkpoint(tmp.path())).unwrap();
    assert_eq!(file.ema.len(), file.model.len());
    for (e, m) in file.ema.iter().zip(&file.model) {
        assert_eq!(e.name, m.name);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&e.data), bits(&m.data), "{}", e.name);
    }
}
