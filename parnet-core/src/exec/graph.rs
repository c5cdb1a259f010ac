//! The executor's graph: what a deploy-form network computes, as a list of nodes over values,
//! each node a computation the executor has one kernel for. Models build it
//! (`Network::lower`) through [`GraphBuilder`]; the planner turns it into buffers, packed weights
//! and a schedule.
//!
//! Values are per-image feature maps `[C, H, W]` (the batch is the plan's); the head's output is
//! the logits `[classes, 1, 1]`. Every weight is copied into the graph, so a plan does not borrow
//! the network it came from.

use crate::error::{Result, invalid};
use crate::kernels::activation::Activation;

/// A value of the graph (an index into [`Graph::values`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

/// The per-image shape of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ValueShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// `x * scale[c] + shift[c]` per channel: an eval-mode batch norm.
#[derive(Clone, Debug, PartialEq)]
pub struct Affine {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
}

impl Affine {
    /// From f64 factors (as `BatchNorm2d::eval_affine` gives them), rounded once.
    pub fn from_f64((scale, shift): (Vec<f64>, Vec<f64>)) -> Affine {
        Affine {
            scale: scale.iter().map(|&v| v as f32).collect(),
            shift: shift.iter().map(|&v| v as f32).collect(),
        }
    }
}

/// What multiplies by the channel gate in a convolution's epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateOn {
    /// `(conv + bias) * gate` (ParNet's case B).
    Sum,
    /// `conv + bias + residual * gate` (ParNet's case A).
    Residual,
}

/// A value added in a convolution's epilogue, optionally through a per-channel affine map.
#[derive(Clone, Debug, PartialEq)]
pub struct Residual {
    /// Same channels and spatial size as the convolution's output.
    pub value: ValueId,
    pub affine: Option<Affine>,
}

/// What a convolution does to its sums before they are stored:
/// `act(((acc + bias) * g_sum) + residual' * g_res)`, where `residual' = residual * s + t` and
/// the gate (a per-image, per-channel value) is `g_sum` or `g_res` as [`GateOn`] says (the other
/// is 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Epilogue {
    /// A `[C, 1, 1]` value, the gate of each output channel.
    pub gate: Option<(ValueId, GateOn)>,
    pub residual: Option<Residual>,
    pub activation: Option<Activation>,
}

impl Epilogue {
    /// Bias only.
    pub fn none() -> Epilogue {
        Epilogue {
            gate: None,
            residual: None,
            activation: None,
        }
    }

    /// Bias, then `activation`.
    pub fn activation(activation: Activation) -> Epilogue {
        Epilogue {
            activation: Some(activation),
            ..Epilogue::none()
        }
    }
}

/// A 2-D convolution with bias and a fused epilogue.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvNode {
    pub input: ValueId,
    pub output: ValueId,
    /// `[Cout, Cin / groups, KH, KW]`.
    pub weight: Vec<f32>,
    /// `[Cout]`.
    pub bias: Vec<f32>,
    pub kernel: (usize, usize),
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    pub epilogue: Epilogue,
}

/// ParNet's SE gate: `factor * sigmoid(W · GAP(affine(x)))`, with `W` a 1x1 grouped convolution
/// without bias (`[Cout, Cin / groups]`); the output is `[Cout, 1, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SeGateNode {
    pub input: ValueId,
    pub output: ValueId,
    pub pre_affine: Option<Affine>,
    pub weight: Vec<f32>,
    pub groups: usize,
    pub factor: f32,
}

/// `out[2c] = affine_a(a)[c]`, `out[2c + 1] = affine_b(b)[c]`: the two BNs and the interleaving
/// concatenation of a ParNet fusion block.
#[derive(Clone, Debug, PartialEq)]
pub struct InterleaveNode {
    pub a: ValueId,
    pub b: ValueId,
    pub output: ValueId,
    pub affine_a: Affine,
    pub affine_b: Affine,
}

/// The classifier: global average pool, then `logits = W · features + bias` (`W` is
/// `[classes, C]`); the output is `[classes, 1, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadNode {
    pub input: ValueId,
    pub output: ValueId,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// One computation of the graph.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Conv(ConvNode),
    SeGate(SeGateNode),
    Interleave(InterleaveNode),
    /// `out[c * groups + g] = in[g * C / groups + c]` (ParNet's channel shuffle).
    Shuffle {
        input: ValueId,
        output: ValueId,
        groups: usize,
    },
    /// Max pooling with implicit `-inf` padding (the ResNet stem's 3x3, stride 2, padding 1).
    MaxPool {
        input: ValueId,
        output: ValueId,
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    Head(HeadNode),
}

impl Node {
    /// The values the node reads.
    pub fn inputs(&self) -> Vec<ValueId> {
        match self {
            Node::Conv(c) => {
                let mut v = vec![c.input];
                if let Some((g, _)) = c.epilogue.gate {
                    v.push(g);
                }
                if let Some(r) = &c.epilogue.residual {
                    v.push(r.value);
                }
                v
            }
            Node::SeGate(s) => vec![s.input],
            Node::Interleave(i) => vec![i.a, i.b],
            Node::Shuffle { input, .. } | Node::MaxPool { input, .. } => vec![*input],
            Node::Head(h) => vec![h.input],
        }
    }

    /// The value the node writes.
    pub fn output(&self) -> ValueId {
        match self {
            Node::Conv(c) => c.output,
            Node::SeGate(s) => s.output,
            Node::Interleave(i) => i.output,
            Node::Shuffle { output, .. } | Node::MaxPool { output, .. } => *output,
            Node::Head(h) => h.output,
        }
    }

    /// A short name for profiles and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Conv(_) => "conv",
            Node::SeGate(_) => "se_gate",
            Node::Interleave(_) => "interleave",
            Node::Shuffle { .. } => "shuffle",
            Node::MaxPool { .. } => "max_pool",
            Node::Head(_) => "head",
        }
    }
}

/// A whole network: its input, its nodes in an order where every value is written before it is
/// read, and its output (the logits).
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub values: Vec<ValueShape>,
    pub nodes: Vec<Node>,
    pub input: ValueId,
    pub output: ValueId,
}

impl Graph {
    pub fn shape(&self, v: ValueId) -> ValueShape {
        self.values[v.0]
    }

    /// Multiply-adds per image of the convolutions and the classifier (what `Network::macs` of
    /// the deploy form counts, SE gates included).
    pub fn macs(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match n {
                Node::Conv(c) => {
                    let out = self.shape(c.output);
                    out.height * out.width * c.weight.len()
                }
                Node::SeGate(s) => s.weight.len(),
                Node::Head(h) => h.weight.len(),
                _ => 0,
            })
            .sum()
    }

    /// Floats of the largest value and of all values together for `batch` images (`None`: past
    /// `usize`). The largest bounds any forward's peak from below; the sum bounds what a
    /// training step keeps for its backward (the training form has more values, not fewer).
    pub fn activation_floats(&self, batch: usize) -> Option<(usize, usize)> {
        self.values
            .iter()
            .try_fold((0usize, 0usize), |(largest, total), v| {
                let floats = batch
                    .checked_mul(v.channels)?
                    .checked_mul(v.height)?
                    .checked_mul(v.width)?;
                Some((largest.max(floats), total.checked_add(floats)?))
            })
    }
}

/// Builds a [`Graph`] node by node, checking every shape as it goes.
pub struct GraphBuilder {
    values: Vec<ValueShape>,
    nodes: Vec<Node>,
    input: ValueId,
}

fn bad(detail: String) -> crate::error::CoreError {
    invalid("exec graph", detail)
}

impl GraphBuilder {
    /// A graph whose input is an image `[channels, height, width]`; returns it and the input.
    pub fn new(input: ValueShape) -> (GraphBuilder, ValueId) {
        let b = GraphBuilder {
            values: vec![input],
            nodes: Vec::new(),
            input: ValueId(0),
        };
        (b, ValueId(0))
    }

    pub fn shape(&self, v: ValueId) -> ValueShape {
        self.values[v.0]
    }

    fn value(&mut self, shape: ValueShape) -> ValueId {
        self.values.push(shape);
        ValueId(self.values.len() - 1)
    }

    fn check_affine(&self, what: &str, a: &Affine, channels: usize) -> Result<()> {
        if a.scale.len() != channels || a.shift.len() != channels {
            return Err(bad(format!(
                "{what}: an affine map of {} / {} values for {channels} channels",
                a.scale.len(),
                a.shift.len()
            )));
        }
        Ok(())
    }

    /// A convolution of `input` (weight `[Cout, Cin / groups, KH, KW]`); returns its output.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        input: ValueId,
        weight: Vec<f32>,
        bias: Vec<f32>,
        (cout, kh, kw): (usize, usize, usize),
        stride: usize,
        padding: usize,
        groups: usize,
        epilogue: Epilogue,
    ) -> Result<ValueId> {
        let x = self.shape(input);
        if groups == 0 || stride == 0 || kh == 0 || kw == 0 || cout == 0 {
            return Err(bad("conv: zero groups, stride, kernel or channels".into()));
        }
        if !x.channels.is_multiple_of(groups) || cout % groups != 0 {
            return Err(bad(format!(
                "conv: {groups} groups do not divide {} -> {cout} channels",
                x.channels
            )));
        }
        if weight.len() != cout * (x.channels / groups) * kh * kw || bias.len() != cout {
            return Err(bad(format!(
                "conv: weight of {} values and bias of {} for [{cout}, {}, {kh}, {kw}]",
                weight.len(),
                bias.len(),
                x.channels / groups
            )));
        }
        if x.height + 2 * padding < kh || x.width + 2 * padding < kw {
            return Err(bad(format!(
                "conv: kernel {kh}x{kw} larger than the padded input {}x{}",
                x.height, x.width
            )));
        }
        let out = ValueShape {
            channels: cout,
            height: (x.height + 2 * padding - kh) / stride + 1,
            width: (x.width + 2 * padding - kw) / stride + 1,
        };
        if let Some((g, _)) = epilogue.gate {
            let gs = self.shape(g);
            if gs.channels != cout || gs.height != 1 || gs.width != 1 {
                return Err(bad(format!(
                    "conv: a gate of shape {gs:?} for {cout} channels"
                )));
            }
        }
        if let Some(r) = &epilogue.residual {
            if self.shape(r.value) != out {
                return Err(bad(format!(
                    "conv: residual of shape {:?} for an output of {out:?}",
                    self.shape(r.value)
                )));
            }
            if let Some(a) = &r.affine {
                self.check_affine("conv residual", a, cout)?;
            }
        }
        let output = self.value(out);
        self.nodes.push(Node::Conv(ConvNode {
            input,
            output,
            weight,
            bias,
            kernel: (kh, kw),
            stride,
            padding,
            groups,
            epilogue,
        }));
        Ok(output)
    }

    /// An SE gate on `input` (weight `[Cout, Cin / groups]`); returns the `[Cout, 1, 1]` gate.
    pub fn se_gate(
        &mut self,
        input: ValueId,
        pre_affine: Option<Affine>,
        weight: Vec<f32>,
        (cout, groups): (usize, usize),
        factor: f32,
    ) -> Result<ValueId> {
        let x = self.shape(input);
        if groups == 0 || !x.channels.is_multiple_of(groups) || cout % groups != 0 {
            return Err(bad(format!(
                "se gate: {groups} groups for {} -> {cout} channels",
                x.channels
            )));
        }
        if weight.len() != cout * x.channels / groups {
            return Err(bad(format!(
                "se gate: a weight of {} values for [{cout}, {}]",
                weight.len(),
                x.channels / groups
            )));
        }
        if let Some(a) = &pre_affine {
            self.check_affine("se gate", a, x.channels)?;
        }
        let output = self.value(ValueShape {
            channels: cout,
            height: 1,
            width: 1,
        });
        self.nodes.push(Node::SeGate(SeGateNode {
            input,
            output,
            pre_affine,
            weight,
            groups,
            factor,
        }));
        Ok(output)
    }

    /// The interleaved concatenation of `affine_a(a)` and `affine_b(b)`.
    pub fn interleave(
        &mut self,
        (a, affine_a): (ValueId, Affine),
        (b, affine_b): (ValueId, Affine),
    ) -> Result<ValueId> {
        let (sa, sb) = (self.shape(a), self.shape(b));
        if sa != sb {
            return Err(bad(format!("interleave: {sa:?} and {sb:?} differ")));
        }
        self.check_affine("interleave", &affine_a, sa.channels)?;
        self.check_affine("interleave", &affine_b, sb.channels)?;
        let output = self.value(ValueShape {
            channels: 2 * sa.channels,
            ..sa
        });
        self.nodes.push(Node::Interleave(InterleaveNode {
            a,
            b,
            output,
            affine_a,
            affine_b,
        }));
        Ok(output)
    }

    /// ParNet's channel shuffle of `input` in `groups` groups.
    pub fn shuffle(&mut self, input: ValueId, groups: usize) -> Result<ValueId> {
        let x = self.shape(input);
        if groups == 0 || !x.channels.is_multiple_of(groups) {
            return Err(bad(format!(
                "shuffle: {groups} groups of {} channels",
                x.channels
            )));
        }
        let output = self.value(x);
        self.nodes.push(Node::Shuffle {
            input,
            output,
            groups,
        });
        Ok(output)
    }

    /// Max pooling of `input`.
    pub fn max_pool(
        &mut self,
        input: ValueId,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<ValueId> {
        let x = self.shape(input);
        if kernel == 0 || stride == 0 || padding >= kernel || x.height + 2 * padding < kernel {
            return Err(bad(format!(
                "max pool: kernel {kernel}, stride {stride}, padding {padding} on {x:?}"
            )));
        }
        let len = |l: usize| (l + 2 * padding - kernel) / stride + 1;
        let output = self.value(ValueShape {
            channels: x.channels,
            height: len(x.height),
            width: len(x.width),
        });
        self.nodes.push(Node::MaxPool {
            input,
            output,
            kernel,
            stride,
            padding,
        });
        Ok(output)
    }

    /// The classifier (weight `[classes, C]`); returns the logits.
    pub fn head(&mut self, input: ValueId, weight: Vec<f32>, bias: Vec<f32>) -> Result<ValueId> {
        let c = self.shape(input).channels;
        if bias.is_empty() || weight.len() != bias.len() * c {
            return Err(bad(format!(
                "head: a weight of {} values and {} biases for {c} features",
                weight.len(),
                bias.len()
            )));
        }
        let output = self.value(ValueShape {
            channels: bias.len(),
            height: 1,
            width: 1,
        });
        self.nodes.push(Node::Head(HeadNode {
            input,
            output,
            weight,
            bias,
        }));
        Ok(output)
    }

    /// The graph, with `output` (the logits) as its result.
    pub fn finish(self, output: ValueId) -> Graph {
        Graph {
            values: self.values,
            nodes: self.nodes,
            input: self.input,
            output,
        }
    }
}
