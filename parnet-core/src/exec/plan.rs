//! Planning: a [`Graph`] and a batch size become layouts, buffers, packed weights and the
//! dependencies of a schedule, all fixed before the first run.
//!
//! - Layouts: every value channels-last with the zero border its convolutions read
//!   ([`Layout`]); the input image is reordered into one at the start of a run.
//! - Buffers: values share buffers when their lifetimes cannot overlap under any schedule: a
//!   buffer passes from value `u` to value `v` only if every reader of `u` is an ancestor of
//!   `v`'s writer, and only between values of the same layout (so the zero borders, never written,
//!   stay zero).
//! - Convolutions: weights packed once for the direct kernel or transformed once for Winograd
//!   (see [`ConvKernel`]).

use super::conv_direct::DirectConv;
use super::graph::{Affine, GateOn, Graph, Node, ValueId};
use super::layout::Layout;
use super::winograd::{Winograd, WinogradTile};
use crate::kernels::activation::Activation;

/// How a convolution is computed.
pub enum ConvKernel {
    Direct(DirectConv),
    Winograd(Winograd),
}

impl ConvKernel {
    pub fn name(&self) -> &'static str {
        match self {
            ConvKernel::Direct(_) => "direct",
            ConvKernel::Winograd(w) => match w.tile {
                WinogradTile::F2 => "winograd F(2x2,3x3)",
                WinogradTile::F4 => "winograd F(4x4,3x3)",
            },
        }
    }
}

/// One node, planned.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    Conv {
        kernel: ConvKernel,
        input: ValueId,
        output: ValueId,
        gate: Option<(ValueId, bool)>,
        residual: Option<(ValueId, Option<Affine>)>,
        activation: Option<Activation>,
    },
    SeGate {
        input: ValueId,
        output: ValueId,
        pre_affine: Option<Affine>,
        weight: Vec<f32>,
        cout: usize,
        groups: usize,
        factor: f32,
    },
    Interleave {
        a: ValueId,
        b: ValueId,
        output: ValueId,
        affine_a: Affine,
        affine_b: Affine,
    },
    Shuffle {
        input: ValueId,
        output: ValueId,
        groups: usize,
    },
    MaxPool {
        input: ValueId,
        output: ValueId,
        window: (usize, usize, usize),
    },
    Head {
        input: ValueId,
        weight: Vec<f32>,
        bias: Vec<f32>,
    },
}

/// Which Winograd tile, if any, the stride-1 3x3 convolutions use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinogradChoice {
    /// Direct everywhere.
    Off,
    /// F(2x2, 3x3) for every stride-1 3x3 convolution.
    F2,
    /// F(4x4, 3x3) for every stride-1 3x3 convolution.
    F4,
    /// The tile the cost rule of [`choose_winograd`] picks per convolution.
    Auto,
}

/// The tile a stride-1 3x3 convolution takes under `choice`: with `Auto`, F(4x4,3x3) where the
/// output holds at least as many 4x4 tiles (over the batch) as [`WINOGRAD_F4_FROM`] asks for the
/// smaller channel count per group, else direct. F(2x2,3x3) never beats both on the measured
/// shapes, so `Auto` does not take it.
pub fn choose_winograd(
    choice: WinogradChoice,
    (cin_g, cout_g): (usize, usize),
    out: &Layout,
) -> Option<WinogradTile> {
    match choice {
        WinogradChoice::Off => None,
        WinogradChoice::F2 => Some(WinogradTile::F2),
        WinogradChoice::F4 => Some(WinogradTile::F4),
        WinogradChoice::Auto => {
            let tiles = out.batch * out.height.div_ceil(4) * out.width.div_ceil(4);
            let channels = cin_g.min(cout_g);
            WINOGRAD_F4_FROM
                .iter()
                .any(|&(min_channels, min_tiles)| channels >= min_channels && tiles >= min_tiles)
                .then_some(WinogradTile::F4)
        }
    }
}

/// `(channels, tiles)`: F(4x4,3x3) pays once the smaller channel count per group reaches
/// `channels` and the output holds `tiles` 4x4 tiles. The transforms cost about as much per
/// channel as the saved multiplies gain per channel squared, so the more channels, the fewer
/// tiles it needs. Measured per layer (`exec_conv`, AMD Zen 5, AVX-512, batch 1 and 8, 1 and 2
/// threads; the table is in docs/BENCHMARKS.md): below 64 channels direct always wins. From 256
/// channels the layers alone pay at 4 tiles (a 7x7 map), but inside a network at batch 1 their
/// transformed weights (4x the direct ones: 38 MB for 512 channels) come cold from memory each
/// run and lose to the direct path (ResNet-50's 7x7 stage: 0.8-1.0 ms direct, 1.0-1.3 ms
/// Winograd); from 8 tiles (batch 2 at 7x7) the reads are shared enough.
pub const WINOGRAD_F4_FROM: [(usize, usize); 3] = [(256, 8), (96, 16), (64, 64)];

/// A graph planned for one batch size.
pub struct Plan {
    pub batch: usize,
    pub input: ValueId,
    pub output: ValueId,
    pub layouts: Vec<Layout>,
    /// The buffer of each value.
    pub slot_of: Vec<usize>,
    /// Floats of each buffer.
    pub slot_lens: Vec<usize>,
    pub steps: Vec<Step>,
    /// The steps each step waits for, and those waiting for it.
    pub deps: Vec<Vec<usize>>,
    pub succs: Vec<Vec<usize>>,
    /// Multiply-adds per image (convolutions, SE gates, classifier).
    pub macs: usize,
    pub classes: usize,
}

impl Plan {
    /// Plans `graph` for `batch` images.
    pub fn new(graph: &Graph, batch: usize, winograd: WinogradChoice) -> Plan {
        let nv = graph.values.len();
        let mut pad = vec![0usize; nv];
        for node in &graph.nodes {
            if let Node::Conv(c) = node {
                pad[c.input.0] = pad[c.input.0].max(c.padding);
            }
        }
        let layouts: Vec<Layout> = (0..nv)
            .map(|v| {
                let s = graph.values[v];
                Layout::new(batch, (s.channels, s.height, s.width), pad[v])
            })
            .collect();
        let mut producer = vec![usize::MAX; nv];
        let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); nv];
        for (i, node) in graph.nodes.iter().enumerate() {
            producer[node.output().0] = i;
            for v in node.inputs() {
                consumers[v.0].push(i);
            }
        }
        let n = graph.nodes.len();
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, node) in graph.nodes.iter().enumerate() {
            for v in node.inputs() {
                let p = producer[v.0];
                if p != usize::MAX && !deps[i].contains(&p) {
                    deps[i].push(p);
                    succs[p].push(i);
                }
            }
        }
        // ancestors[i][j]: step j finishes before step i starts under every schedule.
        let mut ancestors = vec![vec![false; n]; n];
        for i in 0..n {
            for d in deps[i].clone() {
                ancestors[i][d] = true;
                let (lo, hi) = ancestors.split_at_mut(i);
                hi[0].iter_mut().zip(&lo[d]).for_each(|(a, &b)| *a |= b);
            }
        }
        // Buffers: the input and the output keep their own.
        let mut slot_of = vec![usize::MAX; nv];
        let mut slot_lens = Vec::new();
        let mut occupant: Vec<(ValueId, Layout)> = Vec::new();
        let new_slot = |v: ValueId, slot_lens: &mut Vec<usize>, occupant: &mut Vec<_>| {
            slot_lens.push(layouts[v.0].len());
            occupant.push((v, layouts[v.0]));
            slot_lens.len() - 1
        };
        slot_of[graph.input.0] = new_slot(graph.input, &mut slot_lens, &mut occupant);
        for (i, node) in graph.nodes.iter().enumerate() {
            let v = node.output();
            let free = occupant.iter().position(|&(u, layout)| {
                layout == layouts[v.0]
                    && u != graph.input
                    && u != graph.output
                    && !consumers[u.0].is_empty()
                    && consumers[u.0].iter().all(|&c| ancestors[i][c])
            });
            slot_of[v.0] = match free {
                Some(s) if v != graph.output => {
                    occupant[s] = (v, layouts[v.0]);
                    s
                }
                _ => new_slot(v, &mut slot_lens, &mut occupant),
            };
        }
        let steps = graph
            .nodes
            .iter()
            .map(|node| plan_step(node, &layouts, winograd))
            .collect();
        Plan {
            batch,
            input: graph.input,
            output: graph.output,
            layouts,
            slot_of,
            slot_lens,
            steps,
            deps,
            succs,
            macs: graph.macs(),
            classes: graph.shape(graph.output).channels,
        }
    }
}

fn plan_step(node: &Node, layouts: &[Layout], winograd: WinogradChoice) -> Step {
    match node {
        Node::Conv(c) => {
            let (lin, lout) = (layouts[c.input.0], layouts[c.output.0]);
            let groups = c.groups;
            let tile = if c.kernel == (3, 3) && c.stride == 1 && c.padding == 1 {
                choose_winograd(
                    winograd,
                    (lin.channels / groups, lout.channels / groups),
                    &lout,
                )
            } else {
                None
            };
            let kernel = match tile {
                Some(tile) => ConvKernel::Winograd(Winograd::new(
                    tile,
                    lin,
                    lout,
                    &c.weight,
                    c.bias.clone(),
                    groups,
                )),
                None => ConvKernel::Direct(DirectConv::new(
                    lin,
                    lout,
                    &c.weight,
                    c.bias.clone(),
                    c.kernel,
                    c.stride,
                    c.padding,
                    groups,
                )),
            };
            Step::Conv {
                kernel,
                input: c.input,
                output: c.output,
                gate: c.epilogue.gate.map(|(g, on)| (g, on == GateOn::Sum)),
                residual: c.epilogue.residual.as_ref().map(|r| {
                    // Padded like the bias, so the epilogue can run over whole 16-lane chunks.
                    let padded = r.affine.as_ref().map(|a| {
                        let mut a = a.clone();
                        a.scale.resize(lout.stride, 0.0);
                        a.shift.resize(lout.stride, 0.0);
                        a
                    });
                    (r.value, padded)
                }),
                activation: c.epilogue.activation,
            }
        }
        Node::SeGate(s) => Step::SeGate {
            input: s.input,
            output: s.output,
            pre_affine: s.pre_affine.clone(),
            weight: s.weight.clone(),
            cout: layouts[s.output.0].channels,
            groups: s.groups,
            factor: s.factor,
        },
        Node::Interleave(i) => Step::Interleave {
            a: i.a,
            b: i.b,
            output: i.output,
            affine_a: i.affine_a.clone(),
            affine_b: i.affine_b.clone(),
        },
        Node::Shuffle {
            input,
            output,
            groups,
        } => Step::Shuffle {
            input: *input,
            output: *output,
            groups: *groups,
        },
        Node::MaxPool {
            input,
            output,
            kernel,
            stride,
            padding,
        } => Step::MaxPool {
            input: *input,
            output: *output,
            window: (*kernel, *stride, *padding),
        },
        Node::Head(h) => Step::Head {
            input: h.input,
            weight: h.weight.clone(),
            bias: h.bias.clone(),
        },
    }
}
