//! Running a [`Plan`]: buffers allocated once, the input reordered into its layout, then every
//! step, either one after another (each using every thread) or as soon as its inputs are ready
//! (independent branches, such as ParNet's streams, at the same time; each step still uses
//! every idle thread).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::epilogue::{ConvIo, OutBuf};
use super::graph::ValueId;
use super::ops;
use super::plan::{ConvKernel, Plan, Step};
use crate::kernels::simd::Isa;

/// How the steps of a run are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// In graph order, one step at a time, each on every thread.
    Sequential,
    /// Each step as soon as the steps it reads from are done.
    Parallel,
}

/// The buffers of a plan, as raw views shared by the tasks of a run.
pub(crate) struct Buffers {
    data: Vec<Vec<f32>>,
}

/// Pointers to every buffer for one run; steps read and write through them.
#[derive(Clone, Copy)]
pub(crate) struct Shared<'a> {
    ptrs: &'a [(usize, usize)],
}

// SAFETY: the plan guarantees that a step's output buffer is touched by no step that may run at
// the same time (see `Plan::new`), and inputs are only read.
unsafe impl Send for Shared<'_> {}
unsafe impl Sync for Shared<'_> {}

impl Buffers {
    pub(crate) fn new(plan: &Plan) -> Buffers {
        Buffers {
            data: plan
                .slot_lens
                .iter()
                .map(|&len| vec![0.0f32; len])
                .collect(),
        }
    }
}

impl Shared<'_> {
    /// The buffer of `v` to read.
    ///
    /// # Safety
    /// No step running at the same time may write it.
    unsafe fn read(&self, plan: &Plan, v: ValueId) -> &[f32] {
        let (ptr, len) = self.ptrs[plan.slot_of[v.0]];
        // SAFETY: the pointer and length come from a live buffer; the caller's contract.
        unsafe { std::slice::from_raw_parts(ptr as *const f32, len) }
    }

    fn write(&self, plan: &Plan, v: ValueId) -> OutBuf {
        let (ptr, len) = self.ptrs[plan.slot_of[v.0]];
        OutBuf(ptr as *mut f32, len)
    }
}

/// Runs `plan` on `images` (`[N, 3, H, W]`, checked by the caller) into `logits` (`[N,
/// classes]`).
pub(crate) fn run(
    plan: &Plan,
    buffers: &mut Buffers,
    isa: Isa,
    schedule: Schedule,
    images: &[f32],
    logits: &mut [f32],
) {
    let input_slot = plan.slot_of[plan.input.0];
    ops::reorder_input(
        images,
        &plan.layouts[plan.input.0],
        &mut buffers.data[input_slot],
    );
    let ptrs: Vec<(usize, usize)> = buffers
        .data
        .iter_mut()
        .map(|b| (b.as_mut_ptr() as usize, b.len()))
        .collect();
    let shared = Shared { ptrs: &ptrs };
    let logits = OutBuf(logits.as_mut_ptr(), logits.len());
    match schedule {
        Schedule::Sequential => {
            for step in &plan.steps {
                // SAFETY: steps run one at a time.
                unsafe { run_step(plan, step, isa, shared, logits) };
            }
        }
        Schedule::Parallel => {
            let pending: Vec<AtomicUsize> = plan
                .deps
                .iter()
                .map(|d| AtomicUsize::new(d.len()))
                .collect();
            let pending = &pending[..];
            rayon::scope(|s| {
                for (i, d) in plan.deps.iter().enumerate() {
                    if d.is_empty() {
                        s.spawn(move |s| spawn_step(s, plan, i, isa, shared, logits, pending));
                    }
                }
            });
        }
    }
}

/// Runs `plan` one step at a time, timing each: `(step index, seconds)`.
pub(crate) fn run_timed(
    plan: &Plan,
    buffers: &mut Buffers,
    isa: Isa,
    images: &[f32],
    logits: &mut [f32],
) -> Vec<f64> {
    let input_slot = plan.slot_of[plan.input.0];
    ops::reorder_input(
        images,
        &plan.layouts[plan.input.0],
        &mut buffers.data[input_slot],
    );
    let ptrs: Vec<(usize, usize)> = buffers
        .data
        .iter_mut()
        .map(|b| (b.as_mut_ptr() as usize, b.len()))
        .collect();
    let shared = Shared { ptrs: &ptrs };
    let logits = OutBuf(logits.as_mut_ptr(), logits.len());
    plan.steps
        .iter()
        .map(|step| {
            let t = std::time::Instant::now();
            // SAFETY: steps run one at a time.
            unsafe { run_step(plan, step, isa, shared, logits) };
            t.elapsed().as_secs_f64()
        })
        .collect()
}

fn spawn_step<'s>(
    s: &rayon::Scope<'s>,
    plan: &'s Plan,
    i: usize,
    isa: Isa,
    shared: Shared<'s>,
    logits: OutBuf,
    pending: &'s [AtomicUsize],
) {
    // SAFETY: a step starts once every step it reads from is done, and no step that may run at
    // the same time shares its output buffer (the plan's guarantee).
    unsafe { run_step(plan, &plan.steps[i], isa, shared, logits) };
    for &j in &plan.succs[i] {
        if pending[j].fetch_sub(1, Ordering::AcqRel) == 1 {
            s.spawn(move |s| spawn_step(s, plan, j, isa, shared, logits, pending));
        }
    }
}

/// # Safety
/// The step's inputs must be written and not written to while it runs, and its output not read
/// or written by any other step running at the same time.
unsafe fn run_step(plan: &Plan, step: &Step, isa: Isa, shared: Shared<'_>, logits: OutBuf) {
    let layout = |v: ValueId| plan.layouts[v.0];
    // SAFETY (every `read` below): the caller's contract.
    unsafe {
        match step {
            Step::Conv {
                kernel,
                input,
                output,
                gate,
                residual,
                activation,
            } => {
                let io = ConvIo {
                    input: shared.read(plan, *input),
                    output: shared.write(plan, *output),
                    output_layout: layout(*output),
                    gate: gate.map(|(g, on_sum)| (shared.read(plan, g), on_sum)),
                    gate_stride: gate.map_or(0, |(g, _)| layout(g).stride),
                    residual: residual.as_ref().map(|(r, affine)| {
                        (
                            shared.read(plan, *r),
                            layout(*r),
                            affine.as_ref().map(|a| (&a.scale[..], &a.shift[..])),
                        )
                    }),
                    bias: kernel.bias(),
                    activation: *activation,
                };
                match kernel {
                    ConvKernel::Direct(d) => d.run(isa, &io),
                    ConvKernel::Winograd(w) => w.run(isa, &io),
                }
            }
            Step::SeGate {
                input,
                output,
                pre_affine,
                weight,
                cout,
                groups,
                factor,
            } => {
                let lo = layout(*output);
                let out = shared.write(plan, *output);
                ops::se_gate(
                    isa,
                    shared.read(plan, *input),
                    &layout(*input),
                    pre_affine.as_ref(),
                    weight,
                    (*cout, *groups),
                    *factor,
                    out,
                    lo.stride,
                );
            }
            Step::Interleave {
                a,
                b,
                output,
                affine_a,
                affine_b,
            } => ops::interleave(
                (shared.read(plan, *a), &layout(*a), affine_a),
                (shared.read(plan, *b), &layout(*b), affine_b),
                &layout(*output),
                shared.write(plan, *output),
            ),
            Step::Shuffle {
                input,
                output,
                groups,
            } => ops::shuffle(
                shared.read(plan, *input),
                &layout(*input),
                *groups,
                &layout(*output),
                shared.write(plan, *output),
            ),
            Step::MaxPool {
                input,
                output,
                window,
            } => ops::max_pool(
                isa,
                shared.read(plan, *input),
                &layout(*input),
                *window,
                &layout(*output),
                shared.write(plan, *output),
            ),
            Step::Head {
                input,
                weight,
                bias,
            } => ops::head(
                isa,
                shared.read(plan, *input),
                &layout(*input),
                weight,
                bias,
                logits.slice(0, logits.1),
            ),
        }
    }
}
