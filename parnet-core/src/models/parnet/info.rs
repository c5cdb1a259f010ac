//! ParNet's [`ModelInfo`], read off the [`Plan`]: parameters and multiply-adds (training graph
//! and fused), depth, and the output shape of every layer.

use super::plan::{BlockSpec, FinalSpec, FusionSpec, Plan};
use crate::models::info::{LayerInfo, ModelInfo};

impl BlockSpec {
    /// The block as one layer of the table, on an `hw x hw` input from layer `input` (none: the
    /// image). Named by its prefix without a trailing `.block`.
    pub fn layer_info(&self, input: Option<usize>, hw: usize) -> LayerInfo {
        let (macs_train, macs_fused) = self.macs(hw, hw);
        LayerInfo {
            name: self.prefix.trim_end_matches(".block").to_string(),
            out_shape: [self.cout, hw / self.stride, hw / self.stride],
            params_train: self.params_train(),
            params_fused: self.params_fused(),
            macs_train,
            macs_fused,
            inputs: input.into_iter().collect(),
            counts_for_depth: true,
        }
    }
}

impl FusionSpec {
    /// The fusion's two input BNs and the interleave as one layer (not counted for depth), on
    /// `hw x hw` inputs from layers `stream` and `merged`.
    pub fn bn_layer_info(&self, stream: usize, merged: usize, hw: usize) -> LayerInfo {
        let c = self.channels;
        LayerInfo {
            name: format!("{}.0", self.prefix),
            out_shape: [2 * c, hw, hw],
            params_train: 4 * c,
            params_fused: 4 * c,
            macs_train: 0,
            macs_fused: 0,
            inputs: vec![stream, merged],
            counts_for_depth: false,
        }
    }
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
        self.push(b.layer_info(input, hw))
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
            let bn = b.push(fusion.bn_layer_info(stream, merged, hw));
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
        ModelInfo::from_layers(image_size, b.layers)
    }
}
