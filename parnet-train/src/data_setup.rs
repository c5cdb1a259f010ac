//! Turning the `[data]` section into training and validation loaders.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use parnet_data::{
    Dataset, Loader, LoaderConfig, OpenOptions, Pipeline, SyntheticSet, open_dataset,
    train_val_split,
};

use crate::config::{Augment, TrainConfig};

/// The loaders of a run and what the model and checkpoints need to know about the data.
pub struct RunData {
    pub train: Loader,
    pub val: Loader,
    pub num_classes: usize,
    pub image_size: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// A line saying what was loaded.
    pub description: String,
}

/// The training and evaluation pipelines for an augmentation scheme.
pub fn pipelines(augment: Augment, image_size: usize, erase_prob: f32) -> (Pipeline, Pipeline) {
    match augment {
        Augment::Cifar => (Pipeline::cifar_train(), Pipeline::cifar_eval()),
        Augment::Imagenet => (
            Pipeline::imagenet_train(image_size, erase_prob),
            Pipeline::imagenet_eval(image_size),
        ),
        Augment::None => (Pipeline::cifar_eval(), Pipeline::cifar_eval()),
    }
}

/// Opens the data source of `cfg` and builds the loaders.
pub fn build(cfg: &TrainConfig) -> Result<RunData> {
    let d = &cfg.data;
    let seed = cfg.train.seed;
    let image_size = d.image_size.unwrap_or(32);
    let (train_pipe, eval_pipe) = pipelines(d.augment, image_size, d.erase_prob);
    let (mean, std) = (eval_pipe.mean, eval_pipe.std);
    let train_cfg = LoaderConfig::train(cfg.train.batch_size, seed);
    let eval_cfg = LoaderConfig::eval(cfg.train.eval_batch_size);
    let (train, val, num_classes, description) = if d.source == "synthetic" {
        if d.synthetic_train == 0 || d.synthetic_val == 0 {
            bail!("bad config: data.synthetic_train and data.synthetic_val must be positive");
        }
        let train_set: Arc<dyn Dataset> = Arc::new(SyntheticSet::new(d.synthetic_train, seed));
        let val_set: Arc<dyn Dataset> =
            Arc::new(SyntheticSet::new(d.synthetic_val, seed ^ 0x5eed_f7a1));
        let classes = train_set.num_classes();
        let description = format!(
            "synthetic: {} training and {} validation images",
            d.synthetic_train, d.synthetic_val
        );
        (
            Loader::new(train_set, train_pipe, train_cfg)?,
            Loader::new(val_set, eval_pipe, eval_cfg)?,
            classes,
            description,
        )
    } else {
        let path = Path::new(&d.source);
        if !path.exists() {
            bail!(
                "data source {} does not exist (set data.source, --data or PARNET_DATA)",
                path.display()
            );
        }
        let opened = open_dataset(
            path,
            &OpenOptions {
                skip_corrupt: d.skip_corrupt,
                // Only the ImageNet pipelines resize; the others need images of one size.
                uniform_size: d.augment != Augment::Imagenet,
                ..Default::default()
            },
        )
        .with_context(|| format!("opening {}", path.display()))?;
        let set: Arc<dyn Dataset> = Arc::from(opened.dataset);
        let n = set.len();
        if d.val_count >= n {
            bail!(
                "bad config: data.val_count {} leaves no training image of {n}",
                d.val_count
            );
        }
        let (train_idx, val_idx) = train_val_split(n, d.val_count, seed)?;
        let classes = set.num_classes();
        let mut description = format!(
            "{} ({}): {} training, {} validation images, {classes} classes",
            path.display(),
            opened.format,
            train_idx.len(),
            val_idx.len()
        );
        if !opened.skipped.is_empty() {
            description += &format!("; skipped {} unreadable images", opened.skipped.len());
        }
        let train = Loader::new(set.clone(), train_pipe, train_cfg)?.with_subset(train_idx)?;
        let val = Loader::new(set, eval_pipe, eval_cfg)?.with_subset(val_idx)?;
        (train, val, classes, description)
    };
    let (h, w) = train.image_size();
    if h != w {
        bail!("training images are {h}x{w}; only square inputs are supported");
    }
    Ok(RunData {
        train,
        val,
        num_classes,
        image_size: h,
        mean,
        std,
        description,
    })
}
