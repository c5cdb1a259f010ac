//! The run's metrics log (JSON lines) and its learning-curve plots (`curves.svg`, `curves.png`).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::plot::{Chart, Drawn, Point, Series, draw_panels};

/// One line of `metrics.jsonl`, written after every epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub step: u64,
    pub lr: f64,
    pub train_loss: f64,
    pub train_top1: f64,
    /// `None` only in logs written before it was recorded.
    #[serde(default)]
    pub train_top5: Option<f64>,
    /// The validation figures are `None` in epochs without evaluation (`train.eval_every`).
    pub val_loss: Option<f64>,
    pub val_top1: Option<f64>,
    pub val_top5: Option<f64>,
    /// Top-1 of the flip-averaged prediction (`train.eval_tta = "flip"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_flip_top1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema_val_top1: Option<f64>,
    pub images_per_sec: f64,
    /// Wall-clock seconds since the run started (across resumes).
    pub seconds: f64,
}

/// Reads the log (missing file: empty).
pub fn read_log(path: &Path) -> Result<Vec<EpochRecord>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).with_context(|| format!("bad line in {}: {l}", path.display()))
        })
        .collect()
}

/// Rewrites the log atomically with `records` (used after every epoch, and on resume to drop
/// epochs past the checkpoint).
pub fn write_log(path: &Path, records: &[EpochRecord]) -> Result<()> {
    let mut text = Vec::new();
    for r in records {
        writeln!(text, "{}", serde_json::to_string(r)?)?;
    }
    parnet_core::io::write_atomic(path, &text)?;
    Ok(())
}

/// Draws loss and top-1 accuracy against epoch, train and validation, as two panels in
/// `<path>.svg` and `<path>.png` (`path` is the SVG; its extension is replaced). Nothing is drawn
/// for an empty log.
pub fn plot_curves(path: &Path, records: &[EpochRecord]) -> Result<Option<Drawn>> {
    if records.is_empty() {
        return Ok(None);
    }
    let series = |name: &str, f: fn(&EpochRecord) -> Option<f64>| Series {
        name: name.to_string(),
        points: records
            .iter()
            .filter_map(|r| f(r).map(|y| Point::new(r.epoch as f64, y)))
            .collect(),
        line: true,
    };
    let chart = |title: &str, y_label: &str, series: Vec<Series>| Chart {
        title: title.to_string(),
        x_label: "epoch".to_string(),
        y_label: y_label.to_string(),
        series,
    };
    let loss = chart(
        "loss",
        "loss",
        vec![
            series("train", |r| Some(r.train_loss)),
            series("validation", |r| r.val_loss),
        ],
    );
    let mut top1_series = vec![
        series("train", |r| Some(100.0 * r.train_top1)),
        series("validation", |r| r.val_top1.map(|v| 100.0 * v)),
    ];
    if records.iter().any(|r| r.val_flip_top1.is_some()) {
        top1_series.push(series("validation, flip TTA", |r| {
            r.val_flip_top1.map(|v| 100.0 * v)
        }));
    }
    let top1 = chart("top-1 accuracy (%)", "top-1 (%)", top1_series);
    Ok(Some(draw_panels(&[loss, top1], &path.with_extension(""))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, loss: f64, top1: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            step: 10 * epoch as u64,
            lr: 0.1,
            train_loss: loss,
            train_top1: top1,
            train_top5: Some(top1 + 0.05),
            val_loss: Some(loss + 0.2),
            val_top1: Some(top1 - 0.05),
            val_top5: Some(0.9),
            val_flip_top1: None,
            ema_val_top1: None,
            images_per_sec: 100.0,
            seconds: epoch as f64,
        }
    }

    #[test]
    fn curves_are_drawn_next_to_the_given_svg_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.svg");
        assert_eq!(plot_curves(&path, &[]).unwrap(), None);
        assert!(!path.exists());

        let records = [
            record(1, 2.0, 0.3),
            record(2, 1.5, 0.5),
            record(3, 1.2, 0.6),
        ];
        let drawn = plot_curves(&path, &records).unwrap().unwrap();
        assert_eq!(drawn.svg, path);
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in ["loss", "top-1 accuracy (%)", "epoch", "train", "validation"] {
            assert!(svg.contains(text), "curves.svg lacks {text:?}");
        }
        // Two panels, two series each, three points per series plus one legend marker.
        assert_eq!(svg.matches("<circle").count(), 2 * 2 * (3 + 1));
        match (&drawn.png, &drawn.png_skipped) {
            (Some(png), None) => assert_eq!(png, &dir.path().join("curves.png")),
            (None, Some(_)) => assert!(!dir.path().join("curves.png").exists()),
            other => panic!("inconsistent {other:?}"),
        }
    }

    #[test]
    fn epochs_without_evaluation_leave_gaps_and_flip_tta_gets_its_own_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.svg");
        let mut records = [
            record(1, 2.0, 0.3),
            record(2, 1.5, 0.5),
            record(3, 1.2, 0.6),
        ];
        for r in &mut records[..2] {
            (r.val_loss, r.val_top1, r.val_top5) = (None, None, None);
        }
        records[2].val_flip_top1 = Some(0.7);
        plot_curves(&path, &records).unwrap().unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("validation, flip TTA"));
        // Train series: 3 points; validation and flip series: 1 point; one legend marker each.
        assert_eq!(
            svg.matches("<circle").count(),
            (3 + 1) + (1 + 1) + (3 + 1) + 2 * (1 + 1)
        );
    }
}
