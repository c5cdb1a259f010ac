//! parnet-data: datasets, u8 image transforms and a deterministic batch loader for parnet-rs.
//!
//! Knows nothing of autograd: it hands out plain f32 NCHW batches and labels.
//!
//! Map of the crate:
//! - [`dataset`]: the [`Dataset`] trait; [`image`]: the RGB u8 [`Image`].
//! - [`datasets`]: [`CifarSet`] (CIFAR-10/100 binary), [`ImageFolder`] (JPEG/PNG class folders),
//!   [`PackedSet`] (one file of equal-size images), [`SyntheticSet`] (procedural, no files), and
//!   [`open_dataset`] which recognises a path.
//! - [`transforms`]: crop/flip, random-resized-crop, resize + centre crop, RandAugment,
//!   normalisation, random erasing, chained by a serde-friendly [`Pipeline`].
//! - [`loader`]: [`Loader`] (seeded shuffle, parallel batches, prefetch queue), [`Batch`],
//!   [`train_val_split`].
//! - [`inspect()`] and [`pack_folder`]: the library side of `parnet data inspect` / `parnet data pack`.
//! - [`atomic_file`]: [`AtomicFile`], how the crate writes files (temp, sync, rename).
//! - [`seed`]: how every random choice derives from (seed, epoch, sample index).
//!
//! See docs/DATA.md for formats and the determinism contract.

pub mod atomic_file;
pub mod dataset;
pub mod datasets;
pub mod error;
pub mod image;
pub mod inspect;
pub mod loader;
pub mod pack;
pub mod seed;
pub mod transforms;

pub use atomic_file::AtomicFile;
pub use dataset::Dataset;
pub use datasets::cifar::{CifarKind, CifarLabel, CifarSet, Split};
pub use datasets::folder::{FolderOptions, ImageFolder};
pub use datasets::open::{DataFormat, OpenOptions, OpenedDataset, open_dataset};
pub use datasets::packed::PackedSet;
pub use datasets::synthetic::SyntheticSet;
pub use error::{DataError, Result};
pub use image::Image;
pub use inspect::{InspectReport, inspect, inspect_dataset, inspect_with};
pub use loader::{Batch, EpochIter, Loader, LoaderConfig, train_val_split};
pub use pack::{PackLayout, PackOptions, PackReport, pack_folder};
pub use transforms::{ImageOp, Interpolation, Pipeline, RandAugment, RandomErasing};
