//! Whole-model bench cases: ParNet against the deep baselines at the same input size, each built
//! once from a fixed seed with a fixed random batch, and runners for one eval forward and one
//! training step (forward + cross-entropy + backward).
//!
//! Multiply-adds per image (convs and linear layers, deploy form only for `parnet-s-fused`):
//!
//! | case | MACs/image |
//! |---|---:|
//! | parnet-s (unfused / fused), 224 | 5,259,501,056 / 4,733,857,280 |
//! | resnet-18 / 34 / 50, 224 | 1,814,073,344 / 3,663,761,408 / 4,089,184,256 |
//! | parnet-cifar x0.25 (widths 32/64/128/256), 32 | 170,978,912 |
//! | parnet-cifar x0.125 (widths 16/32/64/128), 32 | 42,991,152 |
//! | sequential-parnet-cifar x0.25 / x0.125, 32 | 170,978,912 / 42,991,152 |
//! | resnet-20 / resnet-56, 32 | 40,813,184 / 125,747,840 |

use std::sync::Mutex;

use parnet_core::models::{Network, NetworkSpec};
use parnet_core::nn::Ctx;
use parnet_core::optim::SgdConfig;
use parnet_core::testing::{random_values, to_f32};
use parnet_core::training::{StepOptions, TrainStep};
use parnet_core::{BackwardOptions, Result, Tensor};

/// Seed of every model's initialisation.
pub const MODEL_SEED: u64 = 0;
/// Seed of the input images.
pub const INPUT_SEED: u64 = 1;

/// One benchmarked model: its bench id, the registry network (name, width multiplier, deploy
/// form or not), and the square input size it runs at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelCase {
    pub id: &'static str,
    pub name: &'static str,
    pub width_mult: Option<f64>,
    pub deploy: bool,
    pub image_size: usize,
    pub num_classes: usize,
}

const fn case(
    id: &'static str,
    name: &'static str,
    width_mult: Option<f64>,
    deploy: bool,
    image_size: usize,
    num_classes: usize,
) -> ModelCase {
    ModelCase {
        id,
        name,
        width_mult,
        deploy,
        image_size,
        num_classes,
    }
}

/// ImageNet-sized cases: 224x224, 1000 classes.
pub const IMAGENET_224: [ModelCase; 5] = [
    case("parnet-s", "parnet-s", None, false, 224, 1000),
    case("parnet-s-fused", "parnet-s", None, true, 224, 1000),
    case("resnet-18", "resnet-18", None, false, 224, 1000),
    case("resnet-34", "resnet-34", None, false, 224, 1000),
    case("resnet-50", "resnet-50", None, false, 224, 1000),
];

/// CIFAR-sized cases: 32x32, 10 classes.
pub const CIFAR_32: [ModelCase; 6] = [
    case(
        "parnet-cifar-x0.25",
        "parnet-cifar",
        Some(0.25),
        false,
        32,
        10,
    ),
    case(
        "parnet-cifar-x0.125",
        "parnet-cifar",
        Some(0.125),
        false,
        32,
        10,
    ),
    case("resnet-20", "resnet-20", None, false, 32, 10),
    case("resnet-56", "resnet-56", None, false, 32, 10),
    case(
        "sequential-parnet-cifar-x0.25",
        "sequential-parnet-cifar",
        Some(0.25),
        false,
        32,
        10,
    ),
    case(
        "sequential-parnet-cifar-x0.125",
        "sequential-parnet-cifar",
        Some(0.125),
        false,
        32,
        10,
    ),
];

/// The case with this id, from either table.
pub fn case_by_id(id: &str) -> Option<ModelCase> {
    IMAGENET_224
        .into_iter()
        .chain(CIFAR_32)
        .find(|c| c.id == id)
}

impl ModelCase {
    /// The registry's description of the case's network.
    pub fn spec(&self) -> NetworkSpec {
        NetworkSpec {
            width_mult: self.width_mult,
            ..NetworkSpec::new(self.name, self.num_classes)
        }
    }

    /// The model, freshly initialised from [`MODEL_SEED`] (its deploy form if the case says so).
    pub fn build(&self) -> Result<Box<dyn Network>> {
        let model = self.spec().build(MODEL_SEED)?;
        if self.deploy {
            model.deploy()
        } else {
            Ok(model)
        }
    }
}

/// What the benches print next to a latency: depth, parameters, multiply-adds per image.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSummary {
    pub id: &'static str,
    pub depth: usize,
    pub params: usize,
    pub macs_per_image: usize,
}

impl ModelSummary {
    pub fn of(case: &ModelCase, model: &dyn Network) -> ModelSummary {
        ModelSummary {
            id: case.id,
            depth: model.depth(),
            params: model.num_params(),
            macs_per_image: model.macs(case.image_size),
        }
    }

    /// FLOPs (2 per multiply-add) of one forward over `batch` images.
    pub fn forward_flops(&self, batch: usize) -> u64 {
        2 * self.macs_per_image as u64 * batch as u64
    }
}

/// The summaries of `cases` (builds each model, runs nothing).
pub fn summaries(cases: &[ModelCase]) -> Result<Vec<ModelSummary>> {
    cases
        .iter()
        .map(|c| Ok(ModelSummary::of(c, c.build()?.as_ref())))
        .collect()
}

/// A text table: id, depth, parameters, MACs per image.
pub fn summary_table(rows: &[ModelSummary]) -> String {
    let mut out = format!(
        "{:<32} {:>5} {:>12} {:>15}\n",
        "model", "depth", "params", "MACs/image"
    );
    for r in rows {
        out += &format!(
            "{:<32} {:>5} {:>12} {:>15}\n",
            r.id, r.depth, r.params, r.macs_per_image
        );
    }
    out
}

/// A model built once with a fixed batch `[batch, 3, S, S]` of images uniform in [-1, 1) and
/// labels `i % classes`, and the optimiser of its training steps.
pub struct ModelRun {
    pub case: ModelCase,
    pub batch: usize,
    pub summary: ModelSummary,
    model: Box<dyn Network>,
    images: Tensor,
    labels: Vec<usize>,
    step: Mutex<TrainStep>,
}

/// The optimiser of `parnet bench train` and `tools/bench_torch_train.py`: SGD with momentum
/// 0.9, Nesterov, weight decay 5e-4 (at lr [`BENCH_LR`]).
pub const BENCH_SGD: SgdConfig = SgdConfig {
    momentum: 0.9,
    dampening: 0.0,
    nesterov: true,
    weight_decay: 5e-4,
};
/// The learning rate of the bench steps.
pub const BENCH_LR: f32 = 0.1;

impl ModelRun {
    pub fn new(case: ModelCase, batch: usize) -> Result<ModelRun> {
        let model = case.build()?;
        let s = case.image_size;
        let values = random_values(batch * 3 * s * s, 1.0, INPUT_SEED);
        let images = Tensor::from_vec(to_f32(&values), [batch, 3, s, s])?;
        let step = TrainStep::new(model.as_ref(), BENCH_SGD, None, StepOptions::default())?;
        Ok(ModelRun {
            summary: ModelSummary::of(&case, model.as_ref()),
            labels: (0..batch).map(|i| i % case.num_classes).collect(),
            case,
            batch,
            model,
            images,
            step: Mutex::new(step),
        })
    }

    /// One inference forward (running statistics, no graph): logits `[batch, classes]`.
    pub fn eval_forward(&self, parallel_streams: bool) -> Result<Tensor> {
        let ctx = Ctx {
            parallel_streams,
            ..Ctx::eval()
        };
        self.model.forward(&self.images, ctx)
    }

    /// A closure running [`ModelRun::eval_forward`], for `Bencher::iter`.
    pub fn eval_forward_fn(&self, parallel_streams: bool) -> impl Fn() -> Tensor + '_ {
        move || self.eval_forward(parallel_streams).expect("eval forward")
    }

    /// One training step ([`TrainStep::run`]: forward in training mode, cross-entropy, backward,
    /// SGD at [`BENCH_LR`]); `parallel` applies to both the streams of the forward and the
    /// backward walk. Returns the loss (the weights change from step to step).
    pub fn train_step(&self, parallel: bool) -> Result<f32> {
        let mut step = self.step.lock().unwrap_or_else(|e| e.into_inner());
        step.options.parallel_streams = parallel;
        step.options.backward = BackwardOptions { parallel };
        let out = step.run(
            self.model.as_ref(),
            &self.images,
            &self.labels,
            BENCH_LR,
            MODEL_SEED,
        )?;
        Ok(out.loss)
    }

    /// FLOPs of one training step: forward plus a backward of twice the forward.
    pub fn train_step_flops(&self) -> u64 {
        3 * self.summary.forward_flops(self.batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str) -> ModelSummary {
        let case = case_by_id(id).unwrap();
        ModelSummary::of(&case, case.build().unwrap().as_ref())
    }

    #[test]
    fn case_ids_are_unique_and_known() {
        let ids: Vec<_> = IMAGENET_224.iter().chain(&CIFAR_32).map(|c| c.id).collect();
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert_eq!(case_by_id("resnet-56").unwrap().image_size, 32);
        assert!(case_by_id("resnet-101").is_none());
    }

    #[test]
    fn imagenet_table_builds_with_the_known_counts() {
        let rows = summaries(&IMAGENET_224).unwrap();
        let macs: Vec<_> = rows.iter().map(|r| r.macs_per_image).collect();
        // ParNet-S: parnet-core's plan test (appendix A); the fused form drops the 1x1 branches.
        assert_eq!(macs[0], 5_259_501_056);
        assert_eq!(macs[1], 4_733_857_280);
        // ResNet-18 by hand at 224: stem 112²·64·3·49, layer1 four convs 56²·64·64·9, layers 2-4
        // each a strided conv, three full convs and a 1x1 projection, classifier 512·1000.
        let stage = 57_802_752 + 3 * 115_605_504 + 6_422_528;
        let resnet18 = 112 * 112 * 64 * 3 * 49 + 4 * 56 * 56 * 64 * 64 * 9 + 3 * stage + 512_000;
        assert_eq!(resnet18, 1_814_073_344);
        assert_eq!(macs[2], resnet18);
        // torchvision's 3.66 and 4.09 G for ResNet-34 and -50.
        assert!((macs[3] as f64 / 3.664e9 - 1.0).abs() < 0.01);
        assert!((macs[4] as f64 / 4.09e9 - 1.0).abs() < 0.01);
        let depths: Vec<_> = rows.iter().map(|r| r.depth).collect();
        assert_eq!(depths, [12, 12, 18, 34, 50]);
        let params: Vec<_> = rows.iter().map(|r| r.params).collect();
        assert_eq!(
            params,
            [20_930_936, 19_128_980, 11_689_512, 21_797_672, 25_557_032]
        );
    }

    #[test]
    fn cifar_table_builds_with_the_known_counts() {
        let rows = summaries(&CIFAR_32).unwrap();
        let macs: Vec<_> = rows.iter().map(|r| r.macs_per_image).collect();
        // ResNet-20: parnet-core's by-hand count.
        assert_eq!(macs[2], 40_813_184);
        // Widths in the ratio 1:2:4 give the sequential ParNet exactly the parallel one's MACs.
        assert_eq!(macs[0], macs[4]);
        assert_eq!(macs[1], macs[5]);
        // The rest pins the models' own counts (the narrow ParNets have no published figure).
        assert_eq!(
            macs,
            [
                170_978_912,
                42_991_152,
                40_813_184,
                125_747_840,
                170_978_912,
                42_991_152
            ]
        );
        let depths: Vec<_> = rows.iter().map(|r| r.depth).collect();
        assert_eq!(depths, [12, 12, 20, 56, 20, 20]);
        assert_eq!(rows[2].params, 272_474);
        assert_eq!(rows[3].params, 855_770);
    }

    #[test]
    fn flops_are_two_per_multiply_add_per_image() {
        let s = summary("resnet-20");
        assert_eq!(s.forward_flops(32), 2 * 40_813_184 * 32);
    }

    #[test]
    fn eval_forward_gives_logits_and_streams_do_not_change_them() {
        let run = ModelRun::new(case_by_id("parnet-cifar-x0.125").unwrap(), 2).unwrap();
        let parallel = run.eval_forward(true).unwrap();
        assert_eq!(parallel.dims(), [2, 10]);
        assert_eq!(parallel.data(), run.eval_forward_fn(false)().data());
        assert!(parallel.data().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn train_step_loss_is_the_same_in_parallel_and_in_sequence() {
        // Steps update the weights: each mode gets its own freshly built run.
        let new_run = || ModelRun::new(case_by_id("parnet-cifar-x0.125").unwrap(), 4).unwrap();
        let run = new_run();
        let parallel = run.train_step(true).unwrap();
        let sequential = new_run().train_step(false).unwrap();
        // Untrained logits: the loss is near ln(10).
        assert!((parallel - 10f32.ln()).abs() < 1.0, "{parallel}");
        assert_eq!(parallel.to_bits(), sequential.to_bits());
        assert_eq!(run.train_step_flops(), 3 * 2 * 42_991_152 * 4);
    }
}
