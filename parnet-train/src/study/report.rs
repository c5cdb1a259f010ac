//! The study's outputs: `depth_study.csv` (one row per network, means and spreads),
//! `depth_study_raw.csv` (every measurement), `depth_study.json` (how it was run) and the charts.

use std::path::Path;

use anyhow::Result;
use parnet_core::io::write_atomic;
use parnet_core::models::Network;
use serde::Serialize;

use super::{Member, StudyOptions, TrainResult};
use crate::bench::latency::mean_std;
use crate::plot::{Chart, Point, Series, draw, draw_panels};

/// One network's figures. Latency columns are per batch size in `StudyOptions::batches`.
#[derive(Clone, Debug)]
pub struct Row {
    pub model: String,
    pub family: String,
    pub streams: Option<usize>,
    pub blocks: Option<usize>,
    pub width: Option<usize>,
    pub depth: usize,
    pub params: usize,
    pub macs: usize,
    pub batches: Vec<usize>,
    /// Per batch size: the medians of every repeat, milliseconds.
    pub latency_samples: Vec<Vec<f64>>,
    pub train_results: Vec<TrainResult>,
}

impl Row {
    pub fn new(member: &Member, model: &dyn Network, image_size: usize, batches: &[usize]) -> Row {
        Row {
            model: member.spec.name.clone(),
            family: member.family.to_string(),
            streams: member.sweep.as_ref().map(|s| s.streams),
            blocks: member.sweep.as_ref().map(|s| s.blocks),
            width: member.sweep.as_ref().map(|s| s.width),
            depth: model.depth(),
            params: model.num_params(),
            macs: model.macs(image_size),
            batches: batches.to_vec(),
            latency_samples: vec![Vec::new(); batches.len()],
            train_results: Vec::new(),
        }
    }

    /// Per batch size: (mean, standard deviation) of the latency samples, milliseconds.
    pub fn latency_ms(&self) -> Vec<(f64, f64)> {
        self.latency_samples.iter().map(|s| mean_std(s)).collect()
    }

    /// (mean, standard deviation) of the final validation top-1 over the trainings, if any.
    pub fn val_top1(&self) -> Option<(f64, f64)> {
        let accs: Vec<f64> = self.train_results.iter().map(|r| r.val_top1).collect();
        (!accs.is_empty()).then(|| mean_std(&accs))
    }

    /// The series a chart puts this network in.
    fn series_name(&self) -> String {
        match self.streams {
            Some(1) => "sweep, 1 stream".to_string(),
            Some(s) => format!("sweep, {s} streams"),
            None => "baselines".to_string(),
        }
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn csv_table(rows: &[Row], batches: &[usize]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "model", "family", "streams", "blocks", "width", "depth", "params", "macs",
    ]
    .map(String::from)
    .to_vec();
    for b in batches {
        header.push(format!("latency_b{b}_ms"));
        header.push(format!("latency_b{b}_std_ms"));
    }
    header.extend(
        [
            "latency_repeats",
            "train_runs",
            "val_top1",
            "val_top1_std",
            "train_images_per_sec",
            "train_seconds",
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    for r in rows {
        let mut rec = vec![
            r.model.clone(),
            r.family.clone(),
            opt(r.streams),
            opt(r.blocks),
            opt(r.width),
            r.depth.to_string(),
            r.params.to_string(),
            r.macs.to_string(),
        ];
        for (mean, std) in r.latency_ms() {
            rec.push(format!("{mean:.4}"));
            rec.push(format!("{std:.4}"));
        }
        rec.push(r.latency_samples.first().map_or(0, Vec::len).to_string());
        rec.push(r.train_results.len().to_string());
        let val_top1 = r.val_top1();
        rec.push(opt(val_top1.map(|v| format!("{:.4}", v.0))));
        rec.push(opt(val_top1.map(|v| format!("{:.4}", v.1))));
        let rates: Vec<f64> = r.train_results.iter().map(|t| t.images_per_sec).collect();
        let secs: Vec<f64> = r.train_results.iter().map(|t| t.seconds).collect();
        let has = !r.train_results.is_empty();
        rec.push(opt(has.then(|| format!("{:.1}", mean_std(&rates).0))));
        rec.push(opt(has.then(|| format!("{:.1}", mean_std(&secs).0))));
        w.write_record(&rec)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn raw_table(rows: &[Row]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["model", "measure", "repeat", "value"])?;
    for r in rows {
        for (b, samples) in r.batches.iter().zip(&r.latency_samples) {
            for (i, v) in samples.iter().enumerate() {
                w.write_record([
                    r.model.clone(),
                    format!("latency_b{b}_ms"),
                    i.to_string(),
                    format!("{v:.4}"),
                ])?;
            }
        }
        for (seed, t) in r.train_results.iter().enumerate() {
            w.write_record([
                r.model.clone(),
                "val_top1".to_string(),
                seed.to_string(),
                format!("{:.4}", t.val_top1),
            ])?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

#[derive(Serialize)]
struct StudyMeta<'a> {
    unix_time: u64,
    cpu: String,
    threads: usize,
    image_size: usize,
    quick: bool,
    width_mult: f64,
    batches: &'a [usize],
    latency_repeats: usize,
    train_epochs: Option<f64>,
    train_repeats: usize,
    data: &'a str,
    command: String,
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A chart of one y against one x, a series per stream count plus the baselines (labelled).
fn chart(
    rows: &[Row],
    title: &str,
    x_label: &str,
    y_label: &str,
    xy: impl Fn(&Row) -> Option<Point>,
) -> Chart {
    let mut series: Vec<Series> = Vec::new();
    for r in rows {
        let Some(mut p) = xy(r) else { continue };
        let name = r.series_name();
        if r.family == "baseline" {
            p.label = Some(r.model.clone());
        }
        match series.iter_mut().find(|s| s.name == name) {
            Some(s) => s.points.push(p),
            None => series.push(Series {
                line: r.family != "baseline",
                name,
                points: vec![p],
            }),
        }
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.x.total_cmp(&b.x));
    }
    Chart {
        title: title.to_string(),
        x_label: x_label.to_string(),
        y_label: y_label.to_string(),
        series,
    }
}

/// Writes the tables, the metadata and the charts; returns lines worth printing.
pub fn write_outputs(dir: &Path, rows: &[Row], opts: &StudyOptions) -> Result<Vec<String>> {
    let batches = &opts.batches;
    write_atomic(
        &dir.join("depth_study.csv"),
        csv_table(rows, batches)?.as_bytes(),
    )?;
    write_atomic(
        &dir.join("depth_study_raw.csv"),
        raw_table(rows)?.as_bytes(),
    )?;
    let meta = StudyMeta {
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        cpu: cpu_name(),
        threads: rayon::current_num_threads(),
        image_size: super::IMAGE_SIZE,
        quick: opts.quick,
        width_mult: opts.width_mult,
        batches,
        latency_repeats: opts.latency_repeats,
        train_epochs: opts.train_epochs,
        train_repeats: opts.train_repeats,
        data: &opts.base_config.data.source,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    write_atomic(
        &dir.join("depth_study.json"),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    let mut notes = vec![format!("wrote {}", dir.join("depth_study.csv").display())];
    let latency_panels: Vec<Chart> = batches
        .iter()
        .enumerate()
        .map(|(b, batch)| {
            chart(
                rows,
                &format!("Latency vs depth, batch {batch}"),
                "depth (layers on the longest path)",
                "latency (ms)",
                |r| {
                    let (m, s) = r.latency_ms()[b];
                    Some(Point {
                        y_err: Some(s),
                        ..Point::new(r.depth as f64, m)
                    })
                },
            )
        })
        .collect();
    let mut drawn = vec![draw_panels(&latency_panels, &dir.join("latency_vs_depth"))?];
    if rows.iter().any(|r| r.val_top1().is_some()) {
        let accuracy = |r: &Row| r.val_top1().map(|(m, s)| (100.0 * m, 100.0 * s));
        drawn.push(draw(
            &chart(
                rows,
                "Accuracy vs depth",
                "depth (layers on the longest path)",
                "validation top-1 (%)",
                |r| {
                    accuracy(r).map(|(m, s)| Point {
                        y_err: Some(s),
                        ..Point::new(r.depth as f64, m)
                    })
                },
            ),
            &dir.join("accuracy_vs_depth"),
        )?);
        drawn.push(draw(
            &chart(
                rows,
                &format!("Accuracy vs latency (batch {})", batches[0]),
                &format!("latency at batch {} (ms)", batches[0]),
                "validation top-1 (%)",
                |r| {
                    let (lat, lat_s) = r.latency_ms()[0];
                    accuracy(r).map(|(m, s)| Point {
                        x_err: Some(lat_s),
                        y_err: Some(s),
                        ..Point::new(lat, m)
                    })
                },
            ),
            &dir.join("accuracy_vs_latency"),
        )?);
    }
    for d in drawn {
        notes.push(format!("wrote {}", d.svg.display()));
        match (d.png, d.png_skipped) {
            (Some(png), _) => notes.push(format!("wrote {}", png.display())),
            (None, Some(why)) => notes.push(format!("PNG skipped: {why}")),
            (None, None) => {}
        }
    }
    Ok(notes)
}
