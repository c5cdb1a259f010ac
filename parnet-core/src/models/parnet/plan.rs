//! The architecture as data: every layer with its key prefix, channels, stride and groups, and
//! the edges between layers. The model is built from the plan; the depth, the parameter and
//! multiply-add counts and the per-stage shapes are read off it without allocating weights.

use super::config::{Layout, ParNetConfig};

/// One generic block (spec 2.2).
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSpec {
    /// Key prefix of the block's tensors, e.g. `streams.0.1.block`.
    pub prefix: String,
    pub cin: usize,
    pub cout: usize,
    pub stride: usize,
    pub groups: usize,
}

impl BlockSpec {
    /// Case A (gated identity BN) exactly when Cin == Cout and stride 1 (spec 2.2).
    pub fn has_identity(&self) -> bool {
        self.cin == self.cout && self.stride == 1
    }

    /// Training-graph parameters (spec 6.1).
    pub fn params_train(&self) -> usize {
        let c = self.cin / self.groups;
        let id = if self.has_identity() { 2 * self.cin } else { 0 };
        9 * self.cout * c + 2 * self.cout + self.cout * c + 2 * self.cout + self.cout * c + id
    }

    /// Parameters after reparameterization (spec 6.1).
    pub fn params_fused(&self) -> usize {
        let c = self.cin / self.groups;
        let id = if self.has_identity() { 2 * self.cin } else { 0 };
        9 * self.cout * c + self.cout + self.cout * c + id
    }

    /// Multiply-adds for an input of `h x w` (per image): (train, fused).
    pub fn macs(&self, h: usize, w: usize) -> (usize, usize) {
        let (ho, wo) = (h / self.stride, w / self.stride);
        let c = self.cin / self.groups;
        let dense = ho * wo * self.cout * c * 9;
        let one = ho * wo * self.cout * c;
        let se = self.cout * c;
        (dense + one + se, dense + se)
    }
}

/// The layer after the last fusion.
#[derive(Clone, Debug, PartialEq)]
pub enum FinalSpec {
    /// ImageNet: a wide stride-2 downsampling block (`combine.3`).
    Block(BlockSpec),
    /// CIFAR: 1x1 conv + BN + activation (`combine.3.conv`, `combine.3.bn`).
    Conv1x1 {
        prefix: String,
        cin: usize,
        cout: usize,
    },
}

/// A fusion block (spec 2.5): two BNs on the inputs, interleave, a groups-2 block, shuffle.
#[derive(Clone, Debug, PartialEq)]
pub struct FusionSpec {
    /// Key prefix, e.g. `combine`; the BNs are `<prefix>.0.b1/b2`, the block `<prefix>.2.block`.
    pub prefix: String,
    /// Channels of each input.
    pub channels: usize,
    pub block: BlockSpec,
}

/// The whole network as data.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The stem chain; its last three outputs feed streams 0, 1, 2.
    pub stem: Vec<BlockSpec>,
    pub streams: [Vec<BlockSpec>; 3],
    /// Downsampling block leaving stream 0 (`downsamples_2.0`).
    pub down0: BlockSpec,
    /// Stride-2 fusion of stream 1 with `down0` (`downsamples_2.1`).
    pub fuse1: FusionSpec,
    /// Stride-1 fusion of stream 2 with `fuse1` (`combine`).
    pub fuse2: FusionSpec,
    pub final_layer: FinalSpec,
    /// Classifier input features and classes (`head.fc`).
    pub head: (usize, usize),
}

fn block(prefix: String, cin: usize, cout: usize, stride: usize, groups: usize) -> BlockSpec {
    BlockSpec {
        prefix,
        cin,
        cout,
        stride,
        groups,
    }
}

impl Plan {
    pub fn new(cfg: &ParNetConfig) -> Plan {
        let [w0, w1, w2, wl] = cfg.widths;
        let stem = match cfg.layout {
            Layout::ImageNet => vec![
                block("inits.0.0.block".into(), 3, cfg.stem_width, 2, 1),
                block("inits.0.1.block".into(), cfg.stem_width, w0, 2, 1),
                block("inits.1.block".into(), w0, w1, 2, 1),
                block("inits.2.block".into(), w1, w2, 2, 1),
            ],
            Layout::Cifar => vec![
                block("inits.0.0.block".into(), 3, w0, 1, 1),
                block("inits.0.1.block".into(), w0, w0, 1, 1),
                block("inits.0.2.block".into(), w0, w0, 1, 1),
                block("inits.1.block".into(), w0, w1, 2, 1),
                block("inits.2.block".into(), w1, w2, 2, 1),
            ],
        };
        let widths = [w0, w1, w2];
        let counts = cfg.stream_blocks();
        let streams = std::array::from_fn(|s| {
            (0..counts[s])
                .map(|i| block(format!("streams.{s}.{i}.block"), widths[s], widths[s], 1, 1))
                .collect()
        });
        let fusion = |prefix: &str, c: usize, cout: usize, stride: usize| FusionSpec {
            prefix: prefix.to_string(),
            channels: c,
            block: block(format!("{prefix}.2.block"), 2 * c, cout, stride, 2),
        };
        let final_layer = match cfg.layout {
            Layout::ImageNet => FinalSpec::Block(block("combine.3.block".into(), w2, wl, 2, 1)),
            Layout::Cifar => FinalSpec::Conv1x1 {
                prefix: "combine.3".into(),
                cin: w2,
                cout: wl,
            },
        };
        Plan {
            stem,
            streams,
            down0: block("downsamples_2.0.block".into(), w0, w1, 2, 1),
            fuse1: fusion("downsamples_2.1", w1, w2, 2),
            fuse2: fusion("combine", w2, w2, 1),
            final_layer,
            head: (wl, cfg.num_classes),
        }
    }
}
