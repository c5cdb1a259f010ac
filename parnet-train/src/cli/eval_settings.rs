//! What `parnet eval` does to each image, from three sources in order of precedence: the
//! command line, an `--config` file's `[eval]` table (e.g. `configs/imagenet-eval.toml`), and
//! the weights file's metadata (`mean`, `std`, `image_size`, `crop_pct`, a run's `config`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use parnet_data::transforms::IMAGENET_CROP_PCT;
use parnet_data::{Interpolation, Pipeline};
use serde::Deserialize;

use crate::checkpoint::parse3;
use crate::config::{Augment, TrainConfig};

/// Filters of the evaluation resize.
#[derive(clap::ValueEnum, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EvalInterpolation {
    Bilinear,
    Bicubic,
}

impl From<EvalInterpolation> for Interpolation {
    fn from(value: EvalInterpolation) -> Self {
        match value {
            EvalInterpolation::Bilinear => Interpolation::Bilinear,
            EvalInterpolation::Bicubic => Interpolation::Bicubic,
        }
    }
}

/// The `[eval]` table of an evaluation config; every key optional. The command-line flags of
/// the same names hold the same values.
#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    pub image_size: Option<usize>,
    pub crop_pct: Option<f64>,
    pub interpolation: Option<EvalInterpolation>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
    pub batch_size: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalConfigFile {
    #[serde(default)]
    eval: EvalConfig,
}

impl EvalConfig {
    /// Reads the `[eval]` table of `path`.
    pub fn load(path: &Path) -> Result<EvalConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let file: EvalConfigFile =
            toml::from_str(&text).with_context(|| format!("bad config {}", path.display()))?;
        Ok(file.eval)
    }

    /// `self` where it has a value, else `fallback`.
    pub fn or(self, fallback: EvalConfig) -> EvalConfig {
        EvalConfig {
            image_size: self.image_size.or(fallback.image_size),
            crop_pct: self.crop_pct.or(fallback.crop_pct),
            interpolation: self.interpolation.or(fallback.interpolation),
            mean: self.mean.or(fallback.mean),
            std: self.std.or(fallback.std),
            batch_size: self.batch_size.or(fallback.batch_size),
        }
    }
}

/// How evaluation images are brought to the network's input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalCrop {
    pub image_size: usize,
    pub crop_pct: f64,
    pub interpolation: Interpolation,
}

/// The resolved evaluation transform.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSettings {
    /// Resize and centre-crop, or none (then every image must have one size).
    pub crop: Option<EvalCrop>,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub batch_size: usize,
}

impl EvalSettings {
    /// Resolves `given` (the command line over the config file) against the metadata of
    /// `file`: what `given` leaves open comes from the file, then from the defaults (CIFAR-10
    /// mean/std, batch 256, bicubic). The crop is the given or recorded `crop_pct` (or timm's
    /// 0.875 for a run trained with ImageNet augmentation); without one there is none.
    pub fn resolve(
        given: EvalConfig,
        metadata: &HashMap<String, String>,
        file: &Path,
    ) -> Result<EvalSettings> {
        let file = file.display();
        let recorded = |key: &str| metadata.get(key).map(String::as_str);
        let number = |key: &str| -> Result<Option<f64>> {
            recorded(key)
                .map(|text| {
                    text.parse::<f64>()
                        .map_err(|_| anyhow!("{file} records {key} {text:?}, not a number"))
                })
                .transpose()
        };
        let trained_on_imagenet_augmentation = recorded("config")
            .and_then(|text| TrainConfig::from_toml(text, "").ok())
            .is_some_and(|cfg| cfg.data.augment == Augment::Imagenet);
        let recorded_crop =
            number("crop_pct")?.or(trained_on_imagenet_augmentation.then_some(IMAGENET_CROP_PCT));
        let crop = match given.crop_pct.or(recorded_crop) {
            None if given.image_size.is_some() => {
                bail!("--image-size needs --crop-pct ({file} records no evaluation crop)")
            }
            None => None,
            Some(crop_pct) => {
                if !(crop_pct > 0.0 && crop_pct <= 1.0) {
                    bail!("crop_pct must be in (0, 1], got {crop_pct}");
                }
                let image_size = match given.image_size {
                    Some(size) => size,
                    None => match number("image_size")? {
                        Some(size) if size.fract() == 0.0 && size >= 0.0 => size as usize,
                        Some(size) => bail!("{file} records image_size {size}, not a whole number"),
                        None => bail!(
                            "{file} records no image_size: give the crop's side with --image-size"
                        ),
                    },
                };
                if image_size == 0 {
                    bail!("image_size must be positive");
                }
                Some(EvalCrop {
                    image_size,
                    crop_pct,
                    interpolation: given
                        .interpolation
                        .unwrap_or(EvalInterpolation::Bicubic)
                        .into(),
                })
            }
        };
        let default_norm = Pipeline::cifar_eval();
        let channels = |given: Option<[f32; 3]>, key: &str, default: [f32; 3]| match given {
            Some(values) => Ok(values),
            None => recorded(key)
                .map(parse3)
                .transpose()
                .map(|values| values.unwrap_or(default)),
        };
        let mean = channels(given.mean, "mean", default_norm.mean)?;
        let std = channels(given.std, "std", default_norm.std)?;
        let batch_size = given.batch_size.unwrap_or(256);
        if batch_size == 0 {
            bail!("batch_size must be positive");
        }
        Ok(EvalSettings {
            crop,
            mean,
            std,
            batch_size,
        })
    }

    /// The per-image transform.
    pub fn pipeline(&self) -> Pipeline {
        match self.crop {
            Some(c) => Pipeline::resize_center_crop_eval(
                c.image_size,
                c.crop_pct,
                c.interpolation,
                self.mean,
                self.std,
            ),
            None => Pipeline::normalize_only(self.mean, self.std),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_command_line_beats_the_config_which_beats_the_file() {
        let file = metadata(&[
            ("crop_pct", "0.875"),
            ("image_size", "224"),
            ("mean", "0,0,0"),
        ]);
        let path = Path::new("w.safetensors");
        let config = EvalConfig {
            crop_pct: Some(0.9),
            interpolation: Some(EvalInterpolation::Bilinear),
            batch_size: Some(8),
            ..Default::default()
        };
        let flags = EvalConfig {
            image_size: Some(160),
            ..Default::default()
        };
        let s = EvalSettings::resolve(flags.or(config), &file, path).unwrap();
        assert_eq!(
            s.crop,
            Some(EvalCrop {
                image_size: 160,
                crop_pct: 0.9,
                interpolation: Interpolation::Bilinear
            })
        );
        assert_eq!((s.mean, s.batch_size), ([0.0; 3], 8));
        let plain = EvalSettings::resolve(EvalConfig::default(), &file, path).unwrap();
        assert_eq!(plain.crop.unwrap().image_size, 224);
        assert_eq!(plain.pipeline(), {
            let mut p = Pipeline::imagenet_eval(224);
            p.mean = [0.0; 3];
            p.std = Pipeline::cifar_eval().std;
            p
        });
    }

    #[test]
    fn no_crop_without_one_and_bad_values_are_errors() {
        let path = Path::new("w.safetensors");
        let none = EvalSettings::resolve(EvalConfig::default(), &metadata(&[]), path).unwrap();
        assert_eq!(none.crop, None);
        let size_only = EvalConfig {
            image_size: Some(224),
            ..Default::default()
        };
        let err = EvalSettings::resolve(size_only, &metadata(&[]), path).unwrap_err();
        assert!(err.to_string().contains("--image-size needs --crop-pct"));
        let bad = [
            (
                metadata(&[("crop_pct", "wide")]),
                "records crop_pct \"wide\"",
            ),
            (
                metadata(&[("crop_pct", "1.5"), ("image_size", "8")]),
                "(0, 1]",
            ),
            (metadata(&[("crop_pct", "0.5")]), "records no image_size"),
            (
                metadata(&[("crop_pct", "0.5"), ("image_size", "8.5")]),
                "not a whole",
            ),
        ];
        for (md, needle) in bad {
            let err = EvalSettings::resolve(EvalConfig::default(), &md, path).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{err:#}");
        }
    }

    #[test]
    fn the_shipped_imagenet_eval_config_is_timms() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/imagenet-eval.toml");
        let config = EvalConfig::load(&path).unwrap();
        let s = EvalSettings::resolve(config, &HashMap::new(), &path).unwrap();
        assert_eq!(s.pipeline(), Pipeline::imagenet_eval(224));
        let dir = tempfile::tempdir().unwrap();
        let typo = dir.path().join("typo.toml");
        std::fs::write(&typo, "[eval]\ncrop_pc = 0.9\n").unwrap();
        let err = format!("{:#}", EvalConfig::load(&typo).unwrap_err());
        assert!(
            err.contains("typo.toml") && err.contains("crop_pc"),
            "{err}"
        );
    }
}
