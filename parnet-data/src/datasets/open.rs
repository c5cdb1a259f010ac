//! `open_dataset`: recognise a path's format and open it.

use std::io::Read;
use std::path::Path;

use crate::dataset::Dataset;
use crate::datasets::cifar::{CifarKind, CifarLabel, CifarSet, Split, is_cifar_folder};
use crate::datasets::folder::{FolderOptions, ImageFolder};
use crate::datasets::packed::{PACKED_FILE, PACKED_MAGIC, PackedSet};
use crate::error::{DataError, Result};

/// The on-disk formats this crate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DataFormat {
    /// CIFAR-10 binary layout (official batches, or a `data.bin` pack).
    Cifar10,
    /// CIFAR-100 binary layout.
    Cifar100,
    /// `root/<class>/<image>` JPEG/PNG folder.
    ImageFolder,
    /// A `PARNETPK` packed file.
    Packed,
    /// The built-in synthetic set.
    Synthetic,
}

impl std::fmt::Display for DataFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            DataFormat::Cifar10 => "CIFAR-10 binary",
            DataFormat::Cifar100 => "CIFAR-100 binary",
            DataFormat::ImageFolder => "image folder",
            DataFormat::Packed => "packed file",
            DataFormat::Synthetic => "synthetic",
        };
        f.write_str(name)
    }
}

/// Options for [`open_dataset`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OpenOptions {
    /// Train or test files of a CIFAR folder.
    pub split: Split,
    /// Fine or coarse CIFAR-100 labels.
    pub cifar_label: CifarLabel,
    /// For image folders: skip and count images that fail to decode.
    pub skip_corrupt: bool,
    /// For image folders: every image must have the first one's size (checked from the
    /// files' headers at open time), as a pipeline without resizing needs.
    #[serde(default)]
    pub uniform_size: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            split: Split::Train,
            cifar_label: CifarLabel::Fine,
            skip_corrupt: false,
            uniform_size: false,
        }
    }
}

/// A dataset opened by [`open_dataset`], with what was recognised.
pub struct OpenedDataset {
    pub format: DataFormat,
    pub dataset: Box<dyn Dataset>,
    /// Images left out by `skip_corrupt` (image folders only), as (path, reason).
    pub skipped: Vec<(String, String)>,
    /// Files of an image folder that are not images (not read).
    pub ignored_files: usize,
}

fn starts_with_magic(path: &Path) -> Result<bool> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut magic = [0u8; 8];
    let mut read = 0;
    while read < magic.len() {
        match file.read(&mut magic[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(DataError::io(path, e)),
        }
    }
    Ok(read == magic.len() && &magic == PACKED_MAGIC)
}

/// Opens `path` as whichever format it is: a packed file (by magic) or a folder holding
/// `data.parnetpack`; a CIFAR batch file or folder; otherwise a `root/<class>/<image>` folder.
pub fn open_dataset(path: &Path, options: &OpenOptions) -> Result<OpenedDataset> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    let packed = if meta.is_dir() {
        path.join(PACKED_FILE).is_file()
    } else {
        starts_with_magic(path)?
    };
    if packed {
        return Ok(OpenedDataset {
            format: DataFormat::Packed,
            dataset: Box::new(PackedSet::open(path)?),
            skipped: Vec::new(),
            ignored_files: 0,
        });
    }
    if !meta.is_dir() || is_cifar_folder(path) {
        let set = CifarSet::open_with(path, options.split, options.cifar_label)?;
        let format = match set.kind() {
            CifarKind::Cifar10 => DataFormat::Cifar10,
            CifarKind::Cifar100 => DataFormat::Cifar100,
        };
        return Ok(OpenedDataset {
            format,
            dataset: Box::new(set),
            skipped: Vec::new(),
            ignored_files: 0,
        });
    }
    let folder = ImageFolder::open_with(
        path,
        &FolderOptions {
            skip_corrupt: options.skip_corrupt,
        },
    )?;
    if options.uniform_size {
        folder.uniform_size()?;
    }
    let skipped = folder
        .skipped()
        .iter()
        .map(|s| (s.path.display().to_string(), s.reason.clone()))
        .collect();
    Ok(OpenedDataset {
        format: DataFormat::ImageFolder,
        ignored_files: folder.ignored_files(),
        dataset: Box::new(folder),
        skipped,
    })
}
