//! Up-front limits: sizes refused with their figure before any work, instead of a failed
//! allocation (or a count that wraps around) later.

use anyhow::{Result, bail};
use parnet_core::models::NetworkSpec;

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
    fn available_memory_is_read_where_the_os_reports_it() {
        if cfg!(target_os = "linux") {
            assert!(available_memory_bytes().is_some_and(|b| b > 1 << 20));
        }
    }
}
