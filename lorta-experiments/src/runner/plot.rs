//! `plot.png`: a score vs trainable parameters (log x), as labelled points (one per table row)
//! or as curves with ± std error bars (one per method, e.g. the rank sweep).
//! Text is drawn with DejaVu Sans, embedded in the binary (the `dejavu` crate), so a plot looks
//! the same on a laptop and on a GPU server without fonts; `LORTA_PLOT_FONT` names another TTF.
use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

pub enum Text {
    Rendered,
    NoFont,
}

fn load_font() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        if let Some(p) = std::env::var_os("LORTA_PLOT_FONT").filter(|p| !p.is_empty()) {
            let registered = std::fs::read(&p)
                .map(|bytes| register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into_boxed_slice())).is_ok())
                .unwrap_or(false);
            if registered {
                return true;
            }
            eprintln!(
                "warning: LORTA_PLOT_FONT={} is not a readable TrueType font; plots use the embedded DejaVu Sans",
                Path::new(&p).display()
            );
        }
        register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok()
    })
}

/// One curve: `(x, mean, std)` points, drawn in x order.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64, f64)>,
}

fn bounds(xs: impl Iterator<Item = f64>, ys: impl Iterator<Item = (f64, f64)>) -> (f64, f64, f64, f64) {
    let (a, b) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x.max(1.0)), b.max(x.max(1.0))));
    let (c, d) = ys.fold((f64::MAX, f64::MIN), |(a, b), (lo, hi)| (a.min(lo), b.max(hi)));
    if a > b {
        return (1.0, 10.0, 0.0, 100.0);
    }
    let pad = ((d - c) * 0.1).max(1.0);
    (a / 2.0, b * 2.0, c - pad, d + pad)
}

const COLORS: [RGBColor; 6] = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];

/// Draws into `path` (through a temporary file and a rename) with `draw` adding the series.
fn draw_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    (xmin, xmax, ymin, ymax): (f64, f64, f64, f64),
    draw: impl FnOnce(&mut ChartContext<'_, BitMapBackend<'_>, Cartesian2d<LogCoord<f64>, RangedCoordf64>>, bool) -> Result<()>,
) -> Result<Text> {
    let text = load_font();
    let err = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("png.tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (800, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(20);
        if text {
            builder.caption(title, ("sans-serif", 22)).x_label_area_size(45).y_label_area_size(55);
        } else {
            builder.x_label_area_size(10).y_label_area_size(10);
        }
        let mut chart = builder.build_cartesian_2d((xmin..xmax).log_scale(), ymin..ymax).map_err(|e| err(&e))?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc(x_label).y_desc(y_label).label_style(("sans-serif", 14));
        } else {
            mesh.disable_x_axis().disable_y_axis();
        }
        mesh.draw().map_err(|e| err(&e))?;
        draw(&mut chart, text)?;
        if text {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| err(&e))?;
    Ok(if text { Text::Rendered } else { Text::NoFont })
}

/// One labelled point per row: `(label, parameters, score)`.
pub fn score_vs_params(path: &Path, title: &str, x_label: &str, y_label: &str, points: &[(String, f64, f64)]) -> Result<Text> {
    let b = bounds(points.iter().map(|p| p.1), points.iter().map(|p| (p.2, p.2)));
    draw_chart(path, title, x_label, y_label, b, |chart, text| {
        let err = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", path.display());
        for (i, (name, x, y)) in points.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            chart.draw_series(std::iter::once(Circle::new((x.max(1.0), *y), 6, c.filled()))).map_err(|e| err(&e))?;
            if text {
                chart
                    .draw_series(std::iter::once(Text_::new(name.clone(), (x.max(1.0), *y), ("sans-serif", 15).into_font().color(&c))))
                    .map_err(|e| err(&e))?;
            }
        }
        Ok(())
    })
}

/// One line per series through its `(x, mean)` points, with `mean ± std` error bars and a legend.
pub fn curves(path: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<Text> {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let b = bounds(all().map(|p| p.0), all().map(|p| (p.1 - p.2, p.1 + p.2)));
    draw_chart(path, title, x_label, y_label, b, |chart, _text| {
        let err = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", path.display());
        for (i, s) in series.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let mut pts = s.points.clone();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(pts.iter().map(|p| (p.0.max(1.0), p.1)), c.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
            // ± std bars (vertical segments; zero-length for one seed)
            chart
                .draw_series(pts.iter().filter(|p| p.2 > 0.0).map(|p| PathElement::new(vec![(p.0.max(1.0), p.1 - p.2), (p.0.max(1.0), p.1 + p.2)], c.stroke_width(2))))
                .map_err(|e| err(&e))?;
            chart.draw_series(pts.iter().map(|p| Circle::new((p.0.max(1.0), p.1), 4, c.filled()))).map_err(|e| err(&e))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_plots_write_pngs() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a/points.png");
        let drawn = score_vs_params(&p, "t", "params", "score", &[("A".into(), 10.0, 50.0), ("B".into(), 1000.0, 60.0)]).unwrap();
        // The embedded font: text on every machine, system fonts or not.
        assert!(matches!(drawn, Text::Rendered), "plot drawn without text");
        assert_eq!(&std::fs::read(&p).unwrap()[..4], b"\x89PNG");
        let p = tmp.path().join("curves.png");
        let s = vec![
            Series { name: "LoRA".into(), points: vec![(1000.0, 60.0, 1.0), (100.0, 55.0, 2.0)] },
            Series { name: "LoRTA".into(), points: vec![(50.0, 58.0, 0.0)] },
        ];
        curves(&p, "t", "params", "score", &s).unwrap();
        assert_eq!(&std::fs::read(&p).unwrap()[..4], b"\x89PNG");
        curves(&tmp.path().join("empty.png"), "t", "x", "y", &[]).unwrap();
    }
}

type Text_<S> = plotters::element::Text<'static, (f64, f64), S>;

/// `loss.png`-style line plot: one line per named series of (x, y) points (training loss over
/// steps, say); a series with fewer than two points is drawn as a marker.
pub fn line_series(path: &Path, title: &str, x_desc: &str, y_desc: &str, series: &[(String, Vec<(f64, f64)>)]) -> Result<Text> {
    let text = load_font();
    let err = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let pts = series.iter().flat_map(|s| s.1.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    if xmin > xmax {
        (xmin, xmax, ymin, ymax) = (0.0, 1.0, 0.0, 1.0);
    }
    if xmax - xmin < 1e-12 {
        xmax = xmin + 1.0;
    }
    let pad = ((ymax - ymin) * 0.05).max(1e-6);
    let tmp = path.with_extension("png.tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (800, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(20);
        if text {
            builder.caption(title, ("sans-serif", 22)).x_label_area_size(45).y_label_area_size(60);
        } else {
            builder.x_label_area_size(10).y_label_area_size(10);
        }
        let mut chart = builder.build_cartesian_2d(xmin..xmax, (ymin - pad)..(ymax + pad)).map_err(|e| err(&e))?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc(x_desc).y_desc(y_desc).label_style(("sans-serif", 14));
        } else {
            mesh.disable_x_axis().disable_y_axis();
        }
        mesh.draw().map_err(|e| err(&e))?;
        let colors = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK, RGBColor(255, 140, 0), RGBColor(128, 0, 128)];
        for (i, (name, points)) in series.iter().enumerate() {
            let c = colors[i % colors.len()];
            let pts: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
            let drawn = chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2))).map_err(|e| err(&e))?;
            if text {
                drawn.label(name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            }
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(|e| err(&e))?;
        }
        if text && !series.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| err(&e))?;
    Ok(if text { Text::Rendered } else { Text::NoFont })
}
