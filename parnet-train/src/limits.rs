//! Up-front limits: sizes refused with their figure before any work, instead of a failed
//! allocation (or a count that wraps around) later.

use anyhow::{Result, bail};
use parnet_core::exec::ExecOptions;
use parnet_core::models::{Network, NetworkSpec};

/// The largest square input any command plans for. Counts of the largest networks at this size
/// stay far inside `usize`; activations of even one image at this size exceed any CPU's memory.
pub const MAX_IMAGE_SIZE: usize = 16384;

/// Refuses an image size of 0 or above [`MAX_IMAGE_SIZE`].
pub fn check_image_size(size: usize) -> Result<()> {
    if size == 0 || size > MAX_IMAGE_SIZE {
        bail!("--image-size {size} is out of range: it takes 1 to {MAX_IMAGE_SIZE}");
    }
    Ok(())
}

/// Refuses a network whose largest single weight (a 3x3 convolution between its two widest
/// stages, a lower bound of its parameters) would not fit in the memory available: building it
/// would end in a failed allocation instead.
pub fn check_network_fits(spec: &NetworkSpec) -> Result<()> {
    let Ok(config) = spec.parnet_config() else {
        return Ok(()); // the ResNets and the sweep have fixed widths
    };
    let w = config.widths;
    let largest = (1..w.len())
        .map(|i| (w[i - 1] as u128) * (w[i] as u128) * 9 * 4)
        .max()
        .unwrap_or(0);
    if let Some(available) = available_memory_bytes()
        && largest > available as u128
    {
        bail!(
            "{} at widths {:?} needs more than {:.1} GiB for one convolution's weights, more than the {:.1} GiB available; use a smaller --width-mult",
            spec.name,
            w,
            largest as f64 / f64::from(1u32 << 30),
            available as f64 / f64::from(1u32 << 30)
        );
    }
    Ok(())
}

/// What a pass over activations keeps alive, for [`check_activations_fit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// A forward in eval mode: at least the largest activation at a time.
    Inference,
    /// A training step: at least every activation of the deploy form, kept for the backward.
    Training,
}

/// Refuses a batch of `batch` images of `height x width` that `model`'s activations could not
/// hold in the memory available (a lower bound from the deploy form's graph), before any of
/// them is allocated.
pub fn check_activations_fit(
    model: &dyn Network,
    batch: usize,
    (height, width): (usize, usize),
    pass: Pass,
) -> Result<()> {
    let Some(available) = available_memory_bytes() else {
        return Ok(());
    };
    let graph = model.deploy_graph((height, width))?;
    let floats = graph
        .activation_floats(batch)
        .map(|(largest, total)| match pass {
            Pass::Inference => largest,
            Pass::Training => total,
        });
    let bytes = floats.and_then(|f| f.checked_mul(4));
    if bytes.is_some_and(|b| b <= available) {
        return Ok(());
    }
    let gib = |b: usize| b as f64 / f64::from(1u32 << 30);
    let need = bytes.map_or("more than the address space".to_string(), |b| {
        format!("at least {:.1} GiB", gib(b))
    });
    let what = match pass {
        Pass::Inference => "a forward",
        Pass::Training => "a training step",
    };
    bail!(
        "{}: {what} on a batch of {batch} at {height}x{width} needs {need} of activations, more than the {:.1} GiB available; use a smaller batch or image size",
        model.name(),
        gib(available)
    )
}

/// The executor's default options, with the memory the machine has free as its limit.
pub fn exec_options() -> ExecOptions {
    ExecOptions {
        memory_limit_bytes: available_memory_bytes(),
        ..ExecOptions::default()
    }
}

/// The memory the OS says is available (`MemAvailable` of `/proc/meminfo`), if it says.
pub fn available_memory_bytes() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_sizes_out_of_range_are_refused_with_the_limit() {
        assert!(check_image_size(224).is_ok());
        assert!(check_image_size(MAX_IMAGE_SIZE).is_ok());
        for bad in [0, MAX_IMAGE_SIZE + 1, usize::MAX] {
            let msg = check_image_size(bad).unwrap_err().to_string();
            assert!(msg.contains(&MAX_IMAGE_SIZE.to_string()), "{msg}");
        }
    }

    #[test]
    fn activations_past_the_memory_are_refused_with_the_figure() {
        let spec = NetworkSpec {
            width_mult: Some(0.0625),
            ..NetworkSpec::new("parnet-cifar", 10)
        };
        let model = spec.build(0).unwrap();
        for pass in [Pass::Inference, Pass::Training] {
            assert!(check_activations_fit(model.as_ref(), 2, (32, 32), pass).is_ok());
        }
        if available_memory_bytes().is_some() {
            let msg = check_activations_fit(model.as_ref(), 1 << 20, (4096, 4096), Pass::Training)
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("a training step") && msg.contains("GiB available"),
                "{msg}"
            );
        }
    }

    #[test]
    fn available_memory_is_read_where_the_os_reports_it() {
        if cfg!(target_os = "linux") {
            assert!(available_memory_bytes().is_some_and(|b| b > 1 << 20));
        }
    }
}
