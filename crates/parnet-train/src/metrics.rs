//! The run's metrics log (JSON lines) and its learning-curve plot.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One line of `metrics.jsonl`, written after every epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub step: u64,
    pub lr: f64,
    pub train_loss: f64,
    pub train_top1: f64,
    pub val_loss: f64,
    pub val_top1: f64,
    pub val_top5: f64,
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

/// Draws loss and accuracy against epoch as an SVG (two panels).
pub fn plot_curves(path: &Path, records: &[EpochRecord]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(480);
        let last = records.last().map_or(1, |r| r.epoch).max(1) as f64;
        let max_loss = records
            .iter()
            .flat_map(|r| [r.train_loss, r.val_loss])
            .fold(0.1, f64::max)
            * 1.05;
        let mut chart = ChartBuilder::on(&left)
            .caption("loss", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..last, 0f64..max_loss)?;
        chart.configure_mesh().x_desc("epoch").draw()?;
        let series = |f: fn(&EpochRecord) -> f64| {
            records
                .iter()
                .map(move |r| (r.epoch as f64, f(r)))
                .collect::<Vec<_>>()
        };
        chart
            .draw_series(LineSeries::new(series(|r| r.train_loss), &BLUE))?
            .label("train")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], BLUE));
        chart
            .draw_series(LineSeries::new(series(|r| r.val_loss), &RED))?
            .label("validation")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], RED));
        chart.configure_series_labels().border_style(BLACK).draw()?;
        let mut chart = ChartBuilder::on(&right)
            .caption("top-1 accuracy (%)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..last, 0f64..100f64)?;
        chart.configure_mesh().x_desc("epoch").draw()?;
        chart
            .draw_series(LineSeries::new(series(|r| 100.0 * r.train_top1), &BLUE))?
            .label("train")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], BLUE));
        chart
            .draw_series(LineSeries::new(series(|r| 100.0 * r.val_top1), &RED))?
            .label("validation")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], RED));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        root.present()?;
    }
    parnet_core::io::write_atomic(path, svg.as_bytes())?;
    Ok(())
}
