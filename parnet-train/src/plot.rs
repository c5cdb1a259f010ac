//! Charts as SVG and PNG: points with optional error bars and labels, one colour per series, a
//! legend below the plot.
//!
//! The SVG needs no font (the viewer renders the text). The PNG rasterises text with a TrueType
//! font found at run time ([`font_candidates`]); without one it is skipped, not an error. Title
//! and legend are laid out here rather than by plotters, because plotters' own caption and legend
//! need font metrics and would fail for the SVG too when no font is registered.

use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use image::{ExtendedColorType, ImageEncoder};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

mod font;
#[cfg(test)]
mod tests;

use font::{FONT, sans_serif_font};
pub use font::{FONT_PATHS, font_candidates, register_first_font};

/// One measured point; errors are the spread (e.g. one standard deviation), drawn as error bars.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub x_err: Option<f64>,
    pub y_err: Option<f64>,
    /// Text drawn next to the marker (e.g. a model name).
    pub label: Option<String>,
}

impl Point {
    /// A point without error bars or label.
    pub fn new(x: f64, y: f64) -> Self {
        Self {
            x,
            y,
            x_err: None,
            y_err: None,
            label: None,
        }
    }
}

/// A named group of points, drawn in one colour. `line = false`: markers only; `line = true`: a
/// line through the points in the given order, with markers when there are at most
/// [`MAX_MARKED_LINE_POINTS`] points.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
    pub line: bool,
}

/// One panel: title, axis descriptions and series.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

/// What [`draw`] wrote. `png` is `None` exactly when `png_skipped` says why.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    pub svg: PathBuf,
    pub png: Option<PathBuf>,
    pub png_skipped: Option<String>,
}

/// Lines with more points than this are drawn without markers.
pub const MAX_MARKED_LINE_POINTS: usize = 40;

/// Pixel size of one panel.
pub const PANEL_SIZE: (u32, u32) = (640, 480);

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Writes `<stem>.svg` and `<stem>.png`, each atomically. Without a font the PNG is skipped and
/// `png_skipped` says why.
pub fn draw(chart: &Chart, stem: &Path) -> Result<Drawn> {
    draw_panels(std::slice::from_ref(chart), stem)
}

/// Like [`draw`], with the charts side by side, each [`PANEL_SIZE`].
pub fn draw_panels(charts: &[Chart], stem: &Path) -> Result<Drawn> {
    write_files(charts, stem, sans_serif_font())
}

fn with_extension_appended(stem: &Path, ext: &str) -> PathBuf {
    let mut name = OsString::from(stem.as_os_str());
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing chart: {e}")
}

fn write_files(
    charts: &[Chart],
    stem: &Path,
    font: std::result::Result<&Path, &str>,
) -> Result<Drawn> {
    if charts.is_empty() {
        return Err(anyhow!("nothing to draw for {}", stem.display()));
    }
    let size = (PANEL_SIZE.0 * charts.len() as u32, PANEL_SIZE.1);
    let svg_path = with_extension_appended(stem, "svg");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw_root(&root, charts)?;
    }
    parnet_core::io::write_atomic(&svg_path, svg.as_bytes())?;

    let png_path = with_extension_appended(stem, "png");
    if let Err(why) = font {
        return Ok(Drawn {
            svg: svg_path,
            png: None,
            png_skipped: Some(why.to_string()),
        });
    }
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        draw_root(&root, charts)?;
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&rgb, size.0, size.1, ExtendedColorType::Rgb8)
        .with_context(|| format!("encoding {}", png_path.display()))?;
    parnet_core::io::write_atomic(&png_path, &png)?;
    Ok(Drawn {
        svg: svg_path,
        png: Some(png_path),
        png_skipped: None,
    })
}

fn draw_root<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, charts: &[Chart]) -> Result<()> {
    root.fill(&WHITE).map_err(plot_err)?;
    for (area, chart) in root.split_evenly((1, charts.len())).iter().zip(charts) {
        draw_panel(area, chart)?;
    }
    root.present().map_err(plot_err)
}

/// Pixel width of `text`: measured when a font is registered, estimated otherwise.
fn text_width<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, size: f64) -> i32 {
    let style = TextStyle::from((FONT, size).into_font());
    match area.estimate_text_size(text, &style) {
        Ok((w, _)) => w as i32,
        Err(_) => (0.6 * size * text.chars().count() as f64).ceil() as i32,
    }
}

const TITLE_HEIGHT: u32 = 34;
const LEGEND_ROW: i32 = 22;
const SWATCH: i32 = 26;

/// Top-left corners of the legend entries, in rows that fit `width`.
fn legend_layout<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &[&str],
    width: i32,
) -> Vec<(i32, i32)> {
    let (mut x, mut y) = (10, 4);
    let mut corners = Vec::with_capacity(names.len());
    for name in names {
        let w = SWATCH + 6 + text_width(area, name, 14.0) + 18;
        if x > 10 && x + w > width - 10 {
            (x, y) = (10, y + LEGEND_ROW);
        }
        corners.push((x, y));
        x += w;
    }
    corners
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<()> {
    let (width, height) = area.dim_in_pixel();
    let title_style =
        TextStyle::from((FONT, 20).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    area.draw(&Text::new(
        chart.title.clone(),
        (width as i32 / 2, 8),
        title_style,
    ))
    .map_err(plot_err)?;

    let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
    let corners = legend_layout(area, &names, width as i32);
    let legend_height = corners.last().map_or(0, |c| c.1 + LEGEND_ROW) as u32;
    let (upper, legend) = area.split_vertically(height.saturating_sub(legend_height));
    let (_, plot) = upper.split_vertically(TITLE_HEIGHT);

    let points: Vec<Vec<Point>> = chart
        .series
        .iter()
        .map(|s| finite_points(&s.points))
        .collect();
    let all = || points.iter().flatten();
    let x_range = axis_range(all().map(|p| (p.x, p.x_err)));
    let y_range = axis_range(all().map(|p| (p.y, p.y_err)));
    let label_flip_x = x_range.start + 0.8 * (x_range.end - x_range.start);
    let mut ctx = ChartBuilder::on(&plot)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, y_range)
        .map_err(plot_err)?;
    ctx.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(plot_err)?;

    for (i, (series, points)) in chart.series.iter().zip(&points).enumerate() {
        let color = COLORS[i % COLORS.len()];
        if series.line && points.len() > 1 {
            let path = points.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>();
            ctx.draw_series([PathElement::new(path, color.stroke_width(2))])
                .map_err(plot_err)?;
        }
        let bars: Vec<_> = points.iter().flat_map(error_bars).collect();
        ctx.draw_series(
            bars.iter()
                .map(|&(from, to, _)| PathElement::new([from, to], color)),
        )
        .map_err(plot_err)?;
        let caps = bars.iter().flat_map(|&(from, to, (dx, dy))| {
            [from, to]
                .map(|end| EmptyElement::at(end) + PathElement::new([(-dx, -dy), (dx, dy)], color))
        });
        ctx.draw_series(caps).map_err(plot_err)?;
        if has_markers(series, points.len()) {
            ctx.draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.x, p.y), 4, color.filled())),
            )
            .map_err(plot_err)?;
        }
        // Labels of points in the right fifth of the plot go to their left, so they stay inside.
        let labelled = points.iter().filter_map(|p| Some((p, p.label.as_deref()?)));
        ctx.draw_series(labelled.map(|(p, text)| {
            let (h_pos, dx) = if p.x > label_flip_x {
                (HPos::Right, -6)
            } else {
                (HPos::Left, 6)
            };
            let style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(h_pos, VPos::Bottom));
            EmptyElement::at((p.x, p.y)) + Text::new(text.to_string(), (dx, -4), style)
        }))
        .map_err(plot_err)?;
    }

    for (i, ((series, points), &(x, y))) in
        chart.series.iter().zip(&points).zip(&corners).enumerate()
    {
        let color = COLORS[i % COLORS.len()];
        let mid = y + LEGEND_ROW / 2;
        if series.line {
            legend
                .draw(&PathElement::new(
                    [(x, mid), (x + SWATCH, mid)],
                    color.stroke_width(2),
                ))
                .map_err(plot_err)?;
        }
        if has_markers(series, points.len()) {
            legend
                .draw(&Circle::new((x + SWATCH / 2, mid), 4, color.filled()))
                .map_err(plot_err)?;
        }
        let style = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        legend
            .draw(&Text::new(
                series.name.clone(),
                (x + SWATCH + 6, mid),
                style,
            ))
            .map_err(plot_err)?;
    }
    Ok(())
}

const CAP: i32 = 4;

/// Whether a series with `n` drawable points gets markers (see [`Series`]).
fn has_markers(series: &Series, n: usize) -> bool {
    !series.line || n <= MAX_MARKED_LINE_POINTS
}

/// An error bar: from, to (data coordinates), and the half-cap offset in pixels.
type ErrorBar = ((f64, f64), (f64, f64), (i32, i32));

/// Each error bar of `p` as (from, to, half-cap offset in pixels): vertical for `y_err`,
/// horizontal for `x_err`.
fn error_bars(p: &Point) -> Vec<ErrorBar> {
    let vertical = p.y_err.map(|e| ((p.x, p.y - e), (p.x, p.y + e), (CAP, 0)));
    let horizontal = p.x_err.map(|e| ((p.x - e, p.y), (p.x + e, p.y), (0, CAP)));
    vertical.into_iter().chain(horizontal).collect()
}

/// Coordinates beyond this magnitude are not drawn (axis spans must stay finite).
const MAX_COORD: f64 = 1e300;

/// The points whose coordinates are finite and within [`MAX_COORD`]; errors that are not finite
/// or reach past [`MAX_COORD`] are dropped, negative ones made positive.
fn finite_points(points: &[Point]) -> Vec<Point> {
    let drawable = |v: f64| v.abs() <= MAX_COORD;
    let clean = |v: f64, e: Option<f64>| {
        e.map(f64::abs)
            .filter(|e| drawable(v - e) && drawable(v + e))
    };
    points
        .iter()
        .filter(|p| drawable(p.x) && drawable(p.y))
        .map(|p| Point {
            x_err: clean(p.x, p.x_err),
            y_err: clean(p.y, p.y_err),
            ..p.clone()
        })
        .collect()
}

/// A range covering every `value +- error` with 5% margin on each side; a single value `v`
/// gets `v +- max(|v|, 1) / 10`; no values give `0..1`.
fn axis_range(values: impl Iterator<Item = (f64, Option<f64>)>) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (v, e)| {
        let e = e.unwrap_or(0.0);
        (lo.min(v - e), hi.max(v + e))
    });
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.1
    };
    let (a, b) = (lo - pad, hi + pad);
    if a.is_finite() && b.is_finite() && a < b {
        a..b
    } else {
        lo..hi
    }
}
