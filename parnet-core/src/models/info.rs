//! What `parnet info` reports of any network: parameters and multiply-adds of the training graph
//! and of the deploy form, depth (the longest input-to-output path in layers, spec section 4),
//! and the output shape of every layer. Each model builds its table from its own plan.

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

/// The totals and the per-layer table. "Fused" is the deploy form ([`super::Network::deploy`]).
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

impl ModelInfo {
    /// The totals of `layers` (in topological order: inputs first) and their longest path.
    pub fn from_layers(image_size: usize, layers: Vec<LayerInfo>) -> ModelInfo {
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
