//! CIFAR-10 / CIFAR-100 in their official binary layout, held in memory as u8 CHW records.
//!
//! CIFAR-10 record: 1 label byte + 3072 pixel bytes (1024 R, then 1024 G, then 1024 B, rows of 32).
//! CIFAR-100 record: 1 coarse + 1 fine label byte + the same 3072 bytes.

use std::path::{Path, PathBuf};

use crate::atomic_file::AtomicFile;
use crate::dataset::{Dataset, index_error};
use crate::error::{DataError, Result};
use crate::image::Image;

/// Side of a CIFAR image.
pub const CIFAR_SIDE: usize = 32;
/// Pixel bytes per CIFAR record.
pub const CIFAR_PIXELS: usize = 3 * CIFAR_SIDE * CIFAR_SIDE;
/// The official CIFAR-10 class names, by label.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
/// File written by [`crate::pack_folder`] in the CIFAR-10 layout.
pub const PACKED_CIFAR_FILE: &str = "data.bin";
/// Class-name side file of CIFAR-10 (one name a line).
pub const CIFAR10_META_FILE: &str = "batches.meta.txt";

/// Which of the two CIFAR layouts a file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CifarKind {
    Cifar10,
    Cifar100,
}

/// Which CIFAR-100 label to use (ignored for CIFAR-10).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CifarLabel {
    #[default]
    Fine,
    Coarse,
}

/// Train or test part of a CIFAR folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Split {
    Train,
    Test,
}

impl CifarKind {
    /// Bytes per record.
    pub fn record_len(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1 + CIFAR_PIXELS,
            CifarKind::Cifar100 => 2 + CIFAR_PIXELS,
        }
    }
}

/// An in-memory CIFAR set: `images` holds `len * 3072` bytes of CHW records.
#[derive(Clone, Debug)]
pub struct CifarSet {
    kind: CifarKind,
    images: Vec<u8>,
    labels: Vec<u8>,
    class_names: Vec<String>,
    source: String,
}

impl CifarSet {
    /// Opens a CIFAR folder (the train or test files of CIFAR-10 or CIFAR-100, or a `data.bin`
    /// written by `pack_folder`) or a single batch file, with fine labels for CIFAR-100.
    pub fn open(path: &Path, split: Split) -> Result<Self> {
        Self::open_with(path, split, CifarLabel::Fine)
    }

    /// As [`CifarSet::open`], choosing the CIFAR-100 label.
    pub fn open_with(path: &Path, split: Split, label: CifarLabel) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
        let (kind, files) = if meta.is_dir() {
            folder_files(path, split)?
        } else {
            (kind_from_name(path), vec![path.to_path_buf()])
        };
        let dir = if meta.is_dir() {
            path.to_path_buf()
        } else {
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let class_names = read_class_names(&dir, kind, label)?;
        let mut set = CifarSet {
            kind,
            images: Vec::new(),
            labels: Vec::new(),
            class_names,
            source: path.display().to_string(),
        };
        for file in &files {
            let bytes = std::fs::read(file).map_err(|e| DataError::io(file, e))?;
            set.append_records(file, &bytes, label)?;
        }
        Ok(set)
    }

    /// Parses CIFAR records from memory; `path` only names the source in errors.
    /// Never panics on any input: a bad size or label is an error naming the record.
    pub fn from_bytes(
        path: &Path,
        bytes: &[u8],
        kind: CifarKind,
        label: CifarLabel,
        class_names: Vec<String>,
    ) -> Result<Self> {
        let mut set = CifarSet {
            kind,
            images: Vec::new(),
            labels: Vec::new(),
            class_names,
            source: path.display().to_string(),
        };
        set.append_records(path, bytes, label)?;
        Ok(set)
    }

    fn append_records(&mut self, path: &Path, bytes: &[u8], label: CifarLabel) -> Result<()> {
        let record_len = self.kind.record_len();
        let whole = bytes.len() / record_len;
        let rest = bytes.len() % record_len;
        if bytes.is_empty() {
            return Err(DataError::CifarSize {
                path: path.into(),
                detail: "empty file, no CIFAR record".into(),
            });
        }
        if rest != 0 {
            return Err(DataError::CifarSize {
                path: path.into(),
                detail: format!(
                    "truncated or oversized: {} bytes is not a whole number of {record_len}-byte \
                     {:?} records; record {whole} has only {rest} bytes",
                    bytes.len(),
                    self.kind
                ),
            });
        }
        if let Some(max) = official_max_records(path, self.kind)
            && whole > max
        {
            return Err(DataError::CifarSize {
                path: path.into(),
                detail: format!(
                    "oversized: {whole} records, an official file of this name holds {max}"
                ),
            });
        }
        let num_classes = self.class_names.len();
        self.images.reserve(whole * CIFAR_PIXELS);
        self.labels.reserve(whole);
        for (record, chunk) in bytes.chunks_exact(record_len).enumerate() {
            let value = match (self.kind, label) {
                (CifarKind::Cifar10, _) | (CifarKind::Cifar100, CifarLabel::Coarse) => chunk[0],
                (CifarKind::Cifar100, CifarLabel::Fine) => chunk[1],
            };
            if usize::from(value) >= num_classes {
                return Err(DataError::LabelOutOfRange {
                    path: path.into(),
                    record,
                    label: value.into(),
                    num_classes,
                });
            }
            self.labels.push(value);
            self.images
                .extend_from_slice(&chunk[record_len - CIFAR_PIXELS..]);
        }
        Ok(())
    }

    /// The layout the records were read in.
    pub fn kind(&self) -> CifarKind {
        self.kind
    }

    /// Planar (CHW) bytes of record `index`.
    pub fn record(&self, index: usize) -> &[u8] {
        &self.images[index * CIFAR_PIXELS..(index + 1) * CIFAR_PIXELS]
    }

    /// All labels, by record.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }
}

impl Dataset for CifarSet {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn num_classes(&self) -> usize {
        self.class_names.len()
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn image_size(&self) -> Option<(usize, usize)> {
        Some((CIFAR_SIDE, CIFAR_SIDE))
    }
    fn describe(&self) -> String {
        format!("CIFAR ({:?}) {}", self.kind, self.source)
    }
    fn label(&self, index: usize) -> Result<usize> {
        self.labels
            .get(index)
            .map(|&l| l.into())
            .ok_or_else(|| index_error(self, index))
    }
    fn load_into(&self, index: usize, out: &mut Image) -> Result<usize> {
        let label = self.label(index)?;
        out.set_from_chw(CIFAR_SIDE, CIFAR_SIDE, self.record(index));
        Ok(label)
    }
}

/// Writes CIFAR-10-layout records (`images` = `labels.len()` CHW records of 3072 bytes).
pub fn write_cifar10_records(path: &Path, images_chw: &[u8], labels: &[u8]) -> Result<()> {
    if images_chw.len() != labels.len() * CIFAR_PIXELS {
        return Err(DataError::config(
            "write_cifar10_records",
            format!(
                "{} image bytes for {} labels; each record needs {CIFAR_PIXELS}",
                images_chw.len(),
                labels.len()
            ),
        ));
    }
    let mut out = AtomicFile::create(path)?;
    for (label, image) in labels.iter().zip(images_chw.chunks_exact(CIFAR_PIXELS)) {
        out.write_all(&[*label])?;
        out.write_all(image)?;
    }
    out.commit()
}

/// Writes one class name a line (the `batches.meta.txt` layout).
pub fn write_class_names(path: &Path, names: &[String]) -> Result<()> {
    class_names_file(path, names)?.commit()
}

/// The class-name file for `path`, written but not yet committed (see [`AtomicFile`]).
pub fn class_names_file(path: &Path, names: &[String]) -> Result<AtomicFile> {
    let mut text = names.join("\n");
    text.push('\n');
    let mut file = AtomicFile::create(path)?;
    file.write_all(text.as_bytes())?;
    Ok(file)
}

/// True if `dir` looks like a CIFAR folder (official names or a packed `data.bin`).
pub fn is_cifar_folder(dir: &Path) -> bool {
    [
        "data_batch_1.bin",
        "test_batch.bin",
        "train.bin",
        "test.bin",
        PACKED_CIFAR_FILE,
    ]
    .iter()
    .any(|name| dir.join(name).is_file())
}

fn folder_files(dir: &Path, split: Split) -> Result<(CifarKind, Vec<PathBuf>)> {
    let exists = |name: &str| dir.join(name).is_file();
    if exists("data_batch_1.bin") || exists("test_batch.bin") {
        let files: Vec<PathBuf> = match split {
            Split::Train => (1..=5)
                .map(|i| dir.join(format!("data_batch_{i}.bin")))
                .filter(|p| p.is_file())
                .collect(),
            Split::Test => vec![dir.join("test_batch.bin")],
        };
        if files.is_empty() || !files[0].is_file() {
            let want = match split {
                Split::Train => "data_batch_1..5.bin",
                Split::Test => "test_batch.bin",
            };
            return Err(DataError::format(
                dir,
                format!("CIFAR-10 folder without {want}"),
            ));
        }
        return Ok((CifarKind::Cifar10, files));
    }
    if exists("train.bin") || exists("test.bin") {
        let name = match split {
            Split::Train => "train.bin",
            Split::Test => "test.bin",
        };
        return Ok((CifarKind::Cifar100, vec![dir.join(name)]));
    }
    if exists(PACKED_CIFAR_FILE) {
        return Ok((CifarKind::Cifar10, vec![dir.join(PACKED_CIFAR_FILE)]));
    }
    Err(DataError::format(
        dir,
        "not a CIFAR folder: no data_batch_N.bin, test_batch.bin, train.bin, test.bin or data.bin",
    ))
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

fn kind_from_name(path: &Path) -> CifarKind {
    match file_name(path) {
        "train.bin" | "test.bin" => CifarKind::Cifar100,
        _ => CifarKind::Cifar10,
    }
}

/// Record count of the official file of this name, if it is one.
fn official_max_records(path: &Path, kind: CifarKind) -> Option<usize> {
    let name = file_name(path);
    match (kind, name) {
        (CifarKind::Cifar10, "test_batch.bin") => Some(10_000),
        (CifarKind::Cifar10, n) if n.starts_with("data_batch_") && n.ends_with(".bin") => {
            Some(10_000)
        }
        (CifarKind::Cifar100, "train.bin") => Some(50_000),
        (CifarKind::Cifar100, "test.bin") => Some(10_000),
        _ => None,
    }
}

fn read_class_names(dir: &Path, kind: CifarKind, label: CifarLabel) -> Result<Vec<String>> {
    let (file, default_count) = match (kind, label) {
        (CifarKind::Cifar10, _) => (CIFAR10_META_FILE, 10),
        (CifarKind::Cifar100, CifarLabel::Fine) => ("fine_label_names.txt", 100),
        (CifarKind::Cifar100, CifarLabel::Coarse) => ("coarse_label_names.txt", 20),
    };
    let path = dir.join(file);
    if path.is_file() {
        let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
        let names: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if names.is_empty() || names.len() > 256 {
            return Err(DataError::format(
                &path,
                format!("{} class names (expected 1..=256)", names.len()),
            ));
        }
        return Ok(names);
    }
    Ok(match kind {
        CifarKind::Cifar10 => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
        CifarKind::Cifar100 => (0..default_count).map(|i| format!("class_{i}")).collect(),
    })
}
