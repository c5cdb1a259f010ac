//! `parnet train` and `parnet eval`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use parnet_data::datasets::cifar::{CifarLabel, Split};
use parnet_data::{Dataset, Loader, LoaderConfig, OpenOptions, Pipeline, open_dataset};

use crate::checkpoint::{self, parse3};
use crate::config::{Overrides, TrainConfig};
use crate::evaluate::{Evaluation, Tta, evaluate_with};
use crate::model_io::model_from_metadata;
use crate::train::{TrainOptions, TrainSummary, resume, train};

/// Options of `parnet train`.
#[derive(Args, Debug, Clone, Default)]
pub struct TrainArgs {
    /// A TOML config (default: the built-in synthetic job, configs/synthetic.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long, conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    #[arg(long)]
    pub model: Option<String>,
    /// `synthetic` or a data path (default: the config's, or $PARNET_DATA for real-data configs).
    #[arg(long)]
    pub data: Option<String>,
    /// Training epochs (may be fractional, e.g. 2.5).
    #[arg(long)]
    pub epochs: Option<f64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub width_mult: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub threads: Option<usize>,
    /// The run directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop with a checkpoint after this many minutes.
    #[arg(long)]
    pub time_limit_minutes: Option<f64>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Resolves the configuration (file, then $PARNET_DATA for a config whose data path does not
/// exist, then command-line overrides) and trains, or resumes.
pub fn run_train(args: &TrainArgs) -> Result<TrainSummary> {
    let opts = TrainOptions {
        progress: !args.quiet,
        verbose: true,
    };
    if let Some(dir) = &args.resume {
        return resume(dir, opts);
    }
    let mut cfg = TrainConfig::load(args.config.as_deref())?;
    if cfg.data.source != "synthetic"
        && !Path::new(&cfg.data.source).exists()
        && let Ok(env) = std::env::var("PARNET_DATA")
    {
        cfg.data.source = env;
    }
    cfg.apply(&Overrides {
        model: args.model.clone(),
        data: args.data.clone(),
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        width_mult: args.width_mult,
        seed: args.seed,
        threads: args.threads,
        out: args.out.clone(),
        time_limit_minutes: args.time_limit_minutes,
    });
    train(cfg, opts)
}

/// Evaluates a checkpoint or deploy-weights file on a data set, with the normalisation its
/// metadata records. `format` picks CIFAR labels or split for binary sets.
pub fn run_eval(
    checkpoint_path: &Path,
    data: &Path,
    format: Option<&str>,
    batch_size: usize,
    tta: Tta,
) -> Result<Evaluation> {
    if !checkpoint_path.exists() {
        bail!("checkpoint {} does not exist", checkpoint_path.display());
    }
    let file = checkpoint::read(checkpoint_path)?;
    let model = model_from_metadata(&file.metadata)
        .with_context(|| format!("{} does not describe its model", checkpoint_path.display()))?;
    file.load_model(model.as_ref(), checkpoint_path)?;
    let mean = file.metadata.get("mean").map(|s| parse3(s)).transpose()?;
    let std = file.metadata.get("std").map(|s| parse3(s)).transpose()?;
    let mut options = OpenOptions {
        split: Split::Test,
        cifar_label: CifarLabel::Fine,
        skip_corrupt: false,
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
    let set: Arc<dyn Dataset> = Arc::from(opened.dataset);
    if set.num_classes() > model.num_classes() {
        bail!(
            "{} has {} classes but the model predicts {}",
            data.display(),
            set.num_classes(),
            model.num_classes()
        );
    }
    let default_norm = Pipeline::cifar_eval();
    let pipeline = Pipeline::normalize_only(
        mean.unwrap_or(default_norm.mean),
        std.unwrap_or(default_norm.std),
    );
    let loader = Loader::new(set, pipeline, LoaderConfig::eval(batch_size))?;
    evaluate_with(model.as_ref(), &loader, tta)
}
