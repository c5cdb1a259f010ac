//! Arguments that several subcommands share, declared once: which network ([`ModelArgs`]) and how
//! many threads ([`ThreadArgs`]).

use std::path::Path;

use anyhow::{Result, bail};
use clap::Args;
use parnet_core::io::read_metadata;
use parnet_core::models::parnet::Activation;
use parnet_core::models::{NetworkSpec, default_num_classes};

/// Which network: any name of the registry, with the options the name leaves open.
#[derive(Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// parnet-s, parnet-s96, parnet-m, parnet-l, parnet-xl, parnet-cifar,
    /// sequential-parnet-cifar, resnet-18, resnet-34, resnet-50, resnet-20, resnet-56, or a sweep
    /// member sweep-s<streams>-b<blocks>-w<width>[-relu].
    #[arg(long)]
    pub model: Option<String>,
    /// Number of classes [default: 1000 for the ImageNet layouts, 10 for the CIFAR ones].
    #[arg(long)]
    pub classes: Option<usize>,
    /// Block activation of ParNet-style networks: silu (paper) or relu (released configs)
    /// [default: silu; a sweep name ending in -relu: relu].
    #[arg(long)]
    pub activation: Option<String>,
    /// Width multiplier of the ParNet variants and sequential-parnet-cifar (widths rounded to
    /// multiples of 8); `bench` commands take a comma-separated list, one case each.
    #[arg(long, value_delimiter = ',')]
    pub width_mult: Vec<f64>,
}

impl ModelArgs {
    /// The network of `--model` (or `default` when none is given), validated; one
    /// `--width-mult` at most.
    pub fn spec_or(&self, default: &str) -> Result<NetworkSpec> {
        if self.width_mult.len() > 1 {
            bail!("give one --width-mult here (lists are for the bench commands)");
        }
        Ok(self.specs_or(default)?.remove(0))
    }

    /// [`ModelArgs::spec_or`] with `--model` required.
    pub fn spec(&self) -> Result<NetworkSpec> {
        self.spec_or(self.required_name()?)
    }

    /// One network per `--width-mult` (one without a multiplier when none is given).
    pub fn specs_or(&self, default: &str) -> Result<Vec<NetworkSpec>> {
        let name = self.model.as_deref().unwrap_or(default);
        let widths: Vec<Option<f64>> = if self.width_mult.is_empty() {
            vec![None]
        } else {
            self.width_mult.iter().copied().map(Some).collect()
        };
        widths
            .into_iter()
            .map(|width_mult| {
                let mut spec = NetworkSpec {
                    width_mult,
                    ..NetworkSpec::new(name, self.classes.unwrap_or(default_num_classes(name)))
                };
                if let Some(a) = &self.activation {
                    spec.activation = Activation::parse(a)?;
                }
                spec.validate()?;
                Ok(spec)
            })
            .collect()
    }

    /// For a command reading the weights file `path`: the network given on the command line
    /// (whose class count, when `--classes` is not given, is the one the file records for that
    /// network), or `None` to take the one the file's metadata records (then no other model
    /// option may be given).
    pub fn spec_for_file(&self, path: &Path) -> Result<Option<NetworkSpec>> {
        if let Some(name) = &self.model {
            let mut args = self.clone();
            if args.classes.is_none()
                && let Ok(md) = read_metadata(path)
                && md.get("model") == Some(name)
            {
                args.classes = md.get("classes").and_then(|c| c.parse().ok());
            }
            return args.spec().map(Some);
        }
        if self.classes.is_some() || self.activation.is_some() || !self.width_mult.is_empty() {
            bail!("--classes, --activation and --width-mult describe a --model; give it too");
        }
        Ok(None)
    }

    fn required_name(&self) -> Result<&str> {
        match &self.model {
            Some(name) => Ok(name),
            None => bail!("--model is required (e.g. --model parnet-s)"),
        }
    }
}

/// How many worker threads.
#[derive(Args, Debug, Clone, Default)]
pub struct ThreadArgs {
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl ThreadArgs {
    /// Sizes the one rayon pool; must run before any parallel work.
    pub fn apply(&self) -> Result<()> {
        crate::threads::set_threads(self.threads)
    }
}

/// Refuses an output path that cannot be right, before any work is done: an existing folder,
/// or the same file as one of the command's `inputs` (which writing would destroy).
pub fn check_output_path(output: &Path, inputs: &[&Path]) -> Result<()> {
    if output.is_dir() {
        bail!(
            "--output {} is a folder; give the path of a file to write",
            output.display()
        );
    }
    if let Ok(out) = output.canonicalize() {
        for input in inputs {
            if input.canonicalize().is_ok_and(|i| i == out) {
                bail!(
                    "--output {} is the input file {}; writing it would destroy it, choose another path",
                    output.display(),
                    input.display()
                );
            }
        }
    }
    Ok(())
}
