//! Writing a grid's reports side by side, atomically: `<name>.md` (with the plot linked when it
//! was drawn), `results.json`, `results.csv` and `plot.png`.
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::plot::{self, Series, Text};
use crate::report::{write_atomic, write_json};

/// What a family hands to [`write`].
pub struct Reports<'a, J: Serialize> {
    /// File name of the markdown report (`table.md`, `sweep.md`).
    pub markdown_file: &'a str,
    pub markdown: String,
    pub json: &'a J,
    pub csv: String,
    /// The plot: title, axis labels and data; `None` writes no PNG.
    pub plot: Option<PlotSpec>,
}

pub struct PlotSpec {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub kind: PlotKind,
}

pub enum PlotKind {
    /// One labelled point per row: (label, trainable parameters, score).
    Points(Vec<(String, f64, f64)>),
    /// One line per method: points (parameters, mean) with ± std error bars.
    Curves(Vec<Series>),
}

/// Writes the reports into `out`; returns the markdown as written (with the plot line).
pub fn write<J: Serialize>(out: &Path, r: &Reports<'_, J>) -> Result<String> {
    let mut md = r.markdown.clone();
    if let Some(p) = &r.plot {
        let path = out.join("plot.png");
        let drawn = match &p.kind {
            PlotKind::Points(points) => plot::score_vs_params(&path, &p.title, &p.x_label, &p.y_label, points),
            PlotKind::Curves(series) => plot::curves(&path, &p.title, &p.x_label, &p.y_label, series),
        };
        match drawn {
            Ok(Text::Rendered) => md.push_str(&format!("\n![{} vs {}](plot.png)\n", p.y_label, p.x_label)),
            Ok(Text::NoFont) => md.push_str(&format!(
                "\n![{} vs {}](plot.png) (no TrueType font found: the plot has no text; x = {} on a log scale, y = {})\n",
                p.y_label, p.x_label, p.x_label, p.y_label
            )),
            Err(e) => md.push_str(&format!("\n(plot not written: {e})\n")),
        }
    }
    write_atomic(&out.join(r.markdown_file), md.as_bytes())?;
    write_json(&out.join("results.json"), r.json)?;
    write_atomic(&out.join("results.csv"), r.csv.as_bytes())?;
    Ok(md)
}
