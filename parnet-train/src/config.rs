//! The training configuration: a TOML file (`configs/*.toml`), command-line overrides, and the
//! checks that run before any training starts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::evaluate::Tta;
use crate::schedule::Schedule;

/// The default job's configuration (`configs/synthetic.toml`, compiled in).
pub const DEFAULT_CONFIG: &str = include_str!("../../configs/synthetic.toml");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelSection,
    pub data: DataSection,
    pub optim: OptimSection,
    pub schedule: Schedule,
    pub train: RunSection,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Any registry network (`parnet-cifar`, `parnet-s`, `resnet-20`, ...).
    pub name: String,
    /// Outputs of the classifier (default: the data set's class count; never fewer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    #[serde(default)]
    pub width_mult: Option<f64>,
    #[serde(default = "default_activation")]
    pub activation: String,
    /// Dropout before the classifier (default: the variant's).
    #[serde(default)]
    pub dropout: Option<f32>,
}

fn default_activation() -> String {
    "silu".into()
}

/// How images are augmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// Pad 4 + random crop + flip (the paper's CIFAR scheme).
    Cifar,
    /// Random-resized-crop, flip, RandAugment, random erasing (spec 7.1).
    Imagenet,
    /// Normalisation only.
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// `synthetic`, or a path: a CIFAR binary folder or file, an image folder, a packed file.
    pub source: String,
    /// Size of the synthetic training set.
    #[serde(default = "default_synthetic_train")]
    pub synthetic_train: usize,
    /// Size of the synthetic validation set (drawn with another seed).
    #[serde(default = "default_synthetic_val")]
    pub synthetic_val: usize,
    /// Images of a real training set held out (by seed) for validation.
    #[serde(default = "default_val_count")]
    pub val_count: usize,
    pub augment: Augment,
    /// Training and evaluation crop size (ImageNet augmentation only).
    #[serde(default)]
    pub image_size: Option<usize>,
    /// Random-erasing probability (ImageNet augmentation only).
    #[serde(default)]
    pub erase_prob: f32,
    /// Skip and count undecodable images of an image folder.
    #[serde(default)]
    pub skip_corrupt: bool,
}

fn default_synthetic_train() -> usize {
    8000
}
fn default_synthetic_val() -> usize {
    2000
}
fn default_val_count() -> usize {
    5000
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimSection {
    pub lr: f64,
    #[serde(default = "default_momentum")]
    pub momentum: f32,
    #[serde(default = "default_true")]
    pub nesterov: bool,
    #[serde(default)]
    pub weight_decay: f32,
    #[serde(default)]
    pub label_smoothing: f32,
    /// Clip the global gradient norm to this value.
    #[serde(default)]
    pub grad_clip: Option<f32>,
    /// Keep an exponential moving average of the weights, evaluated alongside.
    #[serde(default)]
    pub ema_decay: Option<f32>,
}

fn default_momentum() -> f32 {
    0.9
}
fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// May be fractional: the last epoch then stops after that fraction of its batches (used
    /// to give networks of different speeds the same training time).
    pub epochs: f64,
    pub batch_size: usize,
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// Evaluate on the validation set after every this many epochs; the last epoch is always
    /// evaluated.
    #[serde(default = "default_eval_every")]
    pub eval_every: usize,
    /// Test-time augmentation measured beside the plain validation figures ("none" or "flip").
    #[serde(default)]
    pub eval_tta: Tta,
    #[serde(default)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[serde(default)]
    pub threads: Option<usize>,
    /// The run directory.
    pub out: PathBuf,
    /// Stop (with a checkpoint) once this many minutes of training have passed.
    #[serde(default)]
    pub time_limit_minutes: Option<f64>,
    /// Run the streams one after another (for comparisons; results are identical).
    #[serde(default)]
    pub sequential_streams: bool,
}

fn default_eval_batch() -> usize {
    256
}
fn default_eval_every() -> usize {
    1
}

/// Command-line values that replace those of the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub model: Option<String>,
    pub classes: Option<usize>,
    pub activation: Option<String>,
    pub data: Option<String>,
    pub epochs: Option<f64>,
    pub batch_size: Option<usize>,
    pub lr: Option<f64>,
    pub width_mult: Option<f64>,
    pub seed: Option<u64>,
    pub threads: Option<usize>,
    pub out: Option<PathBuf>,
    pub time_limit_minutes: Option<f64>,
}

impl TrainConfig {
    /// Parses TOML; unknown keys and wrong types fail with the key's name and position.
    pub fn from_toml(text: &str, origin: &str) -> Result<TrainConfig> {
        let cfg: TrainConfig =
            toml::from_str(text).with_context(|| format!("bad config {origin}"))?;
        Ok(cfg)
    }

    /// Reads a config file, or the default job's config when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<TrainConfig> {
        match path {
            None => Self::from_toml(DEFAULT_CONFIG, "(built-in default)"),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config {}", p.display()))?;
                Self::from_toml(&text, &p.display().to_string())
            }
        }
    }

    /// Replaces the file's values by the command line's.
    pub fn apply(&mut self, o: &Overrides) {
        if let Some(v) = &o.model {
            self.model.name = v.clone();
        }
        if let Some(v) = o.classes {
            self.model.classes = Some(v);
        }
        if let Some(v) = &o.activation {
            self.model.activation = v.clone();
        }
        if let Some(v) = &o.data {
            self.data.source = v.clone();
        }
        if let Some(v) = o.width_mult {
            self.model.width_mult = Some(v);
        }
        if let Some(v) = o.lr {
            self.optim.lr = v;
        }
        let t = &mut self.train;
        t.epochs = o.epochs.unwrap_or(t.epochs);
        t.batch_size = o.batch_size.unwrap_or(t.batch_size);
        t.seed = o.seed.unwrap_or(t.seed);
        t.threads = o.threads.or(t.threads);
        t.time_limit_minutes = o.time_limit_minutes.or(t.time_limit_minutes);
        if let Some(v) = &o.out {
            t.out = v.clone();
        }
    }

    /// Checks every value that could only fail later, naming the key.
    pub fn validate(&self) -> Result<()> {
        let o = &self.optim;
        let in_unit = |v: f32| (0.0..1.0).contains(&v);
        let checks: [(bool, &str, String); 14] = [
            (
                self.train.epochs > 0.0 && self.train.epochs.is_finite(),
                "train.epochs",
                "must be positive".into(),
            ),
            (
                self.train.batch_size > 0,
                "train.batch_size",
                "must be at least 1".into(),
            ),
            (
                self.train.eval_batch_size > 0,
                "train.eval_batch_size",
                "must be at least 1".into(),
            ),
            (
                self.train.eval_every > 0,
                "train.eval_every",
                "must be at least 1".into(),
            ),
            (
                self.train.threads != Some(0),
                "train.threads",
                "must be at least 1".into(),
            ),
            (
                o.lr > 0.0 && o.lr.is_finite(),
                "optim.lr",
                format!("must be positive, got {}", o.lr),
            ),
            (
                in_unit(o.momentum),
                "optim.momentum",
                format!("must be in [0, 1), got {}", o.momentum),
            ),
            (
                o.weight_decay >= 0.0,
                "optim.weight_decay",
                "must be >= 0".into(),
            ),
            (
                in_unit(o.label_smoothing),
                "optim.label_smoothing",
                "must be in [0, 1)".into(),
            ),
            (
                o.grad_clip.is_none_or(|c| c > 0.0),
                "optim.grad_clip",
                "must be positive".into(),
            ),
            (
                o.ema_decay.is_none_or(in_unit),
                "optim.ema_decay",
                "must be in [0, 1)".into(),
            ),
            (
                self.model.width_mult.is_none_or(|m| m > 0.0),
                "model.width_mult",
                "must be positive".into(),
            ),
            (
                self.model.dropout.is_none_or(in_unit),
                "model.dropout",
                "must be in [0, 1)".into(),
            ),
            (
                self.train
                    .time_limit_minutes
                    .is_none_or(|m| m >= 0.0 && m.is_finite()),
                "train.time_limit_minutes",
                format!(
                    "must be zero or a positive number of minutes, got {}",
                    self.train.time_limit_minutes.unwrap_or_default()
                ),
            ),
        ];
        for (ok, key, why) in checks {
            if !ok {
                bail!("bad config: {key} {why}");
            }
        }
        if o.nesterov && o.momentum == 0.0 {
            bail!("bad config: optim.nesterov needs optim.momentum > 0");
        }
        self.schedule
            .validate()
            .map_err(|e| anyhow::anyhow!("bad config: {e}"))?;
        Ok(())
    }

    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_configs_parse_validate_and_roundtrip() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // `*-eval.toml` are `parnet eval --config` files (cli::eval_settings tests them).
            let eval_config = path.to_string_lossy().ends_with("-eval.toml");
            if path.extension().is_some_and(|e| e == "toml") && !eval_config {
                let cfg = TrainConfig::load(Some(&path)).unwrap();
                cfg.validate().unwrap();
                let again = TrainConfig::from_toml(&cfg.to_toml().unwrap(), "roundtrip").unwrap();
                assert_eq!(cfg, again, "{}", path.display());
                names.push(path.file_stem().unwrap().to_string_lossy().into_owned());
            }
        }
        for name in [
            "synthetic",
            "cifar10",
            "cifar100",
            "imagenet",
            "cifar10-hour",
        ] {
            assert!(
                names.iter().any(|n| n == name),
                "configs/{name}.toml missing"
            );
        }
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let bad = DEFAULT_CONFIG.replace("batch_size = 64", "batch_size = 64\nbatchsize = 3");
        let err = format!("{:#}", TrainConfig::from_toml(&bad, "x").unwrap_err());
        assert!(err.contains("batchsize"), "{err}");
        let bad = DEFAULT_CONFIG.replace("lr = 0.1", "lr = \"fast\"");
        let err = format!("{:#}", TrainConfig::from_toml(&bad, "x").unwrap_err());
        assert!(err.contains("lr"), "{err}");
    }

    #[test]
    fn impossible_values_fail_validation_naming_the_key() {
        let mut cfg = TrainConfig::load(None).unwrap();
        cfg.optim.momentum = 1.5;
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("optim.momentum")
        );
        let mut cfg = TrainConfig::load(None).unwrap();
        cfg.apply(&Overrides {
            epochs: Some(0.0),
            ..Default::default()
        });
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("train.epochs")
        );
    }
}
