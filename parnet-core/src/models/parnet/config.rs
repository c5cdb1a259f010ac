//! ParNet variants and the switches where the paper and the official code differ
//! (PARNET-SPEC sections 2.6, 2.12, 3, 10.1 and 11).

use std::collections::HashMap;

use crate::error::{Result, invalid};

pub use crate::ops::activation::Activation;

/// Which network layout: the ImageNet model of the official code, or the CIFAR reconstruction
/// (spec section 3, "R-CIFAR").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Stem of 4 stride-2 blocks, streams of 4/5/5 blocks, wide final downsampling block.
    ImageNet,
    /// Stem of 5 blocks (two stride-1 RepVGG-SSE blocks and an added one at depth 3, then two
    /// downsampling blocks), streams of 3/4/4 blocks, final 1x1 conv + BN + act.
    Cifar,
}

/// Everything that defines a ParNet.
#[derive(Clone, Debug, PartialEq)]
pub struct ParNetConfig {
    /// Variant name (`parnet-s`, `parnet-cifar`, ... or `custom`).
    pub name: String,
    pub layout: Layout,
    /// Stream widths w0, w1, w2 and the final width wL (CIFAR: c1, c2, c3 and cf).
    pub widths: [usize; 4],
    /// Width of the first stem block (ImageNet: min(64, w0)).
    pub stem_width: usize,
    pub num_classes: usize,
    /// Dropout before the classifier.
    pub dropout: f32,
    pub activation: Activation,
    /// Multiply the gate of non-identity blocks by 2, as the official code does (range (0, 2));
    /// the paper does not mention the factor (spec 10.1.3). Default: true.
    pub double_gate: bool,
}

/// The names accepted by [`ParNetConfig::from_name`].
pub const VARIANTS: [&str; 6] = [
    "parnet-s",
    "parnet-s96",
    "parnet-m",
    "parnet-l",
    "parnet-xl",
    "parnet-cifar",
];

/// The largest width multiplier: ParNet-XL at 64x has a layer of 204,800 channels and
/// hundreds of gigabytes of weights; far past it the counts, not only the memory, overflow.
pub const MAX_WIDTH_MULT: f64 = 64.0;

impl ParNetConfig {
    /// A named variant with `num_classes` outputs (spec 2.12; `parnet-cifar` is spec section 3
    /// with widths 128/256/512/1024).
    pub fn from_name(name: &str, num_classes: usize) -> Result<ParNetConfig> {
        let (layout, widths, dropout) = match name {
            "parnet-s" => (Layout::ImageNet, [92, 192, 384, 1280], 0.0),
            "parnet-s96" => (Layout::ImageNet, [96, 192, 384, 1280], 0.0),
            "parnet-m" => (Layout::ImageNet, [128, 256, 512, 2048], 0.0),
            "parnet-l" => (Layout::ImageNet, [160, 320, 640, 2560], 0.1),
            "parnet-xl" => (Layout::ImageNet, [200, 400, 800, 3200], 0.1),
            "parnet-cifar" => (Layout::Cifar, [128, 256, 512, 1024], 0.0),
            other => {
                return Err(invalid(
                    "model",
                    format!("unknown model {other:?}; known: {}", VARIANTS.join(", ")),
                ));
            }
        };
        Self::custom(name, layout, widths, num_classes).map(|c| ParNetConfig { dropout, ..c })
    }

    /// Any widths; checks that they are usable (even, for the groups-2 fusion blocks).
    pub fn custom(
        name: &str,
        layout: Layout,
        widths: [usize; 4],
        num_classes: usize,
    ) -> Result<ParNetConfig> {
        if widths.iter().any(|&w| w == 0 || w % 2 != 0) {
            return Err(invalid(
                "model",
                format!("widths {widths:?} must be positive and even"),
            ));
        }
        if num_classes == 0 {
            return Err(invalid("model", "the class count must be positive"));
        }
        let stem_width = match layout {
            Layout::ImageNet => widths[0].min(64),
            Layout::Cifar => widths[0],
        };
        Ok(ParNetConfig {
            name: name.to_string(),
            layout,
            widths,
            stem_width,
            num_classes,
            dropout: 0.0,
            activation: Activation::Silu,
            double_gate: true,
        })
    }

    /// Scales every width by `mult` (at most [`MAX_WIDTH_MULT`]), rounded to a multiple of 8
    /// (at least 8).
    pub fn with_width_mult(mut self, mult: f64) -> Result<ParNetConfig> {
        if !(mult > 0.0 && mult <= MAX_WIDTH_MULT) {
            return Err(invalid(
                "model",
                format!("width multiplier {mult} is out of range: it takes (0, {MAX_WIDTH_MULT}]"),
            ));
        }
        let scale = |w: usize| (((w as f64 * mult) / 8.0).round() as usize).max(1) * 8;
        self.widths = self.widths.map(scale);
        self.stem_width = match self.layout {
            Layout::ImageNet => scale(self.stem_width).min(self.widths[0]),
            Layout::Cifar => self.widths[0],
        };
        Ok(self)
    }

    /// Input height and width must be multiples of this (spec 2.15: every stride-2 block needs
    /// an even input).
    pub fn size_multiple(&self) -> usize {
        match self.layout {
            Layout::ImageNet => 32,
            Layout::Cifar => 4,
        }
    }

    /// The image size the variant is meant for.
    pub fn default_image_size(&self) -> usize {
        match self.layout {
            Layout::ImageNet => 224,
            Layout::Cifar => 32,
        }
    }

    /// Blocks inside each of the three streams.
    pub fn stream_blocks(&self) -> [usize; 3] {
        match self.layout {
            Layout::ImageNet => [4, 5, 5],
            Layout::Cifar => [3, 4, 4],
        }
    }
}

impl ParNetConfig {
    /// The configuration as weights-file metadata (`model`, `layout`, `widths`, `stem_width`,
    /// `classes`, `activation`, `double_gate`, `dropout`).
    pub fn to_metadata(&self) -> HashMap<String, String> {
        let layout = match self.layout {
            Layout::ImageNet => "imagenet",
            Layout::Cifar => "cifar",
        };
        HashMap::from([
            ("model".to_string(), self.name.clone()),
            ("layout".to_string(), layout.to_string()),
            (
                "widths".to_string(),
                self.widths.map(|w| w.to_string()).join(","),
            ),
            ("stem_width".to_string(), self.stem_width.to_string()),
            ("classes".to_string(), self.num_classes.to_string()),
            ("activation".to_string(), self.activation.name().to_string()),
            ("double_gate".to_string(), self.double_gate.to_string()),
            ("dropout".to_string(), self.dropout.to_string()),
        ])
    }

    /// Reads what [`ParNetConfig::to_metadata`] wrote.
    pub fn from_metadata(md: &HashMap<String, String>) -> Result<ParNetConfig> {
        let get = |k: &str| {
            md.get(k)
                .map(String::as_str)
                .ok_or_else(|| invalid("metadata", format!("no `{k}` in the file's metadata")))
        };
        fn parse<T: std::str::FromStr>(k: &str, v: &str) -> Result<T> {
            v.trim()
                .parse()
                .map_err(|_| invalid("metadata", format!("`{k}` = {v:?} cannot be read")))
        }
        let layout = match get("layout")? {
            "imagenet" => Layout::ImageNet,
            "cifar" => Layout::Cifar,
            other => return Err(invalid("metadata", format!("unknown layout {other:?}"))),
        };
        let widths = get("widths")?
            .split(',')
            .map(|w| parse::<usize>("widths", w))
            .collect::<Result<Vec<_>>>()?;
        let widths: [usize; 4] = widths
            .try_into()
            .map_err(|_| invalid("metadata", "`widths` must hold four numbers"))?;
        let classes = parse("classes", get("classes")?)?;
        let mut cfg = ParNetConfig::custom(get("model")?, layout, widths, classes)?;
        cfg.stem_width = parse("stem_width", get("stem_width")?)?;
        cfg.activation = Activation::parse(get("activation")?)?;
        cfg.double_gate = parse("double_gate", get("double_gate")?)?;
        cfg.dropout = parse("dropout", get("dropout")?)?;
        Ok(cfg)
    }
}
