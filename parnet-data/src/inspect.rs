//! `inspect`: format, count, image sizes, per-class counts and per-channel mean/std of a dataset
//! (the library side of `parnet data inspect PATH`).

use std::fmt;
use std::path::Path;

use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::datasets::cifar::Split;
use crate::datasets::open::{DataFormat, OpenOptions, open_dataset};
use crate::error::{DataError, Result};
use crate::image::Image;

/// Samples per parallel chunk; fixed so that the result never depends on the thread count
/// (the sums are exact integers anyway).
const CHUNK: usize = 256;

/// What `inspect` found. Serialises to JSON with serde; `Display` is the human form.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InspectReport {
    pub path: String,
    pub format: DataFormat,
    pub count: usize,
    /// Smallest and largest image height and width seen.
    pub min_size: (usize, usize),
    pub max_size: (usize, usize),
    pub class_names: Vec<String>,
    /// Images per class, by label.
    pub class_counts: Vec<usize>,
    /// Per-channel (R, G, B) mean of pixel values scaled to 0..1.
    pub mean: [f64; 3],
    /// Per-channel standard deviation (over all pixels of all images), 0..1 scale.
    pub std: [f64; 3],
    /// Images left out by `skip_corrupt`, as (path, reason).
    pub skipped: Vec<(String, String)>,
    /// Files of an image folder that are not images and were not read.
    #[serde(default)]
    pub ignored_files: usize,
}

#[derive(Clone, Copy)]
struct Stats {
    sum: [u64; 3],
    sum_sq: [u64; 3],
    pixels: u64,
    min_size: (usize, usize),
    max_size: (usize, usize),
}

impl Stats {
    fn empty() -> Self {
        Stats {
            sum: [0; 3],
            sum_sq: [0; 3],
            pixels: 0,
            min_size: (usize::MAX, usize::MAX),
            max_size: (0, 0),
        }
    }

    fn add_image(&mut self, image: &Image) {
        for pixel in image.data.chunks_exact(3) {
            for (c, &value) in pixel.iter().enumerate() {
                let v = u64::from(value);
                self.sum[c] += v;
                self.sum_sq[c] += v * v;
            }
        }
        self.pixels += (image.height * image.width) as u64;
        self.min_size = (
            self.min_size.0.min(image.height),
            self.min_size.1.min(image.width),
        );
        self.max_size = (
            self.max_size.0.max(image.height),
            self.max_size.1.max(image.width),
        );
    }

    fn merge(mut self, other: Stats) -> Stats {
        for c in 0..3 {
            self.sum[c] += other.sum[c];
            self.sum_sq[c] += other.sum_sq[c];
        }
        self.pixels += other.pixels;
        self.min_size = (
            self.min_size.0.min(other.min_size.0),
            self.min_size.1.min(other.min_size.1),
        );
        self.max_size = (
            self.max_size.0.max(other.max_size.0),
            self.max_size.1.max(other.max_size.1),
        );
        self
    }
}

/// Opens `path` (any supported format, no skipping) and inspects it: the train split, or the
/// test split of a CIFAR folder that holds only that (as `eval` reads it).
pub fn inspect(path: &Path) -> Result<InspectReport> {
    let train = inspect_with(path, &OpenOptions::default());
    let only_test = ["test_batch.bin", "test.bin"]
        .iter()
        .any(|f| path.join(f).is_file());
    match train {
        Err(DataError::Format { .. }) | Err(DataError::MissingPath { .. }) if only_test => {
            inspect_with(
                path,
                &OpenOptions {
                    split: Split::Test,
                    ..OpenOptions::default()
                },
            )
        }
        other => other,
    }
}

/// As [`inspect`], with open options (split, CIFAR-100 label, skip_corrupt).
pub fn inspect_with(path: &Path, options: &OpenOptions) -> Result<InspectReport> {
    let opened = open_dataset(path, options)?;
    let mut report = inspect_dataset(
        opened.dataset.as_ref(),
        opened.format,
        &path.display().to_string(),
    )?;
    report.skipped = opened.skipped;
    report.ignored_files = opened.ignored_files;
    Ok(report)
}

/// Inspects an already opened dataset, decoding every image once (in parallel).
pub fn inspect_dataset(
    dataset: &dyn Dataset,
    format: DataFormat,
    path: &str,
) -> Result<InspectReport> {
    let n = dataset.len();
    let chunks: Vec<(Stats, Vec<usize>)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|chunk| -> Result<(Stats, Vec<usize>)> {
            let mut stats = Stats::empty();
            let mut counts = vec![0usize; dataset.num_classes()];
            let mut image = Image::default();
            for index in chunk * CHUNK..((chunk + 1) * CHUNK).min(n) {
                let label = dataset.load_into(index, &mut image)?;
                let slot = counts
                    .get_mut(label)
                    .ok_or_else(|| DataError::IndexOutOfRange {
                        what: format!("{}: class of image {index}", dataset.describe()),
                        index: label,
                        len: dataset.num_classes(),
                    })?;
                *slot += 1;
                stats.add_image(&image);
            }
            Ok((stats, counts))
        })
        .collect::<Vec<Result<_>>>()
        .into_iter()
        .collect::<Result<_>>()?;
    let mut stats = Stats::empty();
    let mut class_counts = vec![0usize; dataset.num_classes()];
    for (chunk_stats, counts) in chunks {
        stats = stats.merge(chunk_stats);
        for (total, c) in class_counts.iter_mut().zip(counts) {
            *total += c;
        }
    }
    let mut mean = [0f64; 3];
    let mut std = [0f64; 3];
    if stats.pixels > 0 {
        let p = stats.pixels as f64;
        for c in 0..3 {
            let m = stats.sum[c] as f64 / p;
            let var = (stats.sum_sq[c] as f64 / p - m * m).max(0.0);
            mean[c] = m / 255.0;
            std[c] = var.sqrt() / 255.0;
        }
    } else {
        stats.min_size = (0, 0);
    }
    Ok(InspectReport {
        path: path.to_string(),
        format,
        count: n,
        min_size: stats.min_size,
        max_size: stats.max_size,
        class_names: dataset.class_names().to_vec(),
        class_counts,
        mean,
        std,
        skipped: Vec::new(),
        ignored_files: 0,
    })
}

impl InspectReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("InspectReport serialises")
    }
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "path:       {}", self.path)?;
        writeln!(f, "format:     {}", self.format)?;
        writeln!(f, "images:     {}", self.count)?;
        if self.min_size == self.max_size {
            writeln!(
                f,
                "image size: {}x{} (HxW)",
                self.min_size.0, self.min_size.1
            )?;
        } else {
            writeln!(
                f,
                "image size: varies, height {}..{}, width {}..{}",
                self.min_size.0, self.max_size.0, self.min_size.1, self.max_size.1
            )?;
        }
        writeln!(f, "classes:    {}", self.class_names.len())?;
        let width = self.class_names.iter().map(|n| n.len()).max().unwrap_or(0);
        for (label, (name, count)) in self.class_names.iter().zip(&self.class_counts).enumerate() {
            writeln!(f, "  {label:>3} {name:<width$} {count}")?;
        }
        writeln!(
            f,
            "mean (RGB): {:.4} {:.4} {:.4}",
            self.mean[0], self.mean[1], self.mean[2]
        )?;
        writeln!(
            f,
            "std  (RGB): {:.4} {:.4} {:.4}",
            self.std[0], self.std[1], self.std[2]
        )?;
        if self.format == DataFormat::ImageFolder {
            writeln!(
                f,
                "ignored:    {} files that are not images",
                self.ignored_files
            )?;
        }
        write!(f, "skipped:    {}", self.skipped.len())?;
        for (path, reason) in &self.skipped {
            write!(f, "\n  {path}: {reason}")?;
        }
        Ok(())
    }
}
