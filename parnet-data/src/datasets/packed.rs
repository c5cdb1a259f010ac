//! The packed file: many equal-size RGB images in one file, read with positional reads.
//!
//! Layout (little-endian):
//! `b"PARNETPK"`, u32 version (1), u32 height, u32 width, u32 num_classes, u64 count,
//! then num_classes × (u32 byte length + UTF-8 name), then count × u32 labels,
//! then count × (height·width·3) bytes of interleaved RGB (HWC) images.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::atomic_file::AtomicFile;
use crate::dataset::{Dataset, index_error};
use crate::error::{DataError, Result};
use crate::image::Image;

/// Magic bytes at the start of a packed file.
pub const PACKED_MAGIC: &[u8; 8] = b"PARNETPK";
/// Format version written and accepted.
pub const PACKED_VERSION: u32 = 1;
/// Conventional file name inside a pack folder.
pub const PACKED_FILE: &str = "data.parnetpack";

/// A packed file opened for reading; labels are in memory, images are read on demand.
#[derive(Debug)]
pub struct PackedSet {
    path: PathBuf,
    file: File,
    height: usize,
    width: usize,
    class_names: Vec<String>,
    labels: Vec<u32>,
    images_offset: u64,
}

struct Header {
    height: usize,
    width: usize,
    class_names: Vec<String>,
    labels: Vec<u32>,
    images_offset: u64,
}

/// Reads the header through `reader` from a file of known length, never trusting a declared
/// length beyond what the file holds.
struct HeaderReader<'a, R: Read> {
    reader: R,
    path: &'a Path,
    remaining: u64,
    consumed: u64,
}

impl<R: Read> HeaderReader<'_, R> {
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        if n > self.remaining {
            return Err(DataError::format(
                self.path,
                format!("truncated packed file: it ends inside the {what}"),
            ));
        }
        let mut buf = vec![0u8; n as usize];
        self.reader
            .read_exact(&mut buf)
            .map_err(|e| DataError::io(self.path, e))?;
        self.remaining -= n;
        self.consumed += n;
        Ok(buf)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Parses the header and labels of a packed file of `file_len` bytes read through `reader`.
fn parse_header(path: &Path, reader: impl Read, file_len: u64) -> Result<Header> {
    let bad = |detail: String| DataError::format(path, detail);
    let mut r = HeaderReader {
        reader,
        path,
        remaining: file_len,
        consumed: 0,
    };
    if r.bytes(8, "magic")? != PACKED_MAGIC {
        return Err(bad("not a packed file (bad magic)".into()));
    }
    let version = r.u32("version")?;
    if version != PACKED_VERSION {
        return Err(bad(format!(
            "packed format version {version}, expected {PACKED_VERSION}"
        )));
    }
    let height = r.u32("height")? as usize;
    let width = r.u32("width")? as usize;
    let num_classes = r.u32("class count")? as usize;
    let c = r.bytes(8, "image count")?;
    let count = u64::from_le_bytes(c.try_into().expect("8 bytes"));
    if height == 0 || width == 0 || num_classes == 0 {
        return Err(bad(format!(
            "bad header: {height}x{width} images, {num_classes} classes"
        )));
    }
    let mut class_names = Vec::new();
    for i in 0..num_classes {
        let len = r.u32("class names")?;
        let name = r.bytes(len.into(), "class names")?;
        let name =
            String::from_utf8(name).map_err(|_| bad(format!("class name {i} is not UTF-8")))?;
        class_names.push(name);
    }
    let image_len = (height as u64)
        .checked_mul(width as u64)
        .and_then(|a| a.checked_mul(3))
        .ok_or_else(|| bad("image size overflows".into()))?;
    let labels_len = count
        .checked_mul(4)
        .ok_or_else(|| bad("image count overflows".into()))?;
    let images_offset = r
        .consumed
        .checked_add(labels_len)
        .ok_or_else(|| bad("image count overflows".into()))?;
    let expected = count
        .checked_mul(image_len)
        .and_then(|b| b.checked_add(images_offset))
        .ok_or_else(|| bad("declared size overflows".into()))?;
    if expected != file_len {
        let kind = if file_len < expected {
            "truncated"
        } else {
            "oversized"
        };
        return Err(bad(format!(
            "{kind}: header declares {count} images of {height}x{width} ({expected} bytes) \
             but the file has {file_len} bytes"
        )));
    }
    let label_bytes = r.bytes(labels_len, "labels")?;
    let mut labels = Vec::with_capacity(count as usize);
    for (record, b) in label_bytes.chunks_exact(4).enumerate() {
        let label = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if label as usize >= num_classes {
            return Err(DataError::LabelOutOfRange {
                path: path.into(),
                record,
                label: label as usize,
                num_classes,
            });
        }
        labels.push(label);
    }
    Ok(Header {
        height,
        width,
        class_names,
        labels,
        images_offset,
    })
}

impl PackedSet {
    /// Opens a packed file (or a folder holding [`PACKED_FILE`]), checking its size and labels.
    pub fn open(path: &Path) -> Result<Self> {
        let path = if path.is_dir() {
            path.join(PACKED_FILE)
        } else {
            path.to_path_buf()
        };
        let file = File::open(&path).map_err(|e| DataError::io(&path, e))?;
        let file_len = file.metadata().map_err(|e| DataError::io(&path, e))?.len();
        let header = parse_header(&path, std::io::BufReader::new(&file), file_len)?;
        Ok(PackedSet {
            path,
            file,
            height: header.height,
            width: header.width,
            class_names: header.class_names,
            labels: header.labels,
            images_offset: header.images_offset,
        })
    }

    /// Checks a packed file held in memory (header, size and labels), returning the image count
    /// and size; never panics. For tests and fuzzing.
    pub fn check_bytes(path: &Path, bytes: &[u8]) -> Result<(usize, (usize, usize))> {
        let header = parse_header(path, bytes, bytes.len() as u64)?;
        Ok((header.labels.len(), (header.height, header.width)))
    }

    /// Path of the packed file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_read(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

impl Dataset for PackedSet {
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
        Some((self.height, self.width))
    }
    fn describe(&self) -> String {
        format!("packed file {}", self.path.display())
    }
    fn label(&self, index: usize) -> Result<usize> {
        self.labels
            .get(index)
            .map(|&l| l as usize)
            .ok_or_else(|| index_error(self, index))
    }
    fn load_into(&self, index: usize, out: &mut Image) -> Result<usize> {
        let label = self.label(index)?;
        let image_len = self.height * self.width * 3;
        out.resize_to(self.height, self.width);
        let offset = self.images_offset + (index * image_len) as u64;
        read_exact_at(&self.file, &mut out.data, offset).map_err(|e| DataError::Io {
            path: self.path.clone(),
            error: std::io::Error::new(e.kind(), format!("image {index}: {e}")),
        })?;
        Ok(label)
    }
}

/// Writes a packed file: the header and labels at creation, then one image per `push`; the file
/// appears (atomically, replacing any old one) only at [`PackedWriter::finish`].
pub struct PackedWriter {
    path: PathBuf,
    out: AtomicFile,
    height: usize,
    width: usize,
    remaining: usize,
}

impl PackedWriter {
    /// Creates `path` for `labels.len()` images of `height x width`.
    pub fn create(
        path: &Path,
        height: usize,
        width: usize,
        class_names: &[String],
        labels: &[usize],
    ) -> Result<Self> {
        let mut out = AtomicFile::create(path)?;
        let mut head = Vec::new();
        head.extend_from_slice(PACKED_MAGIC);
        for v in [
            PACKED_VERSION,
            height as u32,
            width as u32,
            class_names.len() as u32,
        ] {
            head.extend_from_slice(&v.to_le_bytes());
        }
        head.extend_from_slice(&(labels.len() as u64).to_le_bytes());
        for name in class_names {
            head.extend_from_slice(&(name.len() as u32).to_le_bytes());
            head.extend_from_slice(name.as_bytes());
        }
        for &label in labels {
            head.extend_from_slice(&(label as u32).to_le_bytes());
        }
        out.write_all(&head)?;
        Ok(PackedWriter {
            path: path.to_path_buf(),
            out,
            height,
            width,
            remaining: labels.len(),
        })
    }

    /// Appends the next image, which must be `height x width`.
    pub fn push(&mut self, index: usize, image: &Image) -> Result<()> {
        if (image.height, image.width) != (self.height, self.width) {
            return Err(DataError::SizeMismatch {
                what: format!("packing {}", self.path.display()),
                index,
                got_h: image.height,
                got_w: image.width,
                want_h: self.height,
                want_w: self.width,
            });
        }
        if self.remaining == 0 {
            return Err(DataError::config(
                "PackedWriter::push",
                "more images than labels",
            ));
        }
        self.remaining -= 1;
        self.out.write_all(&image.data)
    }

    /// Commits the file; fails (leaving no file) if fewer images than labels were pushed.
    pub fn finish(self) -> Result<()> {
        if self.remaining != 0 {
            return Err(DataError::config(
                "PackedWriter::finish",
                format!("{} images missing", self.remaining),
            ));
        }
        self.out.commit()
    }
}
