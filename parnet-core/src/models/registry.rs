//! Every network by name, and the metadata that rebuilds one from a weights file.
//!
//! Every model of the project is built through [`NetworkSpec`] (every `parnet` subcommand, the
//! training loop, the study and the benches): a name plus the few options a name leaves open
//! (class count, width multiplier, activation, dropout). Names:
//! - the ParNet variants (`parnet-s`, ..., `parnet-cifar`; [`parnet::VARIANTS`]);
//! - the deep baselines (`resnet-18/34/50`, `resnet-20/56`, `sequential-parnet-cifar`;
//!   [`resnet::BASELINES`]);
//! - members of the depth sweep, `sweep-s{streams}-b{blocks}-w{width}` ([`parnet_sweep`]).

use std::collections::HashMap;

use super::Network;
use super::parnet::{self, Activation, ParNet, ParNetConfig};
use super::parnet_sweep::{SweepNet, SweepSpec};
use super::resnet::{self, ResNet, ResNetConfig};
use super::sequential_parnet::{SEQUENTIAL_PARNET_CIFAR, SequentialParNet};
use crate::error::{Result, invalid};

/// A network by name, with the options the name leaves open.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSpec {
    pub name: String,
    pub num_classes: usize,
    /// Width multiplier (ParNet variants and `sequential-parnet-cifar` only).
    pub width_mult: Option<f64>,
    /// Block activation (ParNet-style networks only; the ResNets use ReLU).
    pub activation: Activation,
    /// Dropout before the classifier (ParNet-style networks); `None` keeps the variant's.
    pub dropout: Option<f32>,
}

/// The kind of network a name denotes.
enum Family {
    ParNet,
    SequentialParNet,
    ResNet,
    Sweep,
}

fn family(name: &str) -> Result<Family> {
    if parnet::VARIANTS.contains(&name) {
        Ok(Family::ParNet)
    } else if name == SEQUENTIAL_PARNET_CIFAR {
        Ok(Family::SequentialParNet)
    } else if resnet::RESNET_VARIANTS.contains(&name) {
        Ok(Family::ResNet)
    } else if name.starts_with("sweep-") {
        Ok(Family::Sweep)
    } else {
        Err(invalid(
            "model",
            format!(
                "unknown model {name:?}; known: {}, {}, and sweep-s<streams>-b<blocks>-w<width>",
                parnet::VARIANTS.join(", "),
                resnet::BASELINES.join(", ")
            ),
        ))
    }
}

/// The most classes a network may have (ImageNet-21k has 21,841); more is a typo, and its
/// classifier would not fit in memory.
pub const MAX_CLASSES: usize = 1 << 20;

/// The class count a name implies when none is given: 1000 for the ImageNet layouts (ParNet-S to
/// -XL, ResNet-18/34/50), 10 for the CIFAR ones.
pub fn default_num_classes(name: &str) -> usize {
    let imagenet = (parnet::VARIANTS.contains(&name) && name != "parnet-cifar")
        || ["resnet-18", "resnet-34", "resnet-50"].contains(&name);
    if imagenet { 1000 } else { 10 }
}

/// One name of every kind the registry builds: every ParNet variant, every baseline and a member
/// of the depth sweep (whose names are open-ended).
pub fn example_names() -> Vec<String> {
    parnet::VARIANTS
        .iter()
        .chain(resnet::BASELINES.iter())
        .map(|s| s.to_string())
        .chain(["sweep-s2-b3-w16".to_string()])
        .collect()
}

impl NetworkSpec {
    /// `name` with `num_classes` outputs and every option at its default (SiLU, except for a
    /// sweep member whose name ends in `-relu`).
    pub fn new(name: &str, num_classes: usize) -> NetworkSpec {
        let relu_sweep = name.starts_with("sweep-") && name.ends_with("-relu");
        NetworkSpec {
            name: name.to_string(),
            num_classes,
            width_mult: None,
            activation: if relu_sweep {
                Activation::Relu
            } else {
                Activation::Silu
            },
            dropout: None,
        }
    }

    /// Checks the name and that the options apply to it, without building anything.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_CLASSES).contains(&self.num_classes) {
            return Err(invalid(
                "model",
                format!(
                    "{}: {} classes; it takes 1 to {MAX_CLASSES}",
                    self.name, self.num_classes
                ),
            ));
        }
        match family(&self.name)? {
            Family::ParNet | Family::SequentialParNet => self.parnet_config().map(|_| ()),
            Family::ResNet | Family::Sweep => {
                if self.width_mult.is_some_and(|m| m != 1.0) {
                    return Err(invalid(
                        "model",
                        format!(
                            "{}: a width multiplier applies only to the ParNet variants and sequential-parnet-cifar (set it to 1 or leave it out)",
                            self.name
                        ),
                    ));
                }
                if matches!(family(&self.name)?, Family::Sweep) {
                    SweepSpec::parse(&self.name, self.num_classes)?;
                } else {
                    ResNetConfig::from_name(&self.name, self.num_classes)?;
                }
                Ok(())
            }
        }
    }

    /// The ParNet configuration of a ParNet variant or of `sequential-parnet-cifar` (which
    /// takes `parnet-cifar`'s widths).
    pub fn parnet_config(&self) -> Result<ParNetConfig> {
        let base = match family(&self.name)? {
            Family::ParNet => self.name.as_str(),
            Family::SequentialParNet => "parnet-cifar",
            _ => {
                return Err(invalid("model", format!("{} is not a ParNet", self.name)));
            }
        };
        let mut config = ParNetConfig::from_name(base, self.num_classes)?;
        if let Some(m) = self.width_mult {
            config = config.with_width_mult(m)?;
        }
        config.activation = self.activation;
        if let Some(p) = self.dropout {
            config.dropout = p;
        }
        Ok(config)
    }

    /// A freshly initialised network (seeded).
    pub fn build(&self, seed: u64) -> Result<Box<dyn Network>> {
        self.validate()?;
        Ok(match family(&self.name)? {
            Family::ParNet => Box::new(ParNet::new(self.parnet_config()?, seed)?),
            Family::SequentialParNet => {
                Box::new(SequentialParNet::new(self.parnet_config()?, seed)?)
            }
            Family::ResNet => Box::new(ResNet::new(
                ResNetConfig::from_name(&self.name, self.num_classes)?,
                seed,
            )?),
            Family::Sweep => {
                // The name decides the activation (`-relu` suffix); keep the two consistent.
                let spec = SweepSpec::parse(&self.name, self.num_classes)?;
                if spec.activation != self.activation {
                    return Err(invalid(
                        "model",
                        format!(
                            "{} has activation {} by its name, not {}",
                            self.name,
                            spec.activation.name(),
                            self.activation.name()
                        ),
                    ));
                }
                Box::new(SweepNet::new(spec, seed)?)
            }
        })
    }

    /// The metadata that [`NetworkSpec::from_metadata`] reads back. ParNet variants also get
    /// their explicit widths (`layout`, `widths`, ...), which older files carry alone.
    pub fn to_metadata(&self) -> Result<HashMap<String, String>> {
        let mut md = HashMap::from([
            ("model".to_string(), self.name.clone()),
            ("classes".to_string(), self.num_classes.to_string()),
            ("activation".to_string(), self.activation.name().to_string()),
        ]);
        if let Some(m) = self.width_mult {
            md.insert("width_mult".into(), m.to_string());
        }
        if let Some(p) = self.dropout {
            md.insert("dropout".into(), p.to_string());
        }
        if matches!(family(&self.name)?, Family::ParNet) {
            md.extend(self.parnet_config()?.to_metadata());
        }
        Ok(md)
    }

    /// Reads what [`NetworkSpec::to_metadata`] wrote.
    pub fn from_metadata(md: &HashMap<String, String>) -> Result<NetworkSpec> {
        let get = |k: &str| {
            md.get(k)
                .map(String::as_str)
                .ok_or_else(|| invalid("metadata", format!("no `{k}` in the file's metadata")))
        };
        let number =
            |k: &str, v: &str| invalid("metadata", format!("`{k}` = {v:?} is not a number"));
        let classes = get("classes")?;
        let mut spec = NetworkSpec::new(
            get("model")?,
            classes.parse().map_err(|_| number("classes", classes))?,
        );
        if let Some(v) = md.get("width_mult") {
            spec.width_mult = Some(v.parse().map_err(|_| number("width_mult", v))?);
        }
        if let Some(v) = md.get("dropout") {
            spec.dropout = Some(v.parse().map_err(|_| number("dropout", v))?);
        }
        if let Some(v) = md.get("activation") {
            spec.activation = Activation::parse(v)?;
        }
        spec.validate()?;
        Ok(spec)
    }
}

/// The metadata keys that describe a network (what [`NetworkSpec::to_metadata`] and
/// [`ParNetConfig::to_metadata`] write); `form` (`train` or `fused`) says which form the file
/// holds.
pub const MODEL_METADATA_KEYS: [&str; 9] = [
    "model",
    "classes",
    "activation",
    "width_mult",
    "dropout",
    "layout",
    "widths",
    "stem_width",
    "double_gate",
];

/// Whether a file's metadata describes its network (so [`network_from_metadata`] can build it).
pub fn metadata_describes_network(md: &HashMap<String, String>) -> bool {
    md.contains_key("model") && md.contains_key("classes")
}

/// The network a weights file's metadata describes, in the form it records (`form` = `fused`
/// gives the deploy model), ready to receive the weights. Files whose metadata holds explicit
/// ParNet widths (`layout`, `widths`) are rebuilt from those, so custom widths round-trip.
pub fn network_from_metadata(md: &HashMap<String, String>) -> Result<Box<dyn Network>> {
    let model: Box<dyn Network> = if md.contains_key("layout") {
        Box::new(ParNet::new(ParNetConfig::from_metadata(md)?, 0)?)
    } else {
        NetworkSpec::from_metadata(md)?.build(0)?
    };
    if md.get("form").map(String::as_str) == Some("fused") {
        model.deploy()
    } else {
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_builds_and_round_trips_through_metadata() {
        let mut specs = vec![
            NetworkSpec::new("parnet-cifar", 10),
            NetworkSpec::new("resnet-20", 10),
            NetworkSpec::new("sequential-parnet-cifar", 100),
            NetworkSpec::new("sweep-s2-b3-w16", 10),
        ];
        specs[0].width_mult = Some(0.125);
        specs[0].activation = Activation::Relu;
        specs[2].width_mult = Some(0.125);
        specs[2].dropout = Some(0.2);
        for spec in specs {
            let model = spec.build(0).unwrap();
            assert_eq!(model.name(), spec.name);
            assert_eq!(model.num_classes(), spec.num_classes);
            let md = spec.to_metadata().unwrap();
            let read = NetworkSpec::from_metadata(&md).unwrap();
            assert_eq!(
                (
                    &read.name,
                    read.num_classes,
                    read.width_mult,
                    read.activation
                ),
                (
                    &spec.name,
                    spec.num_classes,
                    spec.width_mult,
                    spec.activation
                )
            );
            if let Ok(config) = spec.parnet_config() {
                // A ParNet's file also records the variant's dropout explicitly.
                assert_eq!(read.parnet_config().unwrap(), config);
            } else {
                assert_eq!(read.dropout, spec.dropout);
            }
            let rebuilt = network_from_metadata(&md).unwrap();
            assert_eq!(rebuilt.num_params(), model.num_params(), "{}", spec.name);
            assert_eq!(rebuilt.macs(32), model.macs(32), "{}", spec.name);
        }
    }

    #[test]
    fn parnet_metadata_keeps_explicit_widths() {
        let mut spec = NetworkSpec::new("parnet-cifar", 10);
        spec.width_mult = Some(0.25);
        let md = spec.to_metadata().unwrap();
        assert_eq!(md["widths"], "32,64,128,256");
        let mut fused = md.clone();
        fused.insert("form".into(), "fused".into());
        let deploy = network_from_metadata(&fused).unwrap();
        let train = network_from_metadata(&md).unwrap();
        assert!(deploy.num_params() < train.num_params());
    }

    #[test]
    fn bad_names_and_options_are_refused() {
        assert!(NetworkSpec::new("resnet-19", 10).build(0).is_err());
        let mut spec = NetworkSpec::new("resnet-20", 10);
        spec.width_mult = Some(0.5);
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("width multiplier"), "{err}");
        let md = HashMap::from([("model".to_string(), "parnet-cifar".to_string())]);
        let err = NetworkSpec::from_metadata(&md).unwrap_err().to_string();
        assert!(err.contains("classes"), "{err}");
    }

    #[test]
    fn baselines_by_name() {
        let build = |name: &str, classes: usize, width_mult: Option<f64>| {
            NetworkSpec {
                width_mult,
                ..NetworkSpec::new(name, classes)
            }
            .build(0)
        };
        for name in resnet::BASELINES {
            let model = build(name, 10, None).unwrap();
            assert_eq!(model.name(), name);
            assert_eq!(model.num_classes(), 10);
        }
        assert_eq!(build("resnet-20", 10, None).unwrap().num_params(), 272_474);
        let half = build("sequential-parnet-cifar", 10, Some(0.5)).unwrap();
        let full = build("sequential-parnet-cifar", 10, None).unwrap();
        assert!(half.num_params() * 3 < full.num_params());
        let err = build("resnet-101", 10, None).err().unwrap().to_string();
        assert!(
            err.contains("resnet-101") && err.contains("resnet-56"),
            "{err}"
        );
        assert!(build("resnet-20", 10, Some(2.0)).is_err());
        assert!(build("resnet-18", 0, None).is_err());
    }

    /// Every kind of network: its table agrees with the model it describes (parameters of both
    /// forms, multiply-adds of both forms, depth), and the default class counts.
    #[test]
    fn every_network_agrees_with_its_info_table() {
        for name in example_names() {
            let mut spec = NetworkSpec::new(&name, default_num_classes(&name));
            if name.starts_with("parnet") || name.starts_with("sequential") {
                spec.width_mult = Some(0.0625);
            }
            let model = spec.build(0).unwrap();
            let size = model.input_multiple() * 8;
            let info = model.info(size);
            let deploy = model.deploy().unwrap();
            assert!(!model.is_deploy() && deploy.is_deploy(), "{name}");
            assert_eq!(info.params_train, model.num_params(), "{name}");
            assert_eq!(info.params_fused, deploy.num_params(), "{name}");
            assert_eq!(info.macs_train, model.macs(size), "{name}");
            assert_eq!(info.macs_fused, deploy.macs(size), "{name}");
            assert_eq!(info, deploy.info(size), "{name}");
            assert_eq!(model.depth(), info.depth, "{name}");
            let last = info.layers.last().unwrap();
            assert_eq!(last.out_shape, [model.num_classes(), 1, 1], "{name}");
        }
        assert_eq!(default_num_classes("parnet-s"), 1000);
        assert_eq!(default_num_classes("resnet-50"), 1000);
        assert_eq!(default_num_classes("parnet-cifar"), 10);
        assert_eq!(default_num_classes("resnet-56"), 10);
    }
}
