//! Image folders in the ImageNet layout: `root/<class>/<image>`, classes sorted by name,
//! JPEG and PNG of any size, decoded lazily (one file read + decode per `load_into`).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dataset::{Dataset, index_error};
use crate::error::{DataError, Result};
use crate::image::Image;

/// Options for [`ImageFolder::open_with`].
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FolderOptions {
    /// Decode every image at open time and leave out (and count) the ones that fail,
    /// instead of failing when a bad image is loaded.
    pub skip_corrupt: bool,
}

/// An image that `skip_corrupt` left out, with the reason.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SkippedImage {
    pub path: PathBuf,
    pub reason: String,
}

/// A lazily decoded image folder.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    root: PathBuf,
    class_names: Vec<String>,
    files: Vec<(PathBuf, usize)>,
    skipped: Vec<SkippedImage>,
    ignored_files: usize,
}

/// File extensions read as images (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let read = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut entries = Vec::new();
    for entry in read {
        entries.push(entry.map_err(|e| DataError::io(dir, e))?.path());
    }
    entries.sort();
    Ok(entries)
}

impl ImageFolder {
    /// Scans `root/<class>/<image>`; fails on a missing root, no class folder, or an empty class.
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_with(root, &FolderOptions::default())
    }

    /// As [`ImageFolder::open`], with options (see [`FolderOptions::skip_corrupt`]).
    pub fn open_with(root: &Path, options: &FolderOptions) -> Result<Self> {
        let meta = std::fs::metadata(root).map_err(|e| DataError::io(root, e))?;
        if !meta.is_dir() {
            return Err(DataError::format(root, "not a folder of class folders"));
        }
        let mut class_names = Vec::new();
        let mut files = Vec::new();
        let mut ignored_files = 0;
        for class_dir in sorted_entries(root)? {
            if !class_dir.is_dir() {
                ignored_files += 1;
                continue;
            }
            let label = class_names.len();
            let name = class_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let before = files.len();
            for file in sorted_entries(&class_dir)? {
                if file.is_file() && is_image_file(&file) {
                    files.push((file, label));
                } else {
                    ignored_files += 1;
                }
            }
            if files.len() == before {
                return Err(DataError::EmptyClass {
                    path: class_dir,
                    class: name,
                });
            }
            class_names.push(name);
        }
        if class_names.is_empty() {
            return Err(DataError::format(
                root,
                "no class folder (expected root/<class>/<image>)",
            ));
        }
        let mut folder = ImageFolder {
            root: root.to_path_buf(),
            class_names,
            files,
            skipped: Vec::new(),
            ignored_files,
        };
        if options.skip_corrupt {
            folder.drop_corrupt();
        }
        Ok(folder)
    }

    /// Decodes every image in parallel and removes the ones that fail, recording them.
    fn drop_corrupt(&mut self) {
        let failures: Vec<Option<String>> = self
            .files
            .par_iter()
            .enumerate()
            .map_init(Image::default, |image, (index, (path, _))| {
                read_and_decode(path, index, image)
                    .err()
                    .map(|e| e.to_string())
            })
            .collect();
        let files = std::mem::take(&mut self.files);
        for (entry, failure) in files.into_iter().zip(failures) {
            match failure {
                None => self.files.push(entry),
                Some(reason) => self.skipped.push(SkippedImage {
                    path: entry.0,
                    reason,
                }),
            }
        }
    }

    /// Images left out by `skip_corrupt`.
    pub fn skipped(&self) -> &[SkippedImage] {
        &self.skipped
    }

    /// Files and folders that were not images and were not read (e.g. `.txt`, stray files at the root).
    pub fn ignored_files(&self) -> usize {
        self.ignored_files
    }

    /// Path of sample `index`.
    pub fn path(&self, index: usize) -> Option<&Path> {
        self.files.get(index).map(|(p, _)| p.as_path())
    }

    /// Root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The one `(height, width)` of every image, read from the files' headers (no decoding);
    /// a [`DataError::SizeMismatch`] naming the first image (in dataset order) whose size
    /// differs from the first one's. For pipelines that do not resize.
    pub fn uniform_size(&self) -> Result<(usize, usize)> {
        let dims = |index: usize| -> Result<(usize, usize)> {
            let path = &self.files[index].0;
            let corrupt = |detail: String| DataError::CorruptImage {
                path: path.clone(),
                index,
                detail,
            };
            let (w, h) = image::ImageReader::open(path)
                .map_err(|e| DataError::io(path, e))?
                .with_guessed_format()
                .map_err(|e| corrupt(e.to_string()))?
                .into_dimensions()
                .map_err(|e| corrupt(e.to_string()))?;
            Ok((h as usize, w as usize))
        };
        if self.files.is_empty() {
            return Err(DataError::config(
                "image folder",
                format!("{} holds no images", self.root.display()),
            ));
        }
        let want = dims(0)?;
        let sizes: Vec<Result<(usize, usize)>> =
            (0..self.files.len()).into_par_iter().map(dims).collect();
        for (index, size) in sizes.into_iter().enumerate() {
            let (got_h, got_w) = size?;
            if (got_h, got_w) != want {
                return Err(DataError::SizeMismatch {
                    what: format!("{}", self.files[index].0.display()),
                    index,
                    got_h,
                    got_w,
                    want_h: want.0,
                    want_w: want.1,
                });
            }
        }
        Ok(want)
    }
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn num_classes(&self) -> usize {
        self.class_names.len()
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn image_size(&self) -> Option<(usize, usize)> {
        None
    }
    fn describe(&self) -> String {
        format!("image folder {}", self.root.display())
    }
    fn label(&self, index: usize) -> Result<usize> {
        self.files
            .get(index)
            .map(|(_, l)| *l)
            .ok_or_else(|| index_error(self, index))
    }
    fn load_into(&self, index: usize, out: &mut Image) -> Result<usize> {
        let (path, label) = self
            .files
            .get(index)
            .ok_or_else(|| index_error(self, index))?;
        read_and_decode(path, index, out)?;
        Ok(*label)
    }
}

/// Reads and decodes one image file into `out`.
pub fn read_and_decode(path: &Path, index: usize, out: &mut Image) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_image(path, index, &bytes, out)
}

/// Decodes JPEG or PNG bytes (format from the magic bytes) into RGB `out`.
/// Never panics: any bad input is a [`DataError::CorruptImage`] naming `path` and `index`.
pub fn decode_image(path: &Path, index: usize, bytes: &[u8], out: &mut Image) -> Result<()> {
    let corrupt = |detail: String| DataError::CorruptImage {
        path: path.to_path_buf(),
        index,
        detail,
    };
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(corrupt("not a JPEG or PNG file".into()));
    }
    let decoded = reader.decode().map_err(|e| corrupt(e.to_string()))?;
    let rgb = decoded.into_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    if w == 0 || h == 0 {
        return Err(corrupt("zero-sized image".into()));
    }
    out.height = h;
    out.width = w;
    out.data = rgb.into_raw();
    Ok(())
}
