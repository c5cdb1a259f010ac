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

use parnet_core::models::Network;
use parnet_core::models::parnet::{ParNet, ParNetConfig};
use parnet_core::models::resnet::baseline_by_name_with_width;
use parnet_core::nn::Ctx;
use parnet_core::ops::loss::cross_entropy;
use parnet_core::testing::{random_values, to_f32};
use parnet_core::{BackwardOptions, Buffer, Result, Tensor};

/// Seed of every model's initialisation.
pub const MODEL_SEED: u64 = 0;
/// Seed of the input images.
pub const INPUT_SEED: u64 = 1;

/// How a case's model is built.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arch {
    /// A ParNet variant (`ParNetConfig::from_name`), width multiplier, deploy form or not.
    ParNet {
        variant: &'static str,
        width_mult: f64,
        fused: bool,
    },
    /// A name accepted by `baseline_by_name_with_width` (ResNets only with multiplier 1).
    Baseline { name: &'static str, width_mult: f64 },
}

/// One benchmarked model: its bench id, how to build it, and the square input size it runs at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelCase {
    pub id: &'static str,
    pub arch: Arch,
    pub image_size: usize,
    pub num_classes: usize,
}

const fn parnet(
    id: &'static str,
    variant: &'static str,
    width_mult: f64,
    fused: bool,
    image_size: usize,
    num_classes: usize,
) -> ModelCase {
    ModelCase {
        id,
        arch: Arch::ParNet {
            variant,
            width_mult,
            fused,
        },
        image_size,
        num_classes,
    }
}

const fn baseline(
    id: &'static str,
    name: &'static str,
    width_mult: f64,
    image_size: usize,
    num_classes: usize,
) -> ModelCase {
    ModelCase {
        id,
        arch: Arch::Baseline { name, width_mult },
        image_size,
        num_classes,
    }
}

/// ImageNet-sized cases: 224x224, 1000 classes.
pub const IMAGENET_224: [ModelCase; 5] = [
    parnet("parnet-s", "parnet-s", 1.0, false, 224, 1000),
    parnet("parnet-s-fused", "parnet-s", 1.0, true, 224, 1000),
    baseline("resnet-18", "resnet-18", 1.0, 224, 1000),
    baseline("resnet-34", "resnet-34", 1.0, 224, 1000),
    baseline("resnet-50", "resnet-50", 1.0, 224, 1000),
];

/// CIFAR-sized cases: 32x32, 10 classes.
pub const CIFAR_32: [ModelCase; 6] = [
    parnet("parnet-cifar-x0.25", "parnet-cifar", 0.25, false, 32, 10),
    parnet("parnet-cifar-x0.125", "parnet-cifar", 0.125, false, 32, 10),
    baseline("resnet-20", "resnet-20", 1.0, 32, 10),
    baseline("resnet-56", "resnet-56", 1.0, 32, 10),
    baseline(
        "sequential-parnet-cifar-x0.25",
        "sequential-parnet-cifar",
        0.25,
        32,
        10,
    ),
    baseline(
        "sequential-parnet-cifar-x0.125",
        "sequential-parnet-cifar",
        0.125,
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
    /// The model, freshly initialised from [`MODEL_SEED`].
    pub fn build(&self) -> Result<Box<dyn Network>> {
        match self.arch {
            Arch::ParNet {
                variant,
                width_mult,
                fused,
            } => {
                let mut config = ParNetConfig::from_name(variant, self.num_classes)?;
                if width_mult != 1.0 {
                    config = config.with_width_mult(width_mult)?;
                }
                let model = ParNet::new(config, MODEL_SEED)?;
                Ok(if fused {
                    Box::new(model.fused()?)
                } else {
                    Box::new(model)
                })
            }
            Arch::Baseline { name, width_mult } => {
                baseline_by_name_with_width(name, self.num_classes, width_mult, MODEL_SEED)
            }
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
/// labels `i % classes`.
pub struct ModelRun {
    pub case: ModelCase,
    pub batch: usize,
    pub summary: ModelSummary,
    model: Box<dyn Network>,
    images: Tensor,
    labels: Vec<usize>,
}

impl ModelRun {
    pub fn new(case: ModelCase, batch: usize) -> Result<ModelRun> {
        let model = case.build()?;
        let s = case.image_size;
        let values = random_values(batch * 3 * s * s, 1.0, INPUT_SEED);
        let images = Tensor::from_vec(to_f32(&values), [batch, 3, s, s])?;
        Ok(ModelRun {
            summary: ModelSummary::of(&case, model.as_ref()),
            labels: (0..batch).map(|i| i % case.num_classes).collect(),
            case,
            batch,
            model,
            images,
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

    /// One training step without the optimizer: forward in training mode (batch statistics,
    /// graph), cross-entropy, backward, then the gradients are cleared. `parallel` applies to
    /// both the streams of the forward and the backward walk. Returns the loss.
    pub fn train_step(&self, parallel: bool) -> Result<f32> {
        let ctx = Ctx {
            parallel_streams: parallel,
            ..Ctx::train(MODEL_SEED)
        };
        let logits = self.model.forward(&self.images, ctx)?;
        let loss = cross_entropy(&logits, &self.labels, 0.0)?;
        loss.backward_with_options(Buffer::filled(1, 1.0), BackwardOptions { parallel })?;
        self.model.zero_grad();
        loss.item()
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
        let run = ModelRun::new(case_by_id("parnet-cifar-x0.125").unwrap(), 4).unwrap();
        let parallel = run.train_step(true).unwrap();
        let sequential = run.train_step(false).unwrap();
        // Untrained logits: the loss is near ln(10).
        assert!((parallel - 10f32.ln()).abs() < 1.0, "{parallel}");
        assert_eq!(parallel.to_bits(), sequential.to_bits());
        assert_eq!(run.train_step_flops(), 3 * 2 * 42_991_152 * 4);
    }
}
