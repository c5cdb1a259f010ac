//! `parnet eval`: loss, top-1 and top-5 of a checkpoint or deploy weights on a data set, or on
//! exactly the images its training run held out for validation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use parnet_data::datasets::cifar::{CifarLabel, Split};
use parnet_data::{DataFormat, Dataset, Loader, LoaderConfig, OpenOptions, open_dataset};

use super::args::ModelArgs;
use super::eval_settings::{EvalConfig, EvalInterpolation, EvalSettings};
use crate::checkpoint::{DATA_IMAGES_KEY, load_network};
use crate::config::TrainConfig;
use crate::data_setup;
use crate::deploy::Forward;
use crate::evaluate::{EvalResult, Evaluation, Tta, evaluate_by};

/// Options of `parnet eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// The network (default: the one the file records).
    #[command(flatten)]
    pub model: ModelArgs,
    /// A training checkpoint or weights (either form).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The data set (with --held-out: default the training run's data source).
    #[arg(long, required_unless_present = "held_out")]
    pub data: Option<PathBuf>,
    /// cifar10, cifar100 or folder (default: recognised from the path).
    #[arg(long, conflicts_with = "held_out")]
    pub format: Option<String>,
    /// An evaluation config: its `[eval]` table gives image_size, crop_pct, interpolation,
    /// mean, std and batch_size (e.g. configs/imagenet-eval.toml); flags override it.
    #[arg(long, conflicts_with = "held_out")]
    pub config: Option<PathBuf>,
    /// Images per batch (default 256).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Evaluate as timm does: resize the shorter side to floor(image_size / crop_pct), then
    /// centre-crop image_size (default: the crop the file records: `parnet import` of an
    /// ImageNet network writes timm's 0.875, a run trained with ImageNet augmentation uses it
    /// too; without one, images are only normalised and must all have the network's size).
    #[arg(long, conflicts_with = "held_out")]
    pub crop_pct: Option<f64>,
    /// The evaluation crop's side (default: the file's image_size).
    #[arg(long, conflicts_with = "held_out")]
    pub image_size: Option<usize>,
    /// The resize's filter with --crop-pct (Pillow's pixels, as timm's PIL transforms).
    #[arg(long, value_enum, conflicts_with = "held_out")]
    pub interpolation: Option<EvalInterpolation>,
    /// Also report the prediction averaged over each image and its mirror image.
    #[arg(long, value_enum, default_value_t = Tta::None)]
    pub tta: Tta,
    /// Only the images the checkpoint's training run held out for validation: the split is
    /// rebuilt from the run's config stored in the checkpoint (data.val_count, train.seed), so
    /// the figures are those the run logged.
    #[arg(long)]
    pub held_out: bool,
    #[arg(long)]
    pub json: bool,
}

/// Runs `parnet eval` and prints its figures.
pub fn run(args: &EvalArgs) -> Result<()> {
    let r = run_eval(args)?;
    if !r.plain.loss.is_finite() {
        eprintln!(
            "warning: the loss is {}: the network's outputs hold NaN or infinite values (check the weights in {} and the data)",
            r.plain.loss,
            args.checkpoint.display()
        );
    }
    if args.json {
        crate::say!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        let line = |what: &str, r: &EvalResult| {
            crate::say!(
                "{} images{what}: top-1 {:.2}%, top-5 {:.2}%, loss {:.4}",
                r.images,
                100.0 * r.top1,
                100.0 * r.top5,
                r.loss
            )
        };
        line("", &r.plain);
        if let Some(flip) = &r.flip {
            line(" with flip TTA", flip);
        }
    }
    Ok(())
}

/// Evaluates a checkpoint or deploy-weights file with the transform of [`EvalSettings::resolve`]
/// (flags over `--config` over the file's metadata), or on the run's held-out images.
pub fn run_eval(args: &EvalArgs) -> Result<Evaluation> {
    let path = &args.checkpoint;
    if !path.exists() {
        bail!("checkpoint {} does not exist", path.display());
    }
    let spec = args.model.spec_for_file(path)?;
    let loaded = load_network(spec.as_ref(), path, false)?;
    let (model, metadata) = (loaded.model, loaded.file_metadata);
    let loader = if args.held_out {
        let batch_size = args.batch_size.unwrap_or(256);
        held_out_loader(&metadata, path, args.data.as_deref(), batch_size)?
    } else {
        let data = args
            .data
            .as_deref()
            .expect("clap requires --data without --held-out");
        let settings = EvalSettings::resolve(args.given()?, &metadata, path)?;
        data_set_loader(data, args.format.as_deref(), &settings)?
    };
    let classes = loader.dataset().num_classes();
    if classes > model.num_classes() {
        bail!(
            "the data set has {classes} classes but the model predicts {}",
            model.num_classes()
        );
    }
    // Deploy weights run on the executor, training checkpoints on the graph they trained on.
    let mut forward = Forward::for_model(model.as_ref());
    let classes = model.num_classes();
    evaluate_by(&mut |x| forward.forward(x), classes, &loader, args.tta)
}

impl EvalArgs {
    /// The transform settings the flags give (the rest comes from the config and the file).
    fn given(&self) -> Result<EvalConfig> {
        let flags = EvalConfig {
            image_size: self.image_size,
            crop_pct: self.crop_pct,
            interpolation: self.interpolation,
            batch_size: self.batch_size,
            ..EvalConfig::default()
        };
        Ok(match &self.config {
            Some(path) => flags.or(EvalConfig::load(path)?),
            None => flags,
        })
    }
}

/// Every image of `data` through the transform of `settings` (without a crop every image must
/// have one size); `format` picks CIFAR labels or split for binary sets.
fn data_set_loader(data: &Path, format: Option<&str>, settings: &EvalSettings) -> Result<Loader> {
    let mut options = OpenOptions {
        split: Split::Test,
        cifar_label: CifarLabel::Fine,
        skip_corrupt: false,
        // Without a crop evaluation normalises only, so every image must have one size.
        uniform_size: settings.crop.is_none(),
    };
    match format {
        None | Some("cifar10") | Some("cifar100") | Some("folder") => {}
        Some(other) => bail!("unknown --format {other:?} (cifar10, cifar100 or folder)"),
    }
    if format == Some("folder")
        || data.is_dir() && !parnet_data::datasets::cifar::is_cifar_folder(data)
    {
        options.split = Split::Train;
    }
    let opened =
        open_dataset(data, &options).with_context(|| format!("opening {}", data.display()))?;
    let expected = match format {
        Some("cifar10") => Some(DataFormat::Cifar10),
        Some("cifar100") => Some(DataFormat::Cifar100),
        Some("folder") => Some(DataFormat::ImageFolder),
        _ => None,
    };
    if let Some(want) = expected
        && want != opened.format
    {
        bail!(
            "--format {}: {} is a {} set, not a {want} one",
            format.unwrap_or_default(),
            data.display(),
            opened.format
        );
    }
    let set: Arc<dyn Dataset> = Arc::from(opened.dataset);
    Ok(Loader::new(
        set,
        settings.pipeline(),
        LoaderConfig::eval(settings.batch_size),
    )?)
}

/// The validation loader of the run that wrote `file`, rebuilt from its stored config with the
/// data source replaced by `data` when given.
fn held_out_loader(
    metadata: &HashMap<String, String>,
    path: &Path,
    data: Option<&Path>,
    batch_size: usize,
) -> Result<Loader> {
    let text = metadata.get("config").ok_or_else(|| {
        anyhow!(
            "{} holds no training config, so its held-out images are unknown \
             (--held-out needs a checkpoint written by `parnet train`)",
            path.display()
        )
    })?;
    let mut cfg = TrainConfig::from_toml(text, &format!("stored in {}", path.display()))?;
    if let Some(data) = data {
        cfg.data.source = data.display().to_string();
    }
    cfg.train.eval_batch_size = batch_size;
    let run_data = data_setup::build(&cfg)?;
    let images = run_data.train.len() + run_data.val.len();
    if let Some(recorded) = metadata.get(DATA_IMAGES_KEY)
        && recorded.parse::<usize>().ok() != Some(images)
    {
        bail!(
            "{} has {images} images but the run that wrote {} trained on {recorded}, so its \
             held-out split cannot be rebuilt from it",
            cfg.data.source,
            path.display()
        );
    }
    Ok(run_data.val)
}
