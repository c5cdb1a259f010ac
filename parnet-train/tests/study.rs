//! `parnet study depth` end to end on a tiny budget: the CSV, the raw CSV and the charts, and a
//! second run into the same directory that reuses the finished trainings.

use parnet_train::config::TrainConfig;
use parnet_train::study::{StudyOptions, run_depth_study};

fn options(out: &std::path::Path) -> StudyOptions {
    let mut base = TrainConfig::load(None).unwrap();
    base.data.synthetic_train = 256;
    base.data.synthetic_val = 128;
    base.train.batch_size = 32;
    StudyOptions {
        out: out.to_path_buf(),
        quick: true,
        reference: None,
        width_mult: 0.125,
        classes: 10,
        batches: vec![1, 4],
        latency_repeats: 2,
        train_epochs: Some(1.0),
        train_repeats: 2,
        base_config: base,
        baselines: true,
    }
}

#[test]
fn a_quick_study_writes_its_tables_and_charts_and_reuses_finished_trainings() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    let rows = run_depth_study(&opts, false).unwrap();

    let sweep: Vec<_> = rows.iter().filter(|r| r.family == "sweep").collect();
    assert_eq!(sweep.len(), 4, "quick sweep: 1 and 3 streams at two depths");
    assert_eq!(
        rows.len() - sweep.len(),
        2,
        "quick baselines: parnet-cifar, resnet-20"
    );
    let depths: Vec<usize> = sweep.iter().map(|r| r.depth).collect();
    let (lo, hi) = (depths.iter().min().unwrap(), depths.iter().max().unwrap());
    assert!(hi - lo >= 10, "depths {depths:?}");
    let macs: Vec<f64> = sweep.iter().map(|r| r.macs as f64).collect();
    let mean = macs.iter().sum::<f64>() / macs.len() as f64;
    assert!(
        macs.iter().all(|m| (m / mean - 1.0).abs() < 0.2),
        "{macs:?}"
    );
    for r in &rows {
        assert_eq!(r.latency_ms().len(), 2);
        assert!(
            r.latency_ms().iter().all(|(m, s)| *m > 0.0 && *s >= 0.0),
            "{r:?}"
        );
        let (acc, spread) = r.val_top1().unwrap();
        assert!((0.0..=1.0).contains(&acc) && spread >= 0.0, "{r:?}");
        assert_eq!(r.train_results.len(), 2);
    }

    let mut reader = csv::Reader::from_path(tmp.path().join("depth_study.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    for column in [
        "model",
        "depth",
        "macs",
        "latency_b1_ms",
        "latency_b4_std_ms",
        "val_top1",
    ] {
        assert!(
            header.iter().any(|h| h == column),
            "no {column} in {header:?}"
        );
    }
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), rows.len());
    let raw = std::fs::read_to_string(tmp.path().join("depth_study_raw.csv")).unwrap();
    // Two batch sizes x two repeats of latency and two trainings per network, plus the header.
    assert_eq!(raw.lines().count(), 1 + rows.len() * (2 * 2 + 2));
    for chart in [
        "latency_vs_depth",
        "accuracy_vs_depth",
        "accuracy_vs_latency",
    ] {
        let svg = std::fs::read_to_string(tmp.path().join(format!("{chart}.svg"))).unwrap();
        assert!(svg.contains("<svg"), "{chart}");
    }

    // The trainings are finished: a second run reads them back instead of training again.
    let again = run_depth_study(&opts, false).unwrap();
    for (a, b) in rows.iter().zip(&again) {
        assert_eq!(a.val_top1(), b.val_top1(), "{}", a.model);
    }
}
