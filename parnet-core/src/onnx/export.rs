//! A network's deploy form as an ONNX model (opset 17): every node of the executor's graph
//! ([`crate::exec::graph`]) written as standard operators, so that another runtime computes what
//! the executor computes.
//!
//! | graph node | ONNX operators |
//! |---|---|
//! | convolution + epilogue | `Conv`, then `Mul` (gate), `Mul`/`Add` (residual affine), `Add`, `Sigmoid` x `Mul` (SiLU) or `Relu` |
//! | SE gate | `GlobalAveragePool`, `Mul`/`Add` (BN), `Conv` 1x1 without bias, `Sigmoid`, `Mul` (factor) |
//! | interleave (fusion) | `Mul`/`Add` per side, `Unsqueeze` at axis 2, `Concat`, `Reshape` to `[N, 2C, H, W]` |
//! | channel shuffle | `Reshape` to `[N, g, C/g, H, W]`, `Transpose` (0, 2, 1, 3, 4), `Reshape` |
//! | max pool | `MaxPool` |
//! | head | `GlobalAveragePool`, `Flatten`, `Gemm` (`transB`) |
//!
//! The input is `input` (`[N, 3, H, W]`), the output `logits` (`[N, classes]`); `N` is a fixed
//! size or the named dimension `N`.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;

use super::proto::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto,
    ValueInfoProto, attribute_type, data_type,
};
use crate::error::Result;
use crate::exec::graph::{Affine, ConvNode, GateOn, Graph, Node, SeGateNode, ValueId};
use crate::io::write_atomic;
use crate::kernels::activation::Activation;
use crate::models::Network;

/// The operator set the export targets.
pub const ONNX_OPSET: i64 = 17;
/// The IR version of opset 17.
const IR_VERSION: i64 = 8;

/// The batch dimension of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnnxBatch {
    /// Any batch size (the named dimension `N`).
    Dynamic,
    Fixed(usize),
}

/// What to export: the input size and batch, and metadata (`metadata_props`) to carry.
#[derive(Clone, Debug)]
pub struct OnnxExport {
    pub image_size: (usize, usize),
    pub batch: OnnxBatch,
    pub metadata: HashMap<String, String>,
}

/// Writes the deploy form of `net` (reparameterized first if it is in training form) to `path`
/// as an ONNX model, atomically.
pub fn export_onnx(net: &dyn Network, export: &OnnxExport, path: &Path) -> Result<()> {
    write_atomic(path, &onnx_model(net, export)?.encode_to_vec())
}

/// The ONNX model of `net`'s deploy form.
pub fn onnx_model(net: &dyn Network, export: &OnnxExport) -> Result<ModelProto> {
    let graph = net.deploy_graph(export.image_size)?;
    let mut w = GraphWriter::new(&graph);
    for (i, node) in graph.nodes.iter().enumerate() {
        w.node(i, node);
    }
    let batch = match export.batch {
        OnnxBatch::Dynamic => Dimension {
            dim_value: None,
            dim_param: Some("N".into()),
        },
        OnnxBatch::Fixed(n) => fixed(n),
    };
    let (h, wd) = export.image_size;
    let input = value_info("input", vec![batch.clone(), fixed(3), fixed(h), fixed(wd)]);
    let classes = graph.shape(graph.output).channels;
    let output = value_info("logits", vec![batch, fixed(classes)]);
    let mut metadata: Vec<StringStringEntryProto> = export
        .metadata
        .iter()
        .map(|(k, v)| StringStringEntryProto {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    metadata.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: "parnet-rs".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("{}, deploy form", net.name()),
        graph: Some(GraphProto {
            node: w.nodes,
            name: net.name().to_string(),
            initializer: w.initializers,
            input: vec![input],
            output: vec![output],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: ONNX_OPSET,
        }],
        metadata_props: metadata,
    })
}

fn fixed(n: usize) -> Dimension {
    Dimension {
        dim_value: Some(n as i64),
        dim_param: None,
    }
}

fn value_info(name: &str, dims: Vec<Dimension>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    }
}

fn ints(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: values.iter().map(|&v| v as i64).collect(),
        r#type: attribute_type::INTS,
        ..AttributeProto::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: Some(value),
        r#type: attribute_type::INT,
        ..AttributeProto::default()
    }
}

/// Nodes and initializers written so far, and the ONNX name of each graph value.
struct GraphWriter<'g> {
    graph: &'g Graph,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// The node being written (`n{index}` prefixes its names).
    prefix: String,
    count: usize,
}

impl<'g> GraphWriter<'g> {
    fn new(graph: &'g Graph) -> Self {
        GraphWriter {
            graph,
            nodes: Vec::new(),
            initializers: Vec::new(),
            prefix: String::new(),
            count: 0,
        }
    }

    fn name(&self, v: ValueId) -> String {
        if v == self.graph.input {
            "input".into()
        } else if v == self.graph.output {
            "logits".into()
        } else {
            format!("v{}", v.0)
        }
    }

    fn fresh(&mut self, what: &str) -> String {
        self.count += 1;
        format!("{}.{what}{}", self.prefix, self.count)
    }

    fn floats(&mut self, what: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let name = self.fresh(what);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type::FLOAT,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    fn int64s(&mut self, what: &str, data: &[i64]) -> String {
        let name = self.fresh(what);
        self.initializers.push(TensorProto {
            dims: vec![data.len() as i64],
            data_type: data_type::INT64,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    /// Appends `op(inputs)` and returns its output's name.
    fn op(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let output = self.fresh(&op.to_ascii_lowercase());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            name: output.clone(),
            op_type: op.into(),
            attribute,
        });
        output
    }

    /// Renames the last node's output to the graph value `v` (the node computes `v`).
    fn finish(&mut self, v: ValueId) {
        let name = self.name(v);
        let last = self.nodes.last_mut().expect("a node was written");
        last.output[0] = name;
    }

    /// `x * scale + shift` per channel.
    fn affine(&mut self, x: &str, a: &Affine) -> String {
        let c = a.scale.len();
        let scale = self.floats("scale", &[1, c, 1, 1], &a.scale);
        let shift = self.floats("shift", &[1, c, 1, 1], &a.shift);
        let y = self.op("Mul", &[x, &scale], vec![]);
        self.op("Add", &[&y, &shift], vec![])
    }

    fn activation(&mut self, x: &str, activation: Activation) -> String {
        match activation {
            Activation::Relu => self.op("Relu", &[x], vec![]),
            Activation::Silu => {
                let s = self.op("Sigmoid", &[x], vec![]);
                self.op("Mul", &[x, &s], vec![])
            }
        }
    }

    fn node(&mut self, index: usize, node: &Node) {
        self.prefix = format!("n{index}");
        match node {
            Node::Conv(c) => self.conv(c),
            Node::SeGate(s) => self.se_gate(s),
            Node::Interleave(i) => {
                let c = i.affine_a.scale.len();
                let s = self.graph.shape(i.output);
                let (a, b) = (self.name(i.a), self.name(i.b));
                let a = self.affine(&a, &i.affine_a);
                let b = self.affine(&b, &i.affine_b);
                let axis = self.int64s("axes", &[2]);
                let a = self.op("Unsqueeze", &[&a, &axis], vec![]);
                let b = self.op("Unsqueeze", &[&b, &axis], vec![]);
                let pair = self.op("Concat", &[&a, &b], vec![int("axis", 2)]);
                let shape =
                    self.int64s("shape", &[0, 2 * c as i64, s.height as i64, s.width as i64]);
                self.op("Reshape", &[&pair, &shape], vec![]);
            }
            Node::Shuffle {
                input,
                output,
                groups,
            } => {
                let s = self.graph.shape(*output);
                let (c, g) = (s.channels as i64, *groups as i64);
                let (h, w) = (s.height as i64, s.width as i64);
                let x = self.name(*input);
                let split = self.int64s("shape", &[0, g, c / g, h, w]);
                let x = self.op("Reshape", &[&x, &split], vec![]);
                let x = self.op("Transpose", &[&x], vec![ints("perm", &[0, 2, 1, 3, 4])]);
                let merged = self.int64s("shape", &[0, c, h, w]);
                self.op("Reshape", &[&x, &merged], vec![]);
            }
            Node::MaxPool {
                input,
                kernel,
                stride,
                padding,
                ..
            } => {
                let x = self.name(*input);
                self.op(
                    "MaxPool",
                    &[&x],
                    vec![
                        ints("kernel_shape", &[*kernel, *kernel]),
                        ints("strides", &[*stride, *stride]),
                        ints("pads", &[*padding; 4]),
                    ],
                );
            }
            Node::Head(h) => {
                let x = self.name(h.input);
                let classes = h.bias.len();
                let features = h.weight.len() / classes;
                let x = self.op("GlobalAveragePool", &[&x], vec![]);
                let x = self.op("Flatten", &[&x], vec![int("axis", 1)]);
                let weight = self.floats("weight", &[classes, features], &h.weight);
                let bias = self.floats("bias", &[classes], &h.bias);
                self.op("Gemm", &[&x, &weight, &bias], vec![int("transB", 1)]);
            }
        }
        self.finish(node.output());
    }

    /// `act(((conv + bias) * g_sum) + residual' * g_res)` (the executor's epilogue).
    fn conv(&mut self, c: &ConvNode) {
        let cin = self.graph.shape(c.input).channels;
        let cout = c.bias.len();
        let (kh, kw) = c.kernel;
        let x = self.name(c.input);
        let weight = self.floats("weight", &[cout, cin / c.groups, kh, kw], &c.weight);
        let bias = self.floats("bias", &[cout], &c.bias);
        let mut y = self.op(
            "Conv",
            &[&x, &weight, &bias],
            vec![
                ints("kernel_shape", &[kh, kw]),
                ints("strides", &[c.stride, c.stride]),
                ints("pads", &[c.padding; 4]),
                int("group", c.groups as i64),
            ],
        );
        let gate = c.epilogue.gate.map(|(g, on)| (self.name(g), on));
        if let Some((g, GateOn::Sum)) = &gate {
            y = self.op("Mul", &[&y, g], vec![]);
        }
        if let Some(r) = &c.epilogue.residual {
            let mut t = self.name(r.value);
            if let Some(a) = &r.affine {
                t = self.affine(&t, a);
            }
            if let Some((g, GateOn::Residual)) = &gate {
                t = self.op("Mul", &[&t, g], vec![]);
            }
            y = self.op("Add", &[&y, &t], vec![]);
        }
        if let Some(a) = c.epilogue.activation {
            self.activation(&y, a);
        }
    }

    /// `factor * sigmoid(W · GAP(affine(x)))`.
    fn se_gate(&mut self, s: &SeGateNode) {
        let cin = self.graph.shape(s.input).channels;
        let cout = self.graph.shape(s.output).channels;
        let x = self.name(s.input);
        let mut m = self.op("GlobalAveragePool", &[&x], vec![]);
        if let Some(a) = &s.pre_affine {
            m = self.affine(&m, a);
        }
        let weight = self.floats("weight", &[cout, cin / s.groups, 1, 1], &s.weight);
        let z = self.op(
            "Conv",
            &[&m, &weight],
            vec![ints("kernel_shape", &[1, 1]), int("group", s.groups as i64)],
        );
        let gate = self.op("Sigmoid", &[&z], vec![]);
        if s.factor != 1.0 {
            let factor = self.floats("factor", &[1], &[s.factor]);
            self.op("Mul", &[&gate, &factor], vec![]);
        }
    }
}
