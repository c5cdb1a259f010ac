//! Distributed runs under `mpirun` on loopback (a build with `--features mpi`; `.ci/run` installs
//! OpenMPI and runs these): 2 ranks x 32 images against 1 process x 64, stream-parallel logits
//! against the single-process ones, a killed rank, and refusals.
#![cfg(feature = "mpi")]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    assert_clean_failure, parnet, save_model, tiny_parnet_cifar, tiny_run_config, write_config,
};
use parnet_core::io::{read_tensors, write_tensors};
use parnet_core::nn::state::NamedTensor;
use parnet_train::checkpoint;
use parnet_train::config::TrainConfig;

/// `mpirun` of `parnet` on `ranks` local processes (oversubscribed: CI has 2 cores; shared
/// memory and self transports only: loopback, no network).
fn mpirun(ranks: usize, args: &[&str]) -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "--mca",
        "btl",
        "self,vader",
    ])
    .args(["-np", &ranks.to_string(), env!("CARGO_BIN_EXE_parnet")])
    .args(args)
    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    cmd
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 192 synthetic images in batches of 64: three steps of one epoch.
fn three_steps(tmp: &Path, name: &str) -> (PathBuf, PathBuf) {
    let mut cfg: TrainConfig = tiny_run_config(tmp);
    cfg.model.width_mult = Some(0.125);
    cfg.data.synthetic_train = 192;
    cfg.data.synthetic_val = 70;
    cfg.train.batch_size = 64;
    cfg.train.eval_batch_size = 32;
    cfg.optim.ema_decay = Some(0.9);
    cfg.train.out = tmp.join(name);
    let path = tmp.join(format!("{name}.toml"));
    write_config(&cfg, &path);
    (path, cfg.train.out)
}

fn tensors(run: &Path) -> Vec<NamedTensor> {
    let file = checkpoint::read(&run.join("last.safetensors")).unwrap();
    [file.model, file.optim, file.ema].concat()
}

/// The largest difference of two checkpoints' tensors, relative to each tensor's largest value.
fn max_relative_gap(a: &[NamedTensor], b: &[NamedTensor]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            assert_eq!(x.name, y.name);
            let scale = x.data.iter().fold(1e-3f64, |m, v| m.max(v.abs() as f64));
            x.data
                .iter()
                .zip(&y.data)
                .map(|(p, q)| (p - q).abs() as f64 / scale)
                .fold(0.0, f64::max)
        })
        .fold(0.0, f64::max)
}

#[test]
fn two_ranks_of_32_images_take_the_steps_of_one_process_of_64() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, one) = three_steps(tmp.path(), "one");
    ok(parnet(&[
        "train",
        "--config",
        s(&cfg),
        "--threads",
        "2",
        "--quiet",
    ]));
    let (cfg2, two) = three_steps(tmp.path(), "two");
    let said = ok(mpirun(
        2,
        &[
            "train",
            "--distributed",
            "--config",
            s(&cfg2),
            "--threads",
            "1",
            "--quiet",
        ],
    )
    .output()
    .unwrap());
    assert!(said.contains("2 ranks x 32 images per step"), "{said}");
    // Every parameter, momentum buffer, EMA tensor and running statistic (docs/DISTRIBUTED.md:
    // within 2e-5 of each tensor's largest value; the core's test of the same algebra on
    // threads measures 5e-6).
    let gap = max_relative_gap(&tensors(&one), &tensors(&two));
    assert!(gap < 2e-5, "2 ranks vs 1 process: relative gap {gap:e}");
    // The validation figures of the sharded evaluation are the whole set's.
    let log = |run: &Path| std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let field = |line: &str, key: &str| -> f64 {
        let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
        v[key].as_f64().unwrap()
    };
    for key in ["val_top1", "train_top1"] {
        assert_eq!(field(&log(&one), key), field(&log(&two), key), "{key}");
    }
    assert!((field(&log(&one), "val_loss") - field(&log(&two), "val_loss")).abs() < 1e-5);
    // Only the run's own files: no rank wrote a second log or left a temporary file.
    let mut names: Vec<String> = std::fs::read_dir(&two)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "best.safetensors",
            "config.toml",
            "curves.png",
            "curves.svg",
            "last.safetensors",
            "metrics.jsonl",
            "train.lock"
        ]
    );

    // Resuming with another number of ranks: the 2-rank run goes on in one process and the
    // 1-process run on 2 ranks, for one more epoch each; they still agree.
    ok(parnet(&[
        "train",
        "--resume",
        s(&two),
        "--epochs",
        "2",
        "--threads",
        "2",
        "--quiet",
    ]));
    ok(mpirun(
        2,
        &[
            "train",
            "--distributed",
            "--resume",
            s(&one),
            "--epochs",
            "2",
            "--threads",
            "1",
            "--quiet",
        ],
    )
    .output()
    .unwrap());
    let gap = max_relative_gap(&tensors(&one), &tensors(&two));
    assert!(
        gap < 2e-5,
        "after resuming across rank counts: relative gap {gap:e}"
    );

    // Local batch norm: a valid run whose step differs from the synchronised one.
    let (cfg3, local) = three_steps(tmp.path(), "local");
    ok(mpirun(
        2,
        &[
            "train",
            "--distributed",
            "--batch-norm",
            "local",
            "--config",
            s(&cfg3),
            "--threads",
            "1",
            "--quiet",
        ],
    )
    .output()
    .unwrap());
    assert!(max_relative_gap(&tensors(&one), &tensors(&local)) > 1e-4);
}

#[test]
fn three_stream_parallel_ranks_give_the_single_process_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name);
    save_model(
        tiny_parnet_cifar().as_ref(),
        &common::tiny_parnet_cifar_spec(),
        &p("w.safetensors"),
    );
    let input = NamedTensor {
        name: "input".into(),
        shape: vec![3, 3, 32, 32],
        data: (0..9216)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect(),
        integer: false,
    };
    write_tensors(&p("x.safetensors"), &[input], &HashMap::new()).unwrap();
    let infer = |out: &str| {
        vec![
            "infer".to_string(),
            "--weights".into(),
            s(&p("w.safetensors")).into(),
            "--input".into(),
            s(&p("x.safetensors")).into(),
            "--output".into(),
            s(&p(out)).into(),
            "--threads".into(),
            "1".into(),
        ]
    };
    let single = infer("one.safetensors");
    ok(parnet(
        &single.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let mut parallel = infer("three.safetensors");
    parallel.push("--stream-parallel".into());
    let said = ok(
        mpirun(3, &parallel.iter().map(String::as_str).collect::<Vec<_>>())
            .output()
            .unwrap(),
    );
    assert_eq!(
        said.matches("wrote logits").count(),
        1,
        "rank 0 alone writes: {said}"
    );
    let logits = |name: &str| read_tensors(&p(name)).unwrap().0.remove(0);
    let (a, b) = (logits("one.safetensors"), logits("three.safetensors"));
    assert_eq!(
        (a.shape.clone(), b.shape.clone()),
        (vec![3, 10], vec![3, 10])
    );
    assert_eq!(
        a.data, b.data,
        "stream-parallel logits must have the single-process bits"
    );

    // Two ranks cannot hold three streams: a clear error on every rank, a non-zero exit.
    let out = mpirun(2, &parallel.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    assert_clean_failure(&out, "mpirun -np 3");
}

#[test]
fn a_batch_that_does_not_split_over_the_ranks_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, _) = three_steps(tmp.path(), "odd");
    let out = mpirun(
        3,
        &[
            "train",
            "--distributed",
            "--config",
            s(&cfg),
            "--threads",
            "1",
            "--quiet",
        ],
    )
    .output()
    .unwrap();
    assert_clean_failure(&out, "multiple of the number of ranks");
}

/// The pid of rank `rank` among the children of `parent` (mpirun starts local ranks itself).
fn rank_pid(parent: u32, rank: usize) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()? {
        let Ok(pid) = entry.ok()?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1));
        if ppid != Some(&parent.to_string()) {
            continue;
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
        if environ.split(|&b| b == 0).any(|v| v == wanted.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_killed_rank_ends_the_job_with_an_error_and_the_run_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny_run_config(tmp.path());
    cfg.data.synthetic_train = 3072;
    cfg.data.synthetic_val = 64;
    cfg.train.batch_size = 32;
    cfg.train.epochs = 4.0;
    let run = cfg.train.out.clone();
    let path = tmp.path().join("long.toml");
    write_config(&cfg, &path);
    let mut job = mpirun(
        2,
        &[
            "train",
            "--distributed",
            "--config",
            s(&path),
            "--threads",
            "1",
            "--quiet",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let last = run.join("last.safetensors");
    let start = Instant::now();
    while !last.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint after 2 minutes"
        );
        assert!(
            job.try_wait().unwrap().is_none(),
            "the job ended before its first checkpoint"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let victim = rank_pid(job.id(), 1).expect("rank 1's process");
    let killed = Instant::now();
    Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    // The job ends on its own, within a bounded time, with a non-zero exit and a message.
    let out = loop {
        if job.try_wait().unwrap().is_some() {
            break job.wait_with_output().unwrap();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "the job outlived its killed rank by a minute"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rank 1") && stderr.contains("signal 9"),
        "{stderr}"
    );
    // The checkpoint is whole, and the run resumes from it and finishes.
    let pos = checkpoint::read(&last).unwrap().position().unwrap();
    assert!(pos.epoch >= 1 && pos.epoch < 4, "{pos:?}");
    let said = ok(mpirun(
        2,
        &[
            "train",
            "--distributed",
            "--resume",
            s(&run),
            "--threads",
            "1",
            "--quiet",
        ],
    )
    .output()
    .unwrap());
    assert!(said.contains("done: 4 epochs"), "{said}");
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4, "{lines}");
}
