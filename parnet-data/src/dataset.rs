//! The `Dataset` trait: an indexable set of labelled RGB images.

use crate::error::{DataError, Result};
use crate::image::Image;

/// An indexable, thread-safe set of labelled RGB u8 images.
///
/// Implementations: [`crate::CifarSet`] (in memory), [`crate::ImageFolder`] (lazily decoded
/// JPEG/PNG), [`crate::PackedSet`] (one file of equal-size images) and [`crate::SyntheticSet`].
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// True when there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of classes; labels are in `0..num_classes()`.
    fn num_classes(&self) -> usize;

    /// Class names, indexed by label.
    fn class_names(&self) -> &[String];

    /// `Some((height, width))` when every image has the same known size without decoding.
    fn image_size(&self) -> Option<(usize, usize)>;

    /// A short human name for the set (used in error messages and reports).
    fn describe(&self) -> String;

    /// The label of sample `index`, without decoding the image.
    fn label(&self, index: usize) -> Result<usize>;

    /// Loads sample `index` into `out` (reusing its allocation) and returns its label.
    fn load_into(&self, index: usize, out: &mut Image) -> Result<usize>;

    /// Loads sample `index` into a new image.
    fn get(&self, index: usize) -> Result<(Image, usize)> {
        let mut image = Image::default();
        let label = self.load_into(index, &mut image)?;
        Ok((image, label))
    }
}

/// The error for an index past the end of `dataset`.
pub(crate) fn index_error(dataset: &dyn Dataset, index: usize) -> DataError {
    DataError::IndexOutOfRange {
        what: dataset.describe(),
        index,
        len: dataset.len(),
    }
}

impl<D: Dataset + ?Sized> Dataset for std::sync::Arc<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn num_classes(&self) -> usize {
        (**self).num_classes()
    }
    fn class_names(&self) -> &[String] {
        (**self).class_names()
    }
    fn image_size(&self) -> Option<(usize, usize)> {
        (**self).image_size()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn label(&self, index: usize) -> Result<usize> {
        (**self).label(index)
    }
    fn load_into(&self, index: usize, out: &mut Image) -> Result<usize> {
        (**self).load_into(index, out)
    }
}

impl<D: Dataset + ?Sized> Dataset for Box<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn num_classes(&self) -> usize {
        (**self).num_classes()
    }
    fn class_names(&self) -> &[String] {
        (**self).class_names()
    }
    fn image_size(&self) -> Option<(usize, usize)> {
        (**self).image_size()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn label(&self, index: usize) -> Result<usize> {
        (**self).label(index)
    }
    fn load_into(&self, index: usize, out: &mut Image) -> Result<usize> {
        (**self).load_into(index, out)
    }
}
