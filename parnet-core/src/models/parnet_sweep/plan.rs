//! A sweep member as data: every block with its key prefix, channels and stride, and the edges
//! between layers. The model is built from this plan, and depth, parameters and multiply-adds are
//! read off the same plan (through [`LayerInfo`] and `models::info::longest_path`), so they cannot drift
//! apart.

use super::spec::{MAX_WIDTH, SweepSpec};
use crate::error::{Result, invalid};
use crate::models::info::{LayerInfo, ModelInfo};
use crate::models::parnet::plan::{BlockSpec, FusionSpec};

/// The blocks of one member (see the module docs of [`super`] for the topology).
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPlan {
    /// `stem.0` (3 -> w0) and `stem.1` (w0 -> w0), both stride 1; `stem.1` feeds stream 0.
    pub stem: Vec<BlockSpec>,
    /// `inits.{i}` for i = 1..S (w_{i-1} -> w_i, stride 2); `inits[i - 1]` feeds stream i.
    pub inits: Vec<BlockSpec>,
    /// `streams.{i}.{j}`: B case-A blocks w_i -> w_i per stream.
    pub streams: Vec<Vec<BlockSpec>>,
    /// `down0` (w0 -> w1, stride 2), present when S >= 2.
    pub down0: Option<BlockSpec>,
    /// `fuse.{i}` for i = 1..S: stream i with the merged features so far.
    pub fusions: Vec<FusionSpec>,
    /// `tail.{k}`: stride-2 blocks doubling the width until the resolution is R/4.
    pub tail: Vec<BlockSpec>,
    /// `final`: 1x1 conv + BN + activation, (cin, cout) with cout = 2·cin.
    pub final_conv: (usize, usize),
    /// `head.fc`: (features, classes).
    pub head: (usize, usize),
}

fn block(prefix: String, cin: usize, cout: usize, stride: usize) -> BlockSpec {
    BlockSpec {
        prefix,
        cin,
        cout,
        stride,
        groups: 1,
    }
}

impl SweepPlan {
    pub fn new(spec: &SweepSpec) -> SweepPlan {
        let s = spec.streams;
        let w: Vec<usize> = (0..=s).map(|i| spec.width << i).collect();
        let stem = vec![
            block("stem.0".into(), 3, w[0], 1),
            block("stem.1".into(), w[0], w[0], 1),
        ];
        let inits = (1..s)
            .map(|i| block(format!("inits.{i}"), w[i - 1], w[i], 2))
            .collect();
        let streams = (0..s)
            .map(|i| {
                (0..spec.blocks)
                    .map(|j| block(format!("streams.{i}.{j}"), w[i], w[i], 1))
                    .collect()
            })
            .collect();
        let down0 = (s >= 2).then(|| block("down0".into(), w[0], w[1], 2));
        let fusions = (1..s)
            .map(|i| {
                let prefix = format!("fuse.{i}");
                let (cout, stride) = if i < s - 1 { (w[i + 1], 2) } else { (w[i], 1) };
                FusionSpec {
                    block: BlockSpec {
                        prefix: format!("{prefix}.2.block"),
                        cin: 2 * w[i],
                        cout,
                        stride,
                        groups: 2,
                    },
                    prefix,
                    channels: w[i],
                }
            })
            .collect();
        // The merged output is at R/2^(S-1) with width w_{S-1} (S = 1: stream 0 itself).
        let (mut width, mut level) = (w[s - 1], s - 1);
        let mut tail = Vec::new();
        while level < 2 {
            tail.push(block(format!("tail.{}", tail.len()), width, 2 * width, 2));
            (width, level) = (2 * width, level + 1);
        }
        SweepPlan {
            stem,
            inits,
            streams,
            down0,
            fusions,
            tail,
            final_conv: (width, 2 * width),
            head: (2 * width, spec.num_classes),
        }
    }

    /// Every layer in topological order with its output shape, counts and inputs, for a square
    /// input of `image_size` pixels (a multiple of [`SweepSpec::size_multiple`]).
    pub fn layers(&self, image_size: usize) -> Vec<LayerInfo> {
        let mut layers: Vec<LayerInfo> = Vec::new();
        let push_block = |layers: &mut Vec<LayerInfo>, b: &BlockSpec, input: Option<usize>| {
            let hw = input.map_or(image_size, |i| layers[i].out_shape[1]);
            layers.push(b.layer_info(input, hw));
            layers.len() - 1
        };
        let mut prev = None;
        for b in &self.stem {
            prev = Some(push_block(&mut layers, b, prev));
        }
        let mut taps = vec![layers.len() - 1];
        for b in &self.inits {
            let last = taps[taps.len() - 1];
            taps.push(push_block(&mut layers, b, Some(last)));
        }
        let mut stream_out = Vec::new();
        for (stream, &tap) in self.streams.iter().zip(&taps) {
            let mut prev = tap;
            for b in stream {
                prev = push_block(&mut layers, b, Some(prev));
            }
            stream_out.push(prev);
        }
        let mut merged = stream_out[0];
        if let Some(d) = &self.down0 {
            merged = push_block(&mut layers, d, Some(merged));
        }
        for (fusion, &stream) in self.fusions.iter().zip(&stream_out[1..]) {
            let hw = layers[stream].out_shape[1];
            layers.push(fusion.bn_layer_info(stream, merged, hw));
            let bns = layers.len() - 1;
            merged = push_block(&mut layers, &fusion.block, Some(bns));
        }
        for b in &self.tail {
            merged = push_block(&mut layers, b, Some(merged));
        }
        let (cin, cout) = self.final_conv;
        let hw = layers[merged].out_shape[1];
        layers.push(LayerInfo::conv1x1_bn("final", cin, cout, hw, merged));
        let (features, classes) = self.head;
        layers.push(LayerInfo::classifier(
            "head.fc",
            features,
            classes,
            layers.len() - 1,
        ));
        layers
    }

    /// Totals, depth (longest path, spec section 4) and the per-layer table.
    pub fn info(&self, image_size: usize) -> ModelInfo {
        ModelInfo::from_layers(image_size, self.layers(image_size))
    }
}

/// What a member costs, read off its plan.
impl SweepSpec {
    /// The member's blocks as data.
    pub fn plan(&self) -> SweepPlan {
        SweepPlan::new(self)
    }

    /// Counts, depth and per-layer shapes at a square `image_size` input.
    pub fn info(&self, image_size: usize) -> ModelInfo {
        self.plan().info(image_size)
    }

    /// Longest input-to-output path in layers: blocks, the final 1x1 conv and the classifier
    /// (the fusion BNs do not count), as spec section 4 counts ParNet.
    pub fn depth(&self) -> usize {
        self.info(self.size_multiple()).depth
    }

    /// Multiply-adds per image of the training graph at `image_size x image_size`.
    pub fn macs(&self, image_size: usize) -> usize {
        self.info(image_size).macs_train
    }

    /// Trainable parameters of the training graph.
    pub fn params(&self) -> usize {
        self.info(self.size_multiple()).params_train
    }

    /// The member with `streams` and `blocks` whose even width gives the multiply-adds closest
    /// to `target` at `image_size` (ties: the narrower width).
    pub fn matching_macs(
        streams: usize,
        blocks: usize,
        target: usize,
        image_size: usize,
        num_classes: usize,
    ) -> Result<SweepSpec> {
        let at = |width: usize| SweepSpec::new(streams, blocks, width, num_classes);
        let narrowest = at(2)?;
        let m = narrowest.size_multiple();
        if image_size == 0 || !image_size.is_multiple_of(m) {
            return Err(invalid(
                "sweep",
                format!("image size {image_size} must be a positive multiple of {m}"),
            ));
        }
        if target == 0 {
            return Err(invalid("sweep", "the multiply-add target must be positive"));
        }
        let macs = |half: usize| at(2 * half).map(|s| s.macs(image_size));
        // Multiply-adds grow strictly with the width: find the first half-width reaching target.
        let (mut lo, mut hi) = (1, MAX_WIDTH / 2);
        if macs(hi)? < target {
            return Err(invalid(
                "sweep",
                format!(
                    "{target} multiply-adds need a width above {MAX_WIDTH} for {streams} streams of {blocks} blocks"
                ),
            ));
        }
        while lo < hi {
            let mid = (lo + hi) / 2;
            if macs(mid)? >= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        if lo > 1 && target - macs(lo - 1)? <= macs(lo)? - target {
            lo -= 1;
        }
        at(2 * lo)
    }
}
