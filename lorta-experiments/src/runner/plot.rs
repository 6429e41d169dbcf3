//! `plot.png`: average score vs trainable parameters (log x), one labelled point per method.
//! Text needs a TrueType font: the first of a few common system fonts (or `LORTA_PLOT_FONT`) is
//! registered with plotters' ab_glyph backend; without one the plot is drawn with no text.
use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

pub enum Text {
    Rendered,
    NoFont,
}

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

fn load_font() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        let env = std::env::var("LORTA_PLOT_FONT").ok();
        for p in env.iter().map(String::as_str).chain(FONT_CANDIDATES.iter().copied()) {
            if let Ok(bytes) = std::fs::read(p) {
                let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if register_font("sans-serif", FontStyle::Normal, leaked).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

pub fn score_vs_params(path: &Path, title: &str, points: &[(String, f64, f64)]) -> Result<Text> {
    let text = load_font();
    let err = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("png.tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (800, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (xmin, xmax, ymin, ymax) = if points.is_empty() {
            (1.0, 10.0, 0.0, 100.0)
        } else {
            let xs = points.iter().map(|p| p.1.max(1.0));
            let ys = points.iter().map(|p| p.2);
            let (a, b) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
            let (c, d) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
            (a / 2.0, b * 2.0, (c - 5.0).max(-100.0), (d + 5.0).min(100.0))
        };
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
            mesh.x_desc("trainable parameters (log scale)").y_desc("average score").label_style(("sans-serif", 14));
        } else {
            mesh.disable_x_axis().disable_y_axis();
        }
        mesh.draw().map_err(|e| err(&e))?;
        let colors = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
        for (i, (name, x, y)) in points.iter().enumerate() {
            let c = colors[i % colors.len()];
            chart.draw_series(std::iter::once(Circle::new((x.max(1.0), *y), 6, c.filled()))).map_err(|e| err(&e))?;
            if text {
                chart
                    .draw_series(std::iter::once(Text_::new(name.clone(), (x.max(1.0), *y), ("sans-serif", 15).into_font().color(&c))))
                    .map_err(|e| err(&e))?;
            }
        }
        root.present().map_err(|e| err(&e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| err(&e))?;
    Ok(if text { Text::Rendered } else { Text::NoFont })
}

type Text_<S> = plotters::element::Text<'static, (f64, f64), S>;
