//! `parnet data`: pack an image folder into one file, inspect a data set.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Convert an image folder (root/<class>/<image>) into one file read in a single pass.
    Pack {
        /// The image folder.
        src: PathBuf,
        /// The output folder.
        dst: PathBuf,
        /// Resize the shorter side and centre-crop to SIZE x SIZE.
        #[arg(long)]
        size: Option<usize>,
        /// Skip (and count) images that cannot be decoded.
        #[arg(long)]
        skip_corrupt: bool,
    },
    /// Format, count, image size, per-class counts, per-channel mean and std.
    Inspect {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// Runs `parnet data pack` or `parnet data inspect`.
pub fn run(what: &DataCommand) -> Result<()> {
    match what {
        DataCommand::Pack {
            src,
            dst,
            size,
            skip_corrupt,
        } => {
            let options = parnet_data::PackOptions {
                size: *size,
                skip_corrupt: *skip_corrupt,
                ..Default::default()
            };
            let report = parnet_data::pack_folder(src, dst, &options)?;
            crate::say!(
                "packed {} images ({}x{}, {} classes) into {}{}",
                report.count,
                report.height,
                report.width,
                report.num_classes,
                report.output.display(),
                if report.skipped.is_empty() {
                    String::new()
                } else {
                    format!("; skipped {} unreadable images", report.skipped.len())
                }
            );
        }
        DataCommand::Inspect { path, json } => {
            let report = parnet_data::inspect(path)?;
            if *json {
                crate::say!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                crate::say!("{}", report.to_string().trim_end());
            }
        }
    }
    Ok(())
}
