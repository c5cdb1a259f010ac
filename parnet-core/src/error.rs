//! The one error type of parnet-core.

use std::path::PathBuf;

/// Everything a public function of parnet-core can refuse.
///
/// Shapes are carried as `Vec<usize>` so that messages name them exactly.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Operand shapes do not fit the op.
    #[error("{op}: shape mismatch: {detail} (got {shapes})")]
    Shape {
        op: &'static str,
        detail: String,
        shapes: String,
    },
    /// A scalar argument (stride, groups, probability, ...) is out of range.
    #[error("{op}: invalid argument: {detail}")]
    InvalidArgument { op: &'static str, detail: String },
    /// Backward was asked of something that cannot be differentiated.
    #[error("backward: {0}")]
    Autograd(String),
    /// Reading or writing a file failed.
    /// The OS error is in the message and not a `source`, so a printed chain says it once.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A weights file is malformed, or does not match the model.
    #[error("{path}: {detail}")]
    Weights { path: PathBuf, detail: String },
    /// A training step's loss was NaN or infinite (no weight was changed).
    #[error("the loss became {0}")]
    NonFiniteLoss(f32),
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Formats a list of shapes as `[2, 3] and [4]` for error messages.
pub(crate) fn fmt_shapes(shapes: &[&[usize]]) -> String {
    shapes
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Builds a [`CoreError::Shape`].
pub(crate) fn shape_error(
    op: &'static str,
    detail: impl Into<String>,
    shapes: &[&[usize]],
) -> CoreError {
    CoreError::Shape {
        op,
        detail: detail.into(),
        shapes: fmt_shapes(shapes),
    }
}

/// Builds a [`CoreError::InvalidArgument`].
pub(crate) fn invalid(op: &'static str, detail: impl Into<String>) -> CoreError {
    CoreError::InvalidArgument {
        op,
        detail: detail.into(),
    }
}
