//! The inference executor: a deploy-form network planned once for an input shape, then run
//! without the autograd machinery.
//!
//! - [`graph`]: what a network computes, as nodes the executor has kernels for (built by
//!   `Network::lower`; `Network::executor` lowers and plans in one call);
//! - [`plan`]: layouts, buffers (planned at build time, none allocated per run), packed or
//!   Winograd-transformed weights, dependencies;
//! - [`layout`]: channels-last with zero borders, kept from the first convolution to the head
//!   (one reorder, at the input);
//! - `conv_direct`, `winograd`: the convolutions, with their epilogues (bias, activation, SE gate,
//!   residual and identity adds) fused into the write-back ([`epilogue`]);
//! - `ops`: the SE gate, the fusion's interleave, the shuffle, max pooling, the classifier;
//! - `run`: the schedule (in order, or each step as soon as its inputs are ready).
//!
//! ```no_run
//! # use parnet_core::models::NetworkSpec;
//! # use parnet_core::exec::ExecOptions;
//! let net = NetworkSpec::new("parnet-s", 1000).build(0)?.deploy()?;
//! let mut exec = net.executor(1, (224, 224), &ExecOptions::default())?;
//! let logits = exec.run(&vec![0.0; 3 * 224 * 224])?; // [1, 1000]
//! # Ok::<(), parnet_core::CoreError>(())
//! ```

mod conv_direct;
pub mod epilogue;
#[cfg(test)]
mod epilogue_tests;
pub mod graph;
pub mod layout;
mod ops;
pub mod plan;
mod run;
mod winograd;

pub use plan::{WINOGRAD_F4_FROM, WinogradChoice};
pub use run::Schedule;
pub use winograd::WinogradTile;

use crate::error::{Result, invalid, shape_error};
use crate::kernels::simd::Isa;
use crate::tensor::Tensor;
use graph::Graph;
use plan::{ConvKernel, Plan, Step};
use run::Buffers;

/// How an executor is built.
#[derive(Clone, Copy, Debug)]
pub struct ExecOptions {
    /// The kernels' ISA level (default: [`Isa::current`]).
    pub isa: Option<Isa>,
    pub winograd: WinogradChoice,
    pub schedule: Schedule,
    /// Refuse a plan whose buffers would take more bytes than this (checked before anything
    /// is allocated; `None`: no limit). The command line sets the memory the machine has free.
    pub memory_limit_bytes: Option<usize>,
}

impl Default for ExecOptions {
    /// The current ISA, Winograd where the cost rule picks it, the parallel schedule.
    fn default() -> Self {
        ExecOptions {
            isa: None,
            winograd: WinogradChoice::Auto,
            schedule: Schedule::Parallel,
            memory_limit_bytes: None,
        }
    }
}

/// A network planned for `[batch, 3, height, width]` inputs.
pub struct Executor {
    plan: Plan,
    buffers: Buffers,
    logits: Vec<f32>,
    isa: Isa,
    schedule: Schedule,
    input_dims: [usize; 4],
    name: String,
}

/// Refuses a plan of `floats` (`None`: past `usize`; `bound` says whether the figure is exact
/// or a lower bound) over `options.memory_limit_bytes`.
fn check_memory(
    options: &ExecOptions,
    name: &str,
    batch: usize,
    input: &graph::ValueShape,
    floats: Option<usize>,
    bound: &str,
) -> Result<()> {
    let Some(limit) = options.memory_limit_bytes else {
        return Ok(());
    };
    let bytes = floats.and_then(|f| f.checked_mul(4));
    if bytes.is_some_and(|b| b <= limit) {
        return Ok(());
    }
    let size = |b: usize| {
        if b >= 1 << 30 {
            format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30))
        } else {
            format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20))
        }
    };
    let need = bytes.map_or("more than the address space".to_string(), |b| {
        format!("{bound}{}", size(b))
    });
    Err(invalid(
        "exec",
        format!(
            "{name}: a batch of {batch} at {}x{} needs {need} of activations, more than the {} available; use a smaller batch or image size",
            input.height,
            input.width,
            size(limit)
        ),
    ))
}

impl Executor {
    /// Plans `graph` (whose input is an image `[3, H, W]`) for `batch` images; `name` names the
    /// network in errors. `Network::executor` lowers a network and calls this.
    pub fn new(graph: &Graph, batch: usize, options: &ExecOptions, name: &str) -> Result<Executor> {
        let input = graph.shape(graph.input);
        if batch == 0 || input.channels != 3 {
            return Err(invalid(
                "exec",
                format!(
                    "{name}: a batch of {batch} images of {} channels; it needs a positive batch of RGB images",
                    input.channels
                ),
            ));
        }
        // The largest value has a buffer of its own, so it bounds the plan from below: refuse
        // before planning what could never fit, then check the plan's exact figure.
        let largest = graph.values.iter().try_fold(0usize, |most, v| {
            let floats = batch
                .checked_mul(v.height)?
                .checked_mul(v.width)?
                .checked_mul(v.channels.div_ceil(16) * 16)?;
            Some(most.max(floats))
        });
        check_memory(options, name, batch, &input, largest, "at least ")?;
        let plan = Plan::new(graph, batch, options.winograd);
        let floats = plan
            .slot_lens
            .iter()
            .try_fold(batch * plan.classes, |sum, &len| sum.checked_add(len));
        check_memory(options, name, batch, &input, floats, "")?;
        let buffers = Buffers::new(&plan);
        Ok(Executor {
            logits: vec![0.0; batch * plan.classes],
            buffers,
            isa: options
                .isa
                .unwrap_or_else(Isa::current)
                .min(Isa::detected()),
            schedule: options.schedule,
            input_dims: [batch, 3, input.height, input.width],
            name: name.to_string(),
            plan,
        })
    }

    /// `[N, 3, H, W]` of the inputs the plan takes.
    pub fn input_dims(&self) -> [usize; 4] {
        self.input_dims
    }

    pub fn num_classes(&self) -> usize {
        self.plan.classes
    }

    /// Multiply-adds of one run (every image).
    pub fn macs_per_run(&self) -> usize {
        self.plan.macs * self.plan.batch
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// How each convolution is computed, in graph order (`direct`, `winograd F(4x4,3x3)`, ...).
    pub fn conv_kernels(&self) -> Vec<&'static str> {
        self.plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Conv { kernel, .. } => Some(kernel.name()),
                _ => None,
            })
            .collect()
    }

    /// Floats of every buffer the plan holds (activations and scratch, weights excluded).
    pub fn buffer_floats(&self) -> usize {
        self.plan.slot_lens.iter().sum()
    }

    /// Runs the network on `images` (`[N, 3, H, W]`, row-major); returns the logits `[N,
    /// classes]`. Allocates nothing after the first run.
    pub fn run(&mut self, images: &[f32]) -> Result<&[f32]> {
        let want: usize = self.input_dims.iter().product();
        if images.len() != want {
            return Err(shape_error(
                "exec",
                format!(
                    "{}: {} input values for a plan of {:?} ({want} values)",
                    self.name,
                    images.len(),
                    self.input_dims
                ),
                &[&self.input_dims],
            ));
        }
        run::run(
            &self.plan,
            &mut self.buffers,
            self.isa,
            self.schedule,
            images,
            &mut self.logits,
        );
        Ok(&self.logits)
    }

    /// [`Executor::run`] on a tensor of the plan's shape; the logits as a `[N, classes]` tensor.
    pub fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        if x.dims() != self.input_dims {
            return Err(shape_error(
                "exec",
                format!(
                    "{}: the plan takes {:?}; re-plan for another shape",
                    self.name, self.input_dims
                ),
                &[x.dims(), &self.input_dims],
            ));
        }
        let classes = self.plan.classes;
        let n = self.input_dims[0];
        Tensor::from_vec(self.run(x.data())?.to_vec(), [n, classes])
    }
}

/// One step of a profiled run.
#[derive(Clone, Debug)]
pub struct StepTime {
    /// `conv`, `se_gate`, `interleave`, ...
    pub kind: &'static str,
    /// For convolutions, the kernel (`direct`, `winograd F(4x4,3x3)`).
    pub kernel: Option<&'static str>,
    /// `[C, H, W]` of the step's output.
    pub output: [usize; 3],
    /// Multiply-adds of the step (every image).
    pub macs: usize,
    pub ms: f64,
}

impl Executor {
    /// Runs once, one step at a time, and times every step.
    pub fn profile(&mut self, images: &[f32]) -> Result<Vec<StepTime>> {
        self.run(images)?;
        let secs = run::run_timed(
            &self.plan,
            &mut self.buffers,
            self.isa,
            images,
            &mut self.logits,
        );
        Ok(self
            .plan
            .steps
            .iter()
            .zip(secs)
            .map(|(step, s)| {
                let (kind, kernel, out, macs) = match step {
                    Step::Conv { kernel, output, .. } => {
                        ("conv", Some(kernel.name()), *output, kernel.macs())
                    }
                    Step::SeGate { output, weight, .. } => {
                        ("se_gate", None, *output, weight.len() * self.plan.batch)
                    }
                    Step::Interleave { output, .. } => ("interleave", None, *output, 0),
                    Step::Shuffle { output, .. } => ("shuffle", None, *output, 0),
                    Step::MaxPool { output, .. } => ("max_pool", None, *output, 0),
                    Step::Head { weight, .. } => (
                        "head",
                        None,
                        self.plan.output,
                        weight.len() * self.plan.batch,
                    ),
                };
                let l = self.plan.layouts[out.0];
                StepTime {
                    kind,
                    kernel,
                    output: [l.channels, l.height, l.width],
                    macs,
                    ms: s * 1e3,
                }
            })
            .collect())
    }
}

impl ConvKernel {
    /// The bias, zero-padded to the output's channel stride.
    pub fn bias(&self) -> &[f32] {
        match self {
            ConvKernel::Direct(d) => &d.bias,
            ConvKernel::Winograd(w) => &w.bias,
        }
    }

    /// Multiply-adds of one run (as the direct convolution counts them).
    pub fn macs(&self) -> usize {
        match self {
            ConvKernel::Direct(d) => d.macs(),
            ConvKernel::Winograd(w) => w.macs(),
        }
    }

    /// Whether this convolution runs on Winograd.
    pub fn is_winograd(&self) -> bool {
        matches!(self, ConvKernel::Winograd(_))
    }
}
