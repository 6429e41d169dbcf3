//! The rank sweep (the paper's performance-vs-parameters figure): every method of
//! `tables/sweep.toml` at every rank, on one or more GLUE tasks, trained through the runner like a
//! table (cells under `runs/<preset>/<task>/<method>-r<rank>/seed<seed>`, finished ones skipped),
//! reported as the dev score against trainable parameters on a log axis, one curve per method
//! (mean ± std over seeds), plus `sweep.md`, `results.json` and `results.csv`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::config::{MethodSpec, ParamCount, Preset, TableConfig, CONFIG_VERSION};
use super::{run_grid, CellResult, TableRun};
use crate::report::{csv_string, markdown_table, thousands};
use crate::runner::plot::Series;
use crate::runner::report::{PlotKind, PlotSpec, Reports};
use crate::runner::Score;

/// A method of the sweep; its rank comes from the sweep's `ranks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepMethod {
    /// Curve label (`LoRA`); cells are named `<name> r<rank>`.
    pub name: String,
    /// lora, lorta, vera, … (as `train --method`).
    pub method: String,
    /// α; absent = the method's default (α = r, scaling 1).
    pub alpha: Option<f64>,
    pub targets: Vec<String>,
    #[serde(default = "full")]
    pub head: String,
    pub lr: Option<f64>,
    pub head_lr: Option<f64>,
    #[serde(default)]
    pub task_lr: BTreeMap<String, f64>,
}

fn full() -> String {
    "full".into()
}

/// `tables/sweep.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    pub version: u32,
    pub title: String,
    pub params: ParamCount,
    pub ranks: Vec<usize>,
    pub methods: Vec<SweepMethod>,
    pub presets: BTreeMap<String, Preset>,
}

impl SweepConfig {
    pub fn read(file: &Path) -> Result<Self> {
        let c: SweepConfig = crate::runner::config::read_versioned(file, CONFIG_VERSION)?;
        // Validation (methods, tasks, presets) happens on the expanded table.
        c.table(None, None).map_err(|e| anyhow::anyhow!("{}: {e:#}", file.display()))?;
        Ok(c)
    }

    /// The grid as a table config: one row per (method, rank), methods filtered by `methods`
    /// (their `method` key or name, case-insensitive), ranks replaced by `ranks` when given.
    pub fn table(&self, methods: Option<&[String]>, ranks: Option<&[usize]>) -> Result<TableConfig> {
        let ranks = ranks.unwrap_or(&self.ranks);
        if ranks.is_empty() || ranks.contains(&0) {
            bail!("ranks must be a non-empty list of positive integers, got {ranks:?}");
        }
        let chosen: Vec<&SweepMethod> = match methods {
            None => self.methods.iter().collect(),
            Some(want) => {
                let mut out = Vec::new();
                for w in want {
                    let hits: Vec<&SweepMethod> = self
                        .methods
                        .iter()
                        .filter(|m| m.method.eq_ignore_ascii_case(w) || m.name.eq_ignore_ascii_case(w))
                        .collect();
                    if hits.is_empty() {
                        bail!(
                            "--methods: `{w}` is not a method of the sweep config; it has: {}",
                            self.methods.iter().map(|m| m.method.as_str()).collect::<Vec<_>>().join(", ")
                        );
                    }
                    out.extend(hits);
                }
                out
            }
        };
        let mut rows = Vec::new();
        for m in chosen {
            for &r in ranks {
                rows.push(MethodSpec {
                    name: format!("{} r{r}", m.name),
                    method: m.method.clone(),
                    rank: r,
                    alpha: m.alpha,
                    targets: m.targets.clone(),
                    head: m.head.clone(),
                    lr: m.lr,
                    head_lr: m.head_lr,
                    task_lr: m.task_lr.clone(),
                });
            }
        }
        let t = TableConfig {
            version: self.version,
            table: "sweep".into(),
            title: self.title.clone(),
            params: self.params,
            methods: rows,
            presets: self.presets.clone(),
        };
        t.validate()?;
        Ok(t)
    }
}

/// One point of a curve: a method at a rank on a task.
#[derive(Clone, Debug, Serialize)]
pub struct SweepPoint {
    pub method: String,
    pub rank: usize,
    pub task: String,
    pub main_metric: String,
    pub params: usize,
    /// Best dev score ×100 per seed, mean ± std.
    pub score: Score,
}

#[derive(Clone, Debug, Serialize)]
pub struct SweepReport {
    pub title: String,
    pub preset: String,
    pub params: ParamCount,
    pub points: Vec<SweepPoint>,
    pub tasks_without_data: BTreeMap<String, String>,
}

/// Groups cell results into curve points (method × rank × task, seeds averaged).
pub fn points(sweep: &SweepConfig, table: &TableConfig, results: &[CellResult]) -> Vec<SweepPoint> {
    let mut out = Vec::new();
    for spec in &table.methods {
        let base = sweep.methods.iter().find(|m| spec.name == format!("{} r{}", m.name, spec.rank)).map(|m| m.name.clone()).unwrap_or_default();
        let mut tasks: Vec<&str> = results.iter().filter(|c| c.method == spec.name).map(|c| c.task.as_str()).collect();
        tasks.dedup();
        for task in tasks {
            let mine: Vec<&CellResult> = results.iter().filter(|c| c.method == spec.name && c.task == task).collect();
            let first = &mine[0].metrics;
            let params = match table.params {
                ParamCount::ExclClassifier => first.trainable_params_excl_head,
                ParamCount::InclClassifier => first.trainable_params,
            };
            let Some(score) = Score::from_values(mine.iter().map(|c| 100.0 * c.metrics.best.score).collect()) else { continue };
            out.push(SweepPoint { method: base.clone(), rank: spec.rank, task: task.to_string(), main_metric: first.main_metric.clone(), params, score });
        }
    }
    out
}

/// Markdown, CSV and the curves of a sweep.
pub fn report(sweep: &SweepConfig, table: &TableConfig, preset: &str, results: &[CellResult], without: &[(crate::glue::GlueTask, String)]) -> (SweepReport, String, String, Vec<Series>) {
    let pts = points(sweep, table, results);
    let params_head = match table.params {
        ParamCount::ExclClassifier => "Params (excl. classifier)",
        ParamCount::InclClassifier => "Params (incl. classifier)",
    };
    let header: Vec<String> = ["Method", "Rank", params_head, "Task", "Score"].iter().map(|s| s.to_string()).collect();
    let rows: Vec<Vec<String>> = pts
        .iter()
        .map(|p| vec![p.method.clone(), p.rank.to_string(), thousands(p.params), format!("{} ({})", p.task, p.main_metric), p.score.fmt()])
        .collect();
    let mut md = format!(
        "# Rank sweep — {}\n\nPreset `{preset}`. Best dev score ×100 of each run, mean ± sample std over seeds when several.\n\n",
        sweep.title
    );
    md.push_str(&markdown_table(&header, &rows));
    if !without.is_empty() {
        md.push_str("\nNot run, data missing:\n");
        for (t, why) in without {
            md.push_str(&format!("- {}: {why}\n", t.name()));
        }
    }
    let csv_header: Vec<String> = ["method", "rank", "task", "seed", "trainable_params", "trainable_params_excl_head", "main_metric", "best", "best_step", "run_dir"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let csv_rows: Vec<Vec<String>> = results
        .iter()
        .map(|c| {
            let spec = table.methods.iter().find(|m| m.name == c.method);
            let m = &c.metrics;
            vec![
                c.method.clone(),
                spec.map(|s| s.rank.to_string()).unwrap_or_default(),
                c.task.clone(),
                c.seed.to_string(),
                m.trainable_params.to_string(),
                m.trainable_params_excl_head.to_string(),
                m.main_metric.clone(),
                format!("{}", m.best.score),
                m.best.step.to_string(),
                c.dir.display().to_string(),
            ]
        })
        .collect();
    let csv = csv_string(&csv_header, &csv_rows).unwrap_or_default();
    let tasks: Vec<&str> = {
        let mut t: Vec<&str> = pts.iter().map(|p| p.task.as_str()).collect();
        t.sort();
        t.dedup();
        t
    };
    let mut series = Vec::new();
    for m in &sweep.methods {
        for &task in &tasks {
            let points: Vec<(f64, f64, f64)> =
                pts.iter().filter(|p| p.method == m.name && p.task == task).map(|p| (p.params as f64, p.score.mean, p.score.std)).collect();
            if points.is_empty() {
                continue;
            }
            let name = if tasks.len() > 1 { format!("{} ({task})", m.name) } else { m.name.clone() };
            series.push(Series { name, points });
        }
    }
    let rep = SweepReport {
        title: sweep.title.clone(),
        preset: preset.to_string(),
        params: table.params,
        points: pts,
        tasks_without_data: without.iter().map(|(t, w)| (t.name().to_string(), w.clone())).collect(),
    };
    (rep, md, csv, series)
}

/// Runs (or completes) the sweep and writes its reports into `r.out`.
pub fn run_sweep(r: &TableRun, methods: Option<&[String]>, ranks: Option<&[usize]>) -> Result<()> {
    let sweep = SweepConfig::read(&r.config_file)?;
    let table = sweep.table(methods, ranks)?;
    let grid = run_grid(&table, r)?;
    if r.jobs.is_worker() {
        return Ok(()); // the parent writes the reports
    }
    let (rep, md, csv, series) = report(&sweep, &table, &r.preset, &grid.results, &grid.tasks_without_data);
    let task_names: Vec<&str> = grid.tasks.iter().map(|t| t.name()).collect();
    let plot = PlotSpec {
        title: format!("{} ({}, {})", task_names.join(", "), r.preset, "dev score vs trainable parameters"),
        x_label: format!("trainable parameters, {} (log scale)", if table.params == ParamCount::ExclClassifier { "excl. classifier" } else { "incl. classifier" }),
        y_label: "dev score ×100".into(),
        kind: PlotKind::Curves(series),
    };
    let md = crate::runner::report::write(&r.out, &Reports { markdown_file: "sweep.md", markdown: md, json: &rep, csv, plot: Some(plot) })?;
    println!("{md}");
    println!("results in {}", r.out.display());
    Ok(())
}

/// The shipped sweep config.
pub fn default_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tables").join("sweep.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_sweep_expands_to_method_by_rank_rows() {
        let s = SweepConfig::read(&default_config()).unwrap();
        assert_eq!(s.ranks, [1, 2, 4, 8, 16, 32, 64, 128, 256]);
        for p in ["quick", "gpu", "smoke"] {
            s.presets.get(p).unwrap_or_else(|| panic!("preset {p}"));
        }
        let t = s.table(Some(&["lorta".into(), "LoRA".into()]), Some(&[1, 4])).unwrap();
        let names: Vec<&str> = t.methods.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["LoRTA r1", "LoRTA r4", "LoRA r1", "LoRA r4"]);
        assert_eq!(t.methods[1].rank, 4);
        let e = s.table(Some(&["dora".into()]), None).unwrap_err().to_string();
        assert!(e.contains("dora") && e.contains("lorta"), "{e}");
        assert!(s.table(None, Some(&[0])).is_err());
    }
}
