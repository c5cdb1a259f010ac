//! `pack_folder`: convert an image folder into one file per set, so an epoch reads one file
//! (the library side of `parnet data pack`).

use std::fmt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::atomic_file::AtomicFile;
use crate::dataset::Dataset;
use crate::datasets::cifar::{
    CIFAR_PIXELS, CIFAR10_META_FILE, PACKED_CIFAR_FILE, class_names_file,
};
use crate::datasets::folder::{FolderOptions, ImageFolder};
use crate::datasets::packed::{PACKED_FILE, PackedWriter};
use crate::error::{DataError, Result};
use crate::image::Image;
use crate::seed::sample_rng;
use crate::transforms::{ImageOp, Interpolation, Scratch};

/// Images decoded in parallel per step while packing (bounds memory on large sets).
const PACK_CHUNK: usize = 1024;

/// Output layout of [`pack_folder`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PackLayout {
    /// CIFAR-10 layout when the images are 32x32 and there are at most 256 classes, else packed.
    #[default]
    Auto,
    /// CIFAR-10 binary layout: `dst/data.bin` + `dst/batches.meta.txt` (32x32 only).
    Cifar,
    /// `dst/data.parnetpack` (any size, see [`crate::PackedSet`]).
    Packed,
}

/// Options for [`pack_folder`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PackOptions {
    /// Resize the shorter side to `size` and centre-crop `size x size`; `None` keeps the images
    /// as they are (they must then all have the same size).
    pub size: Option<usize>,
    pub layout: PackLayout,
    /// Skip (and count) images that cannot be decoded instead of failing.
    pub skip_corrupt: bool,
    pub interpolation: Interpolation,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            size: None,
            layout: PackLayout::Auto,
            skip_corrupt: false,
            interpolation: Interpolation::Bicubic,
        }
    }
}

/// What [`pack_folder`] wrote.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PackReport {
    pub output: PathBuf,
    pub layout: PackLayout,
    pub count: usize,
    pub height: usize,
    pub width: usize,
    pub num_classes: usize,
    /// Images left out by `skip_corrupt`, as (path, reason).
    pub skipped: Vec<(String, String)>,
}

impl fmt::Display for PackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "packed {} images of {}x{} in {} classes into {} ({:?} layout); skipped {}",
            self.count,
            self.height,
            self.width,
            self.num_classes,
            self.output.display(),
            self.layout,
            self.skipped.len()
        )?;
        for (path, reason) in &self.skipped {
            write!(f, "\n  {path}: {reason}")?;
        }
        Ok(())
    }
}

/// Packs the image folder `src` (`src/<class>/<image>`) into the folder `dst` (created if
/// needed). Images are written in dataset order (classes sorted by name, files by name).
///
/// Atomic: the pack's files are written under temporary names and renamed into place only
/// once every image is in; a pack that fails leaves `dst` as it was (a folder it created is
/// removed again).
pub fn pack_folder(src: &Path, dst: &Path, options: &PackOptions) -> Result<PackReport> {
    let created = !dst.exists();
    let result = pack_folder_into(src, dst, options);
    if result.is_err() && created {
        let _ = std::fs::remove_dir(dst);
    }
    result
}

fn pack_folder_into(src: &Path, dst: &Path, options: &PackOptions) -> Result<PackReport> {
    if options.size == Some(0) {
        return Err(DataError::config(
            "pack_folder",
            "--size must be at least 1",
        ));
    }
    let folder = ImageFolder::open_with(
        src,
        &FolderOptions {
            skip_corrupt: options.skip_corrupt,
        },
    )?;
    let n = folder.len();
    let resize = options.size.map(|size| ImageOp::ResizeCenterCrop {
        resize: size,
        crop: size,
        interpolation: options.interpolation,
    });
    let (height, width) = match (&resize, options.size) {
        (Some(_), Some(size)) => (size, size),
        _ => {
            let (first, _) = folder.get(0)?;
            (first.height, first.width)
        }
    };
    let layout = match options.layout {
        PackLayout::Auto if (height, width) == (32, 32) && folder.num_classes() <= 256 => {
            PackLayout::Cifar
        }
        PackLayout::Auto => PackLayout::Packed,
        PackLayout::Cifar if (height, width) != (32, 32) || folder.num_classes() > 256 => {
            return Err(DataError::config(
                "pack_folder",
                format!(
                    "CIFAR layout needs 32x32 images and <= 256 classes, got {height}x{width}, {} classes",
                    folder.num_classes()
                ),
            ));
        }
        other => other,
    };
    std::fs::create_dir_all(dst).map_err(|e| DataError::io(dst, e))?;
    let labels: Vec<usize> = (0..n).map(|i| folder.label(i)).collect::<Result<_>>()?;
    let output = dst.join(if layout == PackLayout::Cifar {
        PACKED_CIFAR_FILE
    } else {
        PACKED_FILE
    });
    let mut sink = match layout {
        PackLayout::Cifar => Sink::Cifar(AtomicFile::create(&output)?, vec![0u8; CIFAR_PIXELS]),
        _ => Sink::Packed(PackedWriter::create(
            &output,
            height,
            width,
            folder.class_names(),
            &labels,
        )?),
    };
    for chunk_start in (0..n).step_by(PACK_CHUNK) {
        let chunk_end = (chunk_start + PACK_CHUNK).min(n);
        let images: Vec<Result<Image>> = (chunk_start..chunk_end)
            .into_par_iter()
            .map_init(Scratch::default, |scratch, index| {
                folder.load_into(index, &mut scratch.image)?;
                if let Some(op) = &resize {
                    // The op is deterministic (no random draw); the RNG is only a formality.
                    op.apply(scratch, &mut sample_rng(0, 0, 0, index as u64));
                }
                let image = std::mem::take(&mut scratch.image);
                if (image.height, image.width) != (height, width) {
                    return Err(DataError::SizeMismatch {
                        what: format!(
                            "pack_folder: {}",
                            folder.path(index).unwrap_or(src).display()
                        ),
                        index,
                        got_h: image.height,
                        got_w: image.width,
                        want_h: height,
                        want_w: width,
                    });
                }
                Ok(image)
            })
            .collect();
        for (offset, image) in images.into_iter().enumerate() {
            sink.push(chunk_start + offset, labels[chunk_start + offset], &image?)?;
        }
    }
    // The class names are written before the data is committed and committed after it, so a
    // failure at any point before the data's rename leaves the old pack whole.
    let names = (layout == PackLayout::Cifar)
        .then(|| class_names_file(&dst.join(CIFAR10_META_FILE), folder.class_names()))
        .transpose()?;
    sink.finish()?;
    if let Some(names) = names {
        names.commit()?;
    }
    Ok(PackReport {
        output,
        layout,
        count: n,
        height,
        width,
        num_classes: folder.num_classes(),
        skipped: folder
            .skipped()
            .iter()
            .map(|s| (s.path.display().to_string(), s.reason.clone()))
            .collect(),
    })
}

enum Sink {
    Cifar(AtomicFile, Vec<u8>),
    Packed(PackedWriter),
}

impl Sink {
    fn push(&mut self, index: usize, label: usize, image: &Image) -> Result<()> {
        match self {
            Sink::Cifar(out, record) => {
                image.write_chw(record);
                out.write_all(&[label as u8])?;
                out.write_all(record)
            }
            Sink::Packed(writer) => writer.push(index, image),
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            Sink::Cifar(out, _) => out.commit(),
            Sink::Packed(writer) => writer.finish(),
        }
    }
}
