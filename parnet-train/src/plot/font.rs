//! The TrueType font the PNG needs, found at run time and registered with plotters once.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::FontStyle;

/// The family name charts use; the registered font answers to it.
pub(super) const FONT: &str = "sans-serif";

/// Font files tried, in order, after the `PARNET_FONT` environment variable.
pub const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/usr/share/fonts/gnu-free/FreeSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Helvetica.ttc",
];

/// `PARNET_FONT` (if set), then [`FONT_PATHS`].
pub fn font_candidates() -> Vec<PathBuf> {
    std::env::var_os("PARNET_FONT")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain(FONT_PATHS.iter().map(PathBuf::from))
        .collect()
}

/// Registers the first candidate that reads and parses as a TrueType/OpenType font as plotters'
/// "sans-serif" and returns its path; otherwise says what was wrong with each candidate.
pub fn register_first_font(candidates: &[PathBuf]) -> Result<PathBuf, String> {
    let mut problems = Vec::new();
    for path in candidates {
        match std::fs::read(path) {
            Err(e) => problems.push(format!("{}: {e}", path.display())),
            Ok(bytes) => {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                match plotters::style::register_font(FONT, FontStyle::Normal, bytes) {
                    Ok(()) => return Ok(path.clone()),
                    Err(_) => problems.push(format!("{}: not a font", path.display())),
                }
            }
        }
    }
    Err(format!(
        "no TrueType font found (set PARNET_FONT); tried {}",
        problems.join("; ")
    ))
}

/// The process-wide font, looked up and registered on first use.
pub(super) fn sans_serif_font() -> Result<&'static Path, &'static str> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match FOUND.get_or_init(|| register_first_font(&font_candidates())) {
        Ok(path) => Ok(path),
        Err(why) => Err(why),
    }
}
