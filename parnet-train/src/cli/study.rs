//! `parnet study depth`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::args::{ModelArgs, ThreadArgs};
use crate::config::TrainConfig;
use crate::study::{StudyOptions, run_depth_study};

#[derive(Subcommand, Debug)]
pub enum StudyCommand {
    /// Latency (and with --train-epochs, accuracy) against depth at about constant
    /// multiply-adds: ParNet-style networks with 1-4 streams, plus deep baselines. Writes
    /// depth_study.csv, depth_study_raw.csv, depth_study.json and charts (SVG and PNG).
    Depth(DepthArgs),
}

#[derive(Args, Debug, Clone)]
pub struct DepthArgs {
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// A few minutes on 2 cores: fewer networks, fewer repeats, smaller networks and, when
    /// training on the synthetic set, a smaller set.
    #[arg(long)]
    pub quick: bool,
    /// Train every network for this many epochs (may be fractional); default: latency only.
    #[arg(long)]
    pub train_epochs: Option<f64>,
    /// Trainings per network (different seeds) for the accuracy spread [default: 3; quick: 2].
    #[arg(long)]
    pub train_repeats: Option<usize>,
    /// Latency medians per network and batch size [default: 5; quick: 3].
    #[arg(long)]
    pub latency_repeats: Option<usize>,
    /// Latency batch sizes, comma-separated [default: 1,32; quick: 1,8].
    #[arg(long, value_delimiter = ',')]
    pub batch: Option<Vec<usize>>,
    /// The reference network, whose multiply-adds every sweep network matches [default:
    /// parnet-cifar at --width-mult 0.25, quick: 0.125]; --width-mult is also the width of the
    /// ParNet-style baselines, --activation (default: the config's) that of every ParNet-style
    /// network, --classes (default 10) the class count of the timed networks.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Base training config (data, optimiser, schedule) [default: the built-in synthetic job].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// `synthetic` or a data path for the trainings (replaces the config's).
    #[arg(long)]
    pub data: Option<String>,
    /// Leave out the named baselines (parnet-cifar, sequential-parnet-cifar, resnet-20/56).
    #[arg(long)]
    pub no_baselines: bool,
    #[command(flatten)]
    pub threads: ThreadArgs,
}

/// Resolves the defaults, runs the study and prints its table.
pub fn run(cmd: &StudyCommand) -> Result<()> {
    let StudyCommand::Depth(a) = cmd;
    a.threads.apply()?;
    let mut base = TrainConfig::load(a.config.as_deref())?;
    if let Some(d) = &a.data {
        base.data.source = d.clone();
    }
    if let Some(act) = &a.model.activation {
        base.model.activation = act.clone();
    }
    if a.model.width_mult.len() > 1 {
        bail!("give one --width-mult");
    }
    let width_mult =
        a.model
            .width_mult
            .first()
            .copied()
            .unwrap_or(if a.quick { 0.125 } else { 0.25 });
    let classes = a.model.classes.unwrap_or(10);
    let reference = match &a.model.model {
        None => None,
        Some(name) => {
            let takes_width = name.starts_with("parnet") || name.starts_with("sequential");
            let args = ModelArgs {
                classes: Some(classes),
                width_mult: if takes_width {
                    vec![width_mult]
                } else {
                    Vec::new()
                },
                ..a.model.clone()
            };
            Some(args.spec()?)
        }
    };
    if base.data.source != "synthetic" && !Path::new(&base.data.source).exists() {
        bail!("data {} does not exist", base.data.source);
    }
    if a.quick && base.data.source == "synthetic" {
        base.data.synthetic_train = base.data.synthetic_train.min(1024);
        base.data.synthetic_val = base.data.synthetic_val.min(512);
    }
    base.train.threads = None;
    base.validate()?;
    let opts = StudyOptions {
        out: a.out.clone(),
        quick: a.quick,
        reference,
        width_mult,
        classes,
        batches: a
            .batch
            .clone()
            .unwrap_or(if a.quick { vec![1, 8] } else { vec![1, 32] }),
        latency_repeats: a.latency_repeats.unwrap_or(if a.quick { 3 } else { 5 }),
        train_epochs: a.train_epochs,
        train_repeats: a.train_repeats.unwrap_or(if a.quick { 2 } else { 3 }),
        base_config: base,
        baselines: !a.no_baselines,
    };
    if let Some(e) = opts.train_epochs
        && !(e > 0.0 && e.is_finite())
    {
        bail!("--train-epochs must be positive, got {e}");
    }
    let rows = run_depth_study(&opts, true)?;
    crate::say!(
        "{:<28} {:>5} {:>9} {:>8} {}",
        "model",
        "depth",
        "params",
        "MMACs",
        opts.batches
            .iter()
            .map(|b| format!("{:>14}", format!("b{b} ms")))
            .collect::<String>()
            + "   val top-1"
    );
    for r in &rows {
        let lat: String = r
            .latency_ms()
            .iter()
            .map(|(m, s)| format!("{:>14}", format!("{m:.2}±{s:.2}")))
            .collect();
        let acc = r.val_top1().map_or(String::new(), |(m, s)| {
            format!("   {:.1}±{:.1}%", 100.0 * m, 100.0 * s)
        });
        crate::say!(
            "{:<28} {:>5} {:>9} {:>8.1} {lat}{acc}",
            r.model,
            r.depth,
            r.params,
            r.macs as f64 / 1e6
        );
    }
    Ok(())
}
