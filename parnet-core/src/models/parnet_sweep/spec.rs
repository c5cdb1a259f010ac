//! One member of the depth sweep: streams, blocks per stream, base width, classes, activation;
//! its name. Its counts are read off its plan (`plan.rs`).

use crate::error::{Result, invalid};
use crate::models::parnet::Activation;

/// Most streams a member may have.
pub const MAX_STREAMS: usize = 4;
/// Largest base width (keeps every count far from `usize` overflow).
pub const MAX_WIDTH: usize = 4096;
/// Most blocks per stream.
pub const MAX_BLOCKS: usize = 256;

/// A sweep member. Widths are `w_i = width · 2^i`; stream i runs at `R / 2^i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepSpec {
    pub streams: usize,
    pub blocks: usize,
    pub width: usize,
    pub num_classes: usize,
    pub activation: Activation,
}

impl SweepSpec {
    /// A SiLU member; `streams` in 1..=4, `blocks` in 1..=256, `width` even in 2..=4096.
    pub fn new(
        streams: usize,
        blocks: usize,
        width: usize,
        num_classes: usize,
    ) -> Result<SweepSpec> {
        if !(1..=MAX_STREAMS).contains(&streams) {
            return Err(invalid(
                "sweep",
                format!("streams {streams} must be in 1..={MAX_STREAMS}"),
            ));
        }
        if !(1..=MAX_BLOCKS).contains(&blocks) {
            return Err(invalid(
                "sweep",
                format!("blocks per stream {blocks} must be in 1..={MAX_BLOCKS}"),
            ));
        }
        if width == 0 || !width.is_multiple_of(2) || width > MAX_WIDTH {
            return Err(invalid(
                "sweep",
                format!("width {width} must be even, positive and at most {MAX_WIDTH}"),
            ));
        }
        if num_classes == 0 {
            return Err(invalid("sweep", "the class count must be positive"));
        }
        Ok(SweepSpec {
            streams,
            blocks,
            width,
            num_classes,
            activation: Activation::Silu,
        })
    }

    /// The same member with another activation.
    pub fn with_activation(self, activation: Activation) -> SweepSpec {
        SweepSpec { activation, ..self }
    }

    /// `sweep-s<streams>-b<blocks>-w<width>`, with `-relu` appended for ReLU members.
    pub fn name(&self) -> String {
        let base = format!("sweep-s{}-b{}-w{}", self.streams, self.blocks, self.width);
        match self.activation {
            Activation::Silu => base,
            Activation::Relu => format!("{base}-relu"),
        }
    }

    /// The member named `name` (the inverse of [`SweepSpec::name`]).
    pub fn parse(name: &str, num_classes: usize) -> Result<SweepSpec> {
        let bad = || {
            invalid(
                "sweep",
                format!(
                    "{name:?} is not a sweep model name (expected sweep-s<streams>-b<blocks>-w<width>, \
                     e.g. sweep-s3-b4-w32, optionally ending in -relu)"
                ),
            )
        };
        let rest = name.strip_prefix("sweep-").ok_or_else(bad)?;
        let (rest, activation) = match rest.strip_suffix("-relu") {
            Some(r) => (r, Activation::Relu),
            None => (rest, Activation::Silu),
        };
        let parts: Vec<&str> = rest.split('-').collect();
        let number = |part: &str, letter: char| -> Result<usize> {
            let digits = part.strip_prefix(letter).ok_or_else(bad)?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            digits.parse().map_err(|_| bad())
        };
        let [s, b, w] = parts[..] else {
            return Err(bad());
        };
        let spec = SweepSpec::new(
            number(s, 's')?,
            number(b, 'b')?,
            number(w, 'w')?,
            num_classes,
        )?;
        Ok(spec.with_activation(activation))
    }

    /// Input height and width must be multiples of this: every stride-2 block needs an even
    /// input, down to R/4 (R/8 with four streams).
    pub fn size_multiple(&self) -> usize {
        4.max(1 << (self.streams - 1))
    }
}
