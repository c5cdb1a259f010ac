//! What `parnet info` reports, read off the [`Plan`]: parameters and multiply-adds (training
//! graph and fused), depth, and the output shape of every layer.

use super::plan::{BlockSpec, FinalSpec, Plan};

/// One layer of the network.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    pub name: String,
    /// (C, H, W) of the output.
    pub out_shape: [usize; 3],
    pub params_train: usize,
    pub params_fused: usize,
    pub macs_train: usize,
    pub macs_fused: usize,
    /// Indices of the layers whose outputs this one reads (none: the image).
    pub inputs: Vec<usize>,
    /// Whether the layer counts towards depth (blocks, convs and the classifier do; the
    /// fusion BNs do not).
    pub counts_for_depth: bool,
}

impl LayerInfo {
    /// A 1x1 conv + BN (+ activation) `cin -> cout` at `hw x hw`; the BN folds into the conv's
    /// bias in the deploy form.
    pub fn conv1x1_bn(name: &str, cin: usize, cout: usize, hw: usize, input: usize) -> LayerInfo {
        LayerInfo {
            name: name.to_string(),
            out_shape: [cout, hw, hw],
            params_train: cin * cout + 2 * cout,
            params_fused: cin * cout + cout,
            macs_train: hw * hw * cin * cout,
            macs_fused: hw * hw * cin * cout,
            inputs: vec![input],
            counts_for_depth: true,
        }
    }

    /// The classifier: a linear layer `features -> classes` after global average pooling.
    pub fn classifier(name: &str, features: usize, classes: usize, input: usize) -> LayerInfo {
        LayerInfo {
            name: name.to_string(),
            out_shape: [classes, 1, 1],
            params_train: features * classes + classes,
            params_fused: features * classes + classes,
            macs_train: features * classes,
            macs_fused: features * classes,
            inputs: vec![input],
            counts_for_depth: true,
        }
    }
}

/// The totals and the per-layer table.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub image_size: usize,
    pub params_train: usize,
    pub params_fused: usize,
    pub macs_train: usize,
    pub macs_fused: usize,
    pub depth: usize,
    pub layers: Vec<LayerInfo>,
}

struct Builder {
    layers: Vec<LayerInfo>,
}

impl Builder {
    fn push(&mut self, layer: LayerInfo) -> usize {
        self.layers.push(layer);
        self.layers.len() - 1
    }

    fn block(&mut self, b: &BlockSpec, input: Option<usize>, hw: usize) -> usize {
        let (macs_train, macs_fused) = b.macs(hw, hw);
        let name = b.prefix.trim_end_matches(".block").to_string();
        self.push(LayerInfo {
            name,
            out_shape: [b.cout, hw / b.stride, hw / b.stride],
            params_train: b.params_train(),
            params_fused: b.params_fused(),
            macs_train,
            macs_fused,
            inputs: input.into_iter().collect(),
            counts_for_depth: true,
        })
    }

    fn hw(&self, i: usize) -> usize {
        self.layers[i].out_shape[1]
    }
}

impl Plan {
    /// Shapes and counts for a square input of `image_size` pixels.
    pub fn info(&self, image_size: usize) -> ModelInfo {
        let mut b = Builder { layers: Vec::new() };
        let mut prev: Option<usize> = None;
        let mut hw = image_size;
        let mut stem_out = Vec::new();
        for s in &self.stem {
            let i = b.block(s, prev, hw);
            hw = b.hw(i);
            prev = Some(i);
            stem_out.push(i);
        }
        let taps = &stem_out[stem_out.len() - 3..];
        let mut stream_out = Vec::new();
        for (s, stream) in self.streams.iter().enumerate() {
            let mut prev = taps[s];
            for blk in stream {
                prev = b.block(blk, Some(prev), b.hw(prev));
            }
            stream_out.push(prev);
        }
        let d0 = b.block(&self.down0, Some(stream_out[0]), b.hw(stream_out[0]));
        let mut merged = d0;
        for (fusion, stream) in [(&self.fuse1, stream_out[1]), (&self.fuse2, stream_out[2])] {
            let hw = b.hw(stream);
            let c = fusion.channels;
            let bn = b.push(LayerInfo {
                name: format!("{}.0", fusion.prefix),
                out_shape: [2 * c, hw, hw],
                params_train: 4 * c,
                params_fused: 4 * c,
                macs_train: 0,
                macs_fused: 0,
                inputs: vec![stream, merged],
                counts_for_depth: false,
            });
            merged = b.block(&fusion.block, Some(bn), hw);
        }
        let fin = match &self.final_layer {
            FinalSpec::Block(blk) => b.block(blk, Some(merged), b.hw(merged)),
            FinalSpec::Conv1x1 { prefix, cin, cout } => {
                let hw = b.hw(merged);
                b.push(LayerInfo::conv1x1_bn(prefix, *cin, *cout, hw, merged))
            }
        };
        let (features, classes) = self.head;
        b.push(LayerInfo::classifier("head.fc", features, classes, fin));
        let layers = b.layers;
        ModelInfo {
            image_size,
            params_train: layers.iter().map(|l| l.params_train).sum(),
            params_fused: layers.iter().map(|l| l.params_fused).sum(),
            macs_train: layers.iter().map(|l| l.macs_train).sum(),
            macs_fused: layers.iter().map(|l| l.macs_fused).sum(),
            depth: longest_path(&layers),
            layers,
        }
    }
}

/// Length of the longest input-to-output path, counting the layers that count for depth
/// (spec section 4). Layers are in topological order (inputs come first).
pub fn longest_path(layers: &[LayerInfo]) -> usize {
    let mut depth = vec![0usize; layers.len()];
    for (i, l) in layers.iter().enumerate() {
        let before = l.inputs.iter().map(|&j| depth[j]).max().unwrap_or(0);
        depth[i] = before + usize::from(l.counts_for_depth);
    }
    depth.into_iter().max().unwrap_or(0)
}
