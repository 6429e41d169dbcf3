//! Table reports: `table.md` (rows = methods with parameter counts, columns = tasks + average,
//! mean ± std over seeds), `results.json`, `results.csv` and `plot.png`.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::config::{ParamCount, TableConfig};
use super::CellResult;
use crate::glue::GlueTask;
use crate::report::{csv_string, markdown_table, thousands};
use crate::runner::report::{PlotKind, PlotSpec, Reports};

pub use crate::runner::Score;

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub method: String,
    pub params: Option<usize>,
    /// Main metric ×100 per task.
    pub scores: BTreeMap<String, Score>,
    /// Mean over the tasks that have a score.
    pub average: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub table: String,
    pub title: String,
    pub preset: String,
    pub params: ParamCount,
    pub tasks: Vec<String>,
    pub tasks_without_data: BTreeMap<String, String>,
    pub rows: Vec<Row>,
    pub majority_baseline: BTreeMap<String, f64>,
    #[serde(skip)]
    pub markdown: String,
    #[serde(skip)]
    pub csv: String,
}

fn metric_name(t: GlueTask) -> &'static str {
    match t {
        GlueTask::Cola => "MCC",
        GlueTask::Stsb => "Pearson",
        _ => "Acc",
    }
}

pub fn build(
    table: &TableConfig,
    preset: &str,
    tasks: &[GlueTask],
    unavailable: &[(GlueTask, String)],
    results: &[CellResult],
) -> Report {
    // Column order: the preset's order, tasks without data included (shown as n/a).
    let mut columns: Vec<GlueTask> = tasks.to_vec();
    for (t, _) in unavailable {
        columns.push(*t);
    }
    columns.sort_by_key(|t| GlueTask::ALL.iter().position(|x| x == t));
    let mut rows = Vec::new();
    let mut majority = BTreeMap::new();
    for m in &table.methods {
        let mine: Vec<&CellResult> = results.iter().filter(|c| c.method == m.name).collect();
        let params = mine.first().map(|c| match table.params {
            ParamCount::ExclClassifier => c.metrics.trainable_params_excl_head,
            ParamCount::InclClassifier => c.metrics.trainable_params,
        });
        let mut scores = BTreeMap::new();
        for &t in tasks {
            let v: Vec<f64> = mine.iter().filter(|c| c.task == t.name()).map(|c| 100.0 * c.metrics.best.score).collect();
            if let Some(s) = Score::from_values(v) {
                scores.insert(t.name().to_string(), s);
            }
            if let Some(b) = mine.iter().find(|c| c.task == t.name()).and_then(|c| c.metrics.majority_baseline) {
                majority.insert(t.name().to_string(), 100.0 * b);
            }
        }
        let average = (!scores.is_empty()).then(|| scores.values().map(|s| s.mean).sum::<f64>() / scores.len() as f64);
        rows.push(Row { method: m.name.clone(), params, scores, average });
    }
    let without: BTreeMap<String, String> = unavailable.iter().map(|(t, w)| (t.name().to_string(), w.clone())).collect();

    let params_head = match table.params {
        ParamCount::ExclClassifier => "Params (excl. classifier)",
        ParamCount::InclClassifier => "Params (incl. classifier)",
    };
    let mut header = vec!["Method".to_string(), params_head.to_string()];
    for t in &columns {
        header.push(format!("{} ({})", t.folder(), metric_name(*t)));
    }
    header.push("Avg.".to_string());
    let mut md_rows = Vec::new();
    for r in &rows {
        let mut line = vec![r.method.clone(), r.params.map(thousands).unwrap_or_else(|| "–".into())];
        for t in &columns {
            line.push(match r.scores.get(t.name()) {
                Some(s) => s.fmt(),
                None if without.contains_key(t.name()) => "n/a¹".into(),
                None => "–".into(),
            });
        }
        line.push(r.average.map(|a| format!("{a:.1}")).unwrap_or_else(|| "–".into()));
        md_rows.push(line);
    }
    let mut md = format!("# {} — {}\n\nPreset `{preset}`. Dev-set scores ×100 (best evaluation of each run; CoLA Matthews corr., STS-B Pearson, others accuracy), mean ± sample std over seeds when several. Avg. over the tasks with results.\n\n", table.table, table.title);
    md.push_str(&markdown_table(&header, &md_rows));
    if !majority.is_empty() {
        let parts: Vec<String> = columns
            .iter()
            .filter_map(|t| majority.get(t.name()).map(|b| format!("{} {b:.1}", t.folder())))
            .collect();
        md.push_str(&format!("\nMajority-class baseline (dev accuracy of the most frequent training label): {}.\n", parts.join(", ")));
    }
    if !without.is_empty() {
        md.push_str("\n¹ not run, data missing:\n");
        for (t, why) in &without {
            md.push_str(&format!("- {t}: {why}\n"));
        }
    }

    let mut csv_rows = Vec::new();
    for c in results {
        let m = &c.metrics;
        csv_rows.push(vec![
            c.method.clone(),
            c.task.clone(),
            c.seed.to_string(),
            m.trainable_params.to_string(),
            m.trainable_params_excl_head.to_string(),
            m.main_metric.clone(),
            format!("{}", m.best.score),
            m.best.step.to_string(),
            format!("{}", m.last.score),
            m.best.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";"),
            m.majority_baseline.map(|b| b.to_string()).unwrap_or_default(),
            c.dir.display().to_string(),
        ]);
    }
    let csv_header: Vec<String> = [
        "method", "task", "seed", "trainable_params", "trainable_params_excl_head", "main_metric", "best", "best_step",
        "last", "best_metrics", "majority_baseline", "run_dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let csv = csv_string(&csv_header, &csv_rows).unwrap_or_default();
    Report {
        table: table.table.clone(),
        title: table.title.clone(),
        preset: preset.to_string(),
        params: table.params,
        tasks: columns.iter().map(|t| t.name().to_string()).collect(),
        tasks_without_data: without,
        rows,
        majority_baseline: majority,
        markdown: md,
        csv,
    }
}

pub fn write(out: &Path, _table: &TableConfig, rep: &Report) -> Result<()> {
    let points: Vec<(String, f64, f64)> = rep
        .rows
        .iter()
        .filter_map(|r| Some((r.method.clone(), r.params? as f64, r.average?)))
        .collect();
    let plot = PlotSpec {
        title: format!("{} ({})", rep.table, rep.preset),
        x_label: "trainable parameters (log scale)".into(),
        y_label: "average score".into(),
        kind: PlotKind::Points(points),
    };
    crate::runner::report::write(
        out,
        &Reports { markdown_file: "table.md", markdown: rep.markdown.clone(), json: rep, csv: rep.csv.clone(), plot: Some(plot) },
    )?;
    Ok(())
}
