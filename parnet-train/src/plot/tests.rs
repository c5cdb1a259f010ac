use super::*;

fn point(x: f64, y: f64, y_err: f64) -> Point {
    Point {
        y_err: Some(y_err),
        ..Point::new(x, y)
    }
}

/// Two series; the second has a NaN point (skipped) and a labelled point with both error bars.
fn depth_chart() -> Chart {
    let labelled = Point {
        x_err: Some(0.3),
        label: Some("parnet-s".to_string()),
        ..point(12.0, 91.0, 0.8)
    };
    Chart {
        title: "accuracy vs depth".to_string(),
        x_label: "depth (layers)".to_string(),
        y_label: "top-1 (%)".to_string(),
        series: vec![
            Series {
                name: "3 streams".to_string(),
                points: vec![
                    point(6.0, 80.0, 1.5),
                    point(9.0, 86.0, 0.5),
                    point(12.0, 89.0, 1.0),
                ],
                line: true,
            },
            Series {
                name: "1 stream".to_string(),
                points: vec![Point::new(f64::NAN, 70.0), point(9.0, 84.0, 2.0), labelled],
                line: false,
            },
        ],
    }
}

fn font_available() -> bool {
    sans_serif_font().is_ok()
}

/// Pixels of `png` whose every channel is below 80, and pixels close to `color`.
fn count_pixels(png: &Path, color: RGBColor) -> (image::RgbImage, usize, usize) {
    let img = image::open(png).unwrap().to_rgb8();
    let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 80)).count();
    let near = |a: u8, b: u8| a.abs_diff(b) < 12;
    let colored = img
        .pixels()
        .filter(|p| near(p[0], color.0) && near(p[1], color.1) && near(p[2], color.2))
        .count();
    (img, dark, colored)
}

#[test]
fn a_chart_with_error_bars_is_written_as_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let drawn = draw(&depth_chart(), &dir.path().join("accuracy_vs_depth")).unwrap();
    assert_eq!(drawn.svg, dir.path().join("accuracy_vs_depth.svg"));

    let svg = std::fs::read_to_string(&drawn.svg).unwrap();
    for text in [
        "accuracy vs depth",
        "depth (layers)",
        "top-1 (%)",
        "3 streams",
        "1 stream",
    ] {
        assert!(svg.contains(text), "svg lacks {text:?}");
    }
    assert!(svg.contains("parnet-s"));
    // Five finite points and two legend markers; the NaN point is not drawn.
    assert_eq!(svg.matches("<circle").count(), 7);
    // In the first colour: the line, three vertical error bars with two caps each, the legend
    // swatch. In the second (markers only, so no swatch): two vertical and one horizontal bar,
    // six caps.
    let paths_in = |color: RGBColor| {
        let stroke = format!(
            r##"stroke="#{:02X}{:02X}{:02X}""##,
            color.0, color.1, color.2
        );
        svg.lines()
            .filter(|l| l.starts_with("<polyline") && l.contains(&stroke))
            .count()
    };
    assert_eq!(paths_in(COLORS[0]), 1 + 3 + 6 + 1);
    assert_eq!(paths_in(COLORS[1]), 3 + 6);

    assert_eq!(
        drawn.png.is_some(),
        font_available(),
        "{:?}",
        drawn.png_skipped
    );
    if let Some(png) = &drawn.png {
        assert_eq!(png, &dir.path().join("accuracy_vs_depth.png"));
        assert!(drawn.png_skipped.is_none());
        let (img, dark, blue) = count_pixels(png, COLORS[0]);
        assert_eq!(img.dimensions(), PANEL_SIZE);
        assert!(dark > 500, "only {dark} dark pixels: text and axes missing");
        assert!(blue > 100, "only {blue} pixels in the first series' colour");
        let (_, _, red) = count_pixels(png, COLORS[1]);
        assert!(red > 50, "only {red} pixels in the second series' colour");
    }
}

#[test]
fn long_lines_are_drawn_without_markers() {
    let dir = tempfile::tempdir().unwrap();
    let line = |n: usize| Series {
        name: format!("{n} points"),
        points: (0..n)
            .map(|i| Point::new(i as f64, (i * i) as f64))
            .collect(),
        line: true,
    };
    let chart = Chart {
        title: "lines".to_string(),
        x_label: "epoch".to_string(),
        y_label: "loss".to_string(),
        series: vec![
            line(MAX_MARKED_LINE_POINTS + 1),
            line(MAX_MARKED_LINE_POINTS),
        ],
    };
    let drawn = write_files(&[chart], &dir.path().join("lines"), Err("svg only")).unwrap();
    let svg = std::fs::read_to_string(&drawn.svg).unwrap();
    // Only the shorter line, and its legend entry, have markers.
    assert_eq!(svg.matches("<circle").count(), MAX_MARKED_LINE_POINTS + 1);
}

#[test]
fn panels_are_placed_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let drawn = draw_panels(&[depth_chart(), depth_chart()], &dir.path().join("two")).unwrap();
    let svg = std::fs::read_to_string(&drawn.svg).unwrap();
    assert_eq!(svg.matches("accuracy vs depth").count(), 2);
    assert!(
        svg.contains(r#"width="1280" height="480""#),
        "{}",
        &svg[..200]
    );
    if let Some(png) = &drawn.png {
        let img = image::open(png).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (2 * PANEL_SIZE.0, PANEL_SIZE.1)
        );
    }
    assert!(draw_panels(&[], &dir.path().join("none")).is_err());
}

#[test]
fn without_a_font_the_svg_is_written_and_the_png_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("chart");
    let drawn = write_files(&[depth_chart()], &stem, Err("no font here")).unwrap();
    assert!(drawn.svg.exists());
    assert_eq!(drawn.png, None);
    assert_eq!(drawn.png_skipped.as_deref(), Some("no font here"));
    assert!(!dir.path().join("chart.png").exists());
}

/// Runs [`svg_child_without_any_registered_font`] alone in a fresh process, where no font has
/// been registered with plotters: the SVG must not depend on font metrics.
#[test]
fn the_svg_is_drawn_when_no_font_was_ever_registered() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "plot::tests::svg_child_without_any_registered_font",
        ])
        .args(["--ignored", "--test-threads=1"])
        .env("PARNET_PLOT_CHILD_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
    let svg = std::fs::read_to_string(dir.path().join("child.svg")).unwrap();
    assert!(svg.contains("accuracy vs depth") && svg.contains("1 stream"));
}

#[test]
#[ignore = "run by the_svg_is_drawn_when_no_font_was_ever_registered in its own process"]
fn svg_child_without_any_registered_font() {
    let dir = PathBuf::from(std::env::var_os("PARNET_PLOT_CHILD_DIR").unwrap());
    write_files(&[depth_chart()], &dir.join("child"), Err("none")).unwrap();
}

#[test]
fn font_lookup_names_every_candidate_it_could_not_use() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.ttf");
    let garbage = dir.path().join("garbage.ttf");
    std::fs::write(&garbage, b"not a font at all").unwrap();
    let why = register_first_font(&[missing, garbage]).unwrap_err();
    assert!(why.contains("missing.ttf:"), "{why}");
    assert!(why.contains("garbage.ttf: not a font"), "{why}");
    assert!(register_first_font(&[]).is_err());
}

#[test]
fn font_lookup_skips_unusable_candidates() {
    let Some(real) = FONT_PATHS.iter().map(PathBuf::from).find(|p| p.exists()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let candidates = [dir.path().join("missing.ttf"), real.clone()];
    assert_eq!(register_first_font(&candidates), Ok(real));
}

#[test]
fn axis_ranges_cover_values_and_errors_with_a_margin() {
    let close = |r: Range<f64>, lo: f64, hi: f64| {
        assert!(
            (r.start - lo).abs() <= 1e-12 * lo.abs().max(1.0)
                && (r.end - hi).abs() <= 1e-12 * hi.abs().max(1.0),
            "{r:?}"
        );
    };
    close(axis_range([].into_iter()), 0.0, 1.0);
    close(axis_range([(50.0, None)].into_iter()), 45.0, 55.0);
    close(
        axis_range([(0.0, None), (0.0, Some(0.0))].into_iter()),
        -0.1,
        0.1,
    );
    close(
        axis_range([(1.0, Some(0.5)), (3.0, None)].into_iter()),
        0.375,
        3.125,
    );
    close(
        axis_range([(-2.0, Some(1.0)), (2.0, Some(1.0))].into_iter()),
        -3.3,
        3.3,
    );
    close(
        axis_range([(-1e300, None), (1e300, None)].into_iter()),
        -1.1e300,
        1.1e300,
    );
}

#[test]
fn non_finite_points_and_errors_are_dropped() {
    let points = [
        Point::new(f64::NAN, 1.0),
        Point::new(1.0, f64::INFINITY),
        Point {
            x_err: Some(f64::NAN),
            y_err: Some(-0.5),
            ..Point::new(2.0, 3.0)
        },
        point(4.0, 1e300, 1e300),
        Point::new(5.0, f64::MAX),
    ];
    let kept = finite_points(&points);
    assert_eq!(kept.len(), 2);
    assert_eq!(
        (kept[0].x, kept[0].x_err, kept[0].y_err),
        (2.0, None, Some(0.5))
    );
    assert_eq!((kept[1].y, kept[1].y_err), (1e300, None));
}

#[test]
fn degenerate_charts_are_drawn_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let series = |name: &str, points: Vec<Point>, line| Series {
        name: name.to_string(),
        points,
        line,
    };
    let cases = vec![
        vec![],
        vec![series("empty", vec![], true)],
        vec![series("one", vec![point(3.0, 7.0, 0.0)], true)],
        vec![series(
            "same x",
            vec![point(2.0, 1.0, 0.1), point(2.0, 5.0, 0.1)],
            true,
        )],
        vec![series(
            "same y",
            vec![Point::new(1.0, 4.0), Point::new(9.0, 4.0)],
            false,
        )],
        vec![series("nan", vec![Point::new(f64::NAN, f64::NAN)], true)],
        vec![series(
            "huge",
            vec![Point::new(-1e300, 0.0), Point::new(1e300, 1.0)],
            true,
        )],
        vec![series(
            "beyond",
            vec![Point::new(-f64::MAX, 0.0), Point::new(f64::MAX, 1.0)],
            true,
        )],
        vec![series(
            "large offset",
            vec![Point::new(1e16, 1e16), Point::new(1e16 + 2.0, 1e16 + 2.0)],
            true,
        )],
        vec![series(
            "tiny span",
            vec![Point::new(1.0, 1.0), Point::new(1.0 + 1e-15, 1.0 + 1e-15)],
            true,
        )],
        (0..14)
            .map(|i| {
                series(
                    &format!("a long series name {i}"),
                    vec![Point::new(i as f64, 1.0)],
                    false,
                )
            })
            .collect(),
    ];
    for (i, series) in cases.into_iter().enumerate() {
        let chart = Chart {
            title: format!("case {i}"),
            x_label: "x".to_string(),
            y_label: "y".to_string(),
            series,
        };
        let drawn = draw(&chart, &dir.path().join(format!("case{i}"))).unwrap();
        let svg = std::fs::read_to_string(&drawn.svg).unwrap();
        assert!(svg.contains(&format!("case {i}")));
        assert_eq!(drawn.png.is_some(), font_available());
    }
}
