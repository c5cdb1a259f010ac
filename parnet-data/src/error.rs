//! The one error type of the crate: every variant names the file, record or image at fault.

use std::path::PathBuf;

/// Result alias used throughout parnet-data.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong while reading, packing or loading data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A path that should exist does not.
    #[error("{path}: no such file or folder")]
    MissingPath { path: PathBuf },

    /// An operating-system error while reading or writing a path.
    /// The OS error is in the message and not a `source`, so a printed chain says it once.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    /// A CIFAR binary file whose size is not a whole number of records, or is larger than its kind allows.
    #[error("{path}: {detail}")]
    CifarSize { path: PathBuf, detail: String },

    /// A record whose label is outside `0..num_classes`.
    #[error("{path}: record {record}: label {label} out of range (0..{num_classes})")]
    LabelOutOfRange {
        path: PathBuf,
        record: usize,
        label: usize,
        num_classes: usize,
    },

    /// An image that could not be decoded.
    #[error("{path}: image {index} cannot be decoded: {detail}")]
    CorruptImage {
        path: PathBuf,
        index: usize,
        detail: String,
    },

    /// A class folder with no image in it.
    #[error("{path}: class folder '{class}' holds no JPEG or PNG image")]
    EmptyClass { path: PathBuf, class: String },

    /// A path that is not in any format this crate reads, or a malformed header.
    #[error("{path}: {detail}")]
    Format { path: PathBuf, detail: String },

    /// Images of different sizes where one size is needed (a batch, a CIFAR pack).
    #[error("{what}: image {index} is {got_h}x{got_w}, expected {want_h}x{want_w}")]
    SizeMismatch {
        what: String,
        index: usize,
        got_h: usize,
        got_w: usize,
        want_h: usize,
        want_w: usize,
    },

    /// A sample index past the end of a dataset.
    #[error("{what}: index {index} out of range (len {len})")]
    IndexOutOfRange {
        what: String,
        index: usize,
        len: usize,
    },

    /// A configuration value that makes no sense (batch size 0, crop larger than image, ...).
    #[error("{what}: {detail}")]
    InvalidConfig { what: String, detail: String },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::MissingPath { path }
        } else {
            DataError::Io {
                path,
                error: source,
            }
        }
    }

    pub(crate) fn config(what: impl Into<String>, detail: impl Into<String>) -> Self {
        DataError::InvalidConfig {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            detail: detail.into(),
        }
    }
}
