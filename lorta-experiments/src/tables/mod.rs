//! The paper's GLUE tables (`table1`, `table2`): config files, running every cell (method ×
//! task × seed) as its own training run, and the reports (markdown, JSON, CSV, PNG).
pub mod config;
pub mod report;
pub mod sweep;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::backend::BackendKind;
use crate::commands::train::{missing_inputs, run_config};
use crate::glue::{self, GlueTask};
use crate::report::write_json;
use crate::runner::{self, RunnerOptions};
use crate::train::run::{read_metrics, RunMetrics};
use crate::train::{RunOptions, TrainConfig};
use config::{cell_dir, cells, expand_env, TableConfig};

/// Options of a table run.
#[derive(Clone, Debug)]
pub struct TableRun {
    pub config_file: PathBuf,
    pub preset: String,
    pub out: PathBuf,
    pub model: Option<String>,
    pub glue_dir: Option<PathBuf>,
    pub tasks: Option<Vec<GlueTask>>,
    pub seeds: Option<Vec<u64>>,
    pub backend: BackendKind,
    /// Compute dtype and GPU options.
    pub compute: crate::backend::ComputeArgs,
    pub force: bool,
    pub skip_missing: bool,
    pub quiet: bool,
    /// `--jobs` / `--gpus` (or this process as one of the workers).
    pub jobs: runner::jobs::JobsArgs,
}

/// Result of one cell, as the reports use it.
#[derive(Clone, Debug, Serialize)]
pub struct CellResult {
    pub method: String,
    pub task: String,
    pub seed: u64,
    pub dir: PathBuf,
    pub metrics: RunMetrics,
}

pub fn run_table(r: &TableRun) -> Result<()> {
    let table = TableConfig::read(&r.config_file)?;
    let grid = run_grid(&table, r)?;
    if r.jobs.is_worker() {
        return Ok(()); // the parent writes the reports
    }
    let rep = report::build(&table, &r.preset, &grid.tasks, &grid.tasks_without_data, &grid.results);
    report::write(&r.out, &table, &rep)?;
    println!("{}", rep.markdown);
    println!("results in {}", r.out.display());
    Ok(())
}

/// A trained grid: every cell's result, the tasks that had data and those that did not.
pub struct Grid {
    pub results: Vec<CellResult>,
    pub tasks: Vec<GlueTask>,
    pub tasks_without_data: Vec<(GlueTask, String)>,
}

/// Checks the inputs of `table`'s preset, writes `settings.json` (and a copy of the config file),
/// then trains every cell through the runner (finished ones skipped, interrupted ones resumed).
pub fn run_grid(table: &TableConfig, r: &TableRun) -> Result<Grid> {
    r.jobs.validate()?;
    let preset = table.preset(&r.preset)?.clone();
    let mut preset_used = preset.clone();
    if let Some(s) = &r.seeds {
        preset_used.seeds = s.clone();
    }
    let tasks: Vec<GlueTask> = match &r.tasks {
        Some(t) => t.clone(),
        None => preset.tasks.iter().map(|t| t.parse()).collect::<std::result::Result<_, _>>()?,
    };
    // Inputs: model and GLUE folder, checked before any training.
    let model_name = match &r.model {
        Some(m) => m.clone(),
        None => expand_env(&preset.model, &format!("presets.{}.model (or --model)", r.preset))
            .map_err(|e| anyhow::anyhow!("{e}; or pass --model DIR"))?,
    };
    let glue_dir: Option<PathBuf> = match (&r.glue_dir, &preset.glue_dir) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(g)) => match expand_env(g, &format!("presets.{}.glue_dir", r.preset)) {
            Ok(s) => Some(PathBuf::from(s)),
            Err(_) => None, // fall back to the fetch cache; missing files are reported below
        },
        (None, None) => None,
    };
    let mut missing = missing_inputs(&model_name, glue_dir.as_deref(), &[]);
    let mut available = Vec::new();
    let mut unavailable: Vec<(GlueTask, String)> = Vec::new();
    for &t in &tasks {
        match glue::resolve_glue_dir(glue_dir.as_deref(), t) {
            Ok(_) => available.push(t),
            Err(m) => {
                let files = m.missing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
                unavailable.push((t, format!("missing {files}")));
                if !r.skip_missing {
                    missing.push(m.to_string());
                }
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "cannot start {} --preset {}, missing inputs:\n- {}\n(pass --skip-missing to leave tasks without data out of the table)",
            table.table,
            r.preset,
            missing.join("\n- ")
        );
    }
    if available.is_empty() {
        bail!("no task of the preset has data; nothing to train");
    }
    let model = lorta_models::hub::resolve_model_dir(&model_name)?;
    let gdir = glue::resolve_glue_dir(glue_dir.as_deref(), available[0])?;
    let mut all = cells(table, &preset_used, &available, &model, &gdir)?;
    for c in &mut all {
        c.config.dtype = r.compute.dtype()?;
        c.config.pad_to_multiple = r.compute.pad_to_multiple(r.backend);
    }
    std::fs::create_dir_all(&r.out).with_context(|| format!("creating {}", r.out.display()))?;

    // Settings actually used, before training (so an interrupted table still documents itself).
    let settings = serde_json::json!({
        "table": table.table,
        "preset": r.preset,
        "config_file": r.config_file,
        "preset_settings": preset_used,
        "methods": table.methods,
        "model": model,
        "glue_dir": gdir,
        "backend": r.backend.name(),
        "tasks": available.iter().map(|t| t.name()).collect::<Vec<_>>(),
        "tasks_without_data": unavailable.iter().map(|(t, why)| serde_json::json!({"task": t.name(), "why": why})).collect::<Vec<_>>(),
        "cells": all.iter().map(|c| serde_json::json!({"dir": cell_dir(&r.out, &r.preset, table, c), "config": c.config})).collect::<Vec<_>>(),
    });
    if !r.jobs.is_worker() {
        write_json(&r.out.join("settings.json"), &settings)?;
        if let Ok(text) = std::fs::read_to_string(&r.config_file) {
            crate::report::write_atomic(&r.out.join(format!("{}.toml", table.table)), text.as_bytes())?;
        }
    }

    let grid: Vec<runner::Cell<TrainConfig>> = all
        .iter()
        .map(|c| runner::Cell {
            dir: cell_dir(&r.out, &r.preset, table, c),
            name: format!("{} {} seed {}", c.task.name(), c.config.label, c.seed),
            config: c.config.clone(),
        })
        .collect();
    let metrics = train_glue_cells(&grid, r.backend, &r.compute, &RunnerOptions { force: r.force, quiet: r.quiet, jobs: r.jobs.clone() })?;
    let results: Vec<CellResult> = all
        .iter()
        .zip(grid)
        .zip(metrics)
        .map(|((c, g), metrics)| CellResult { method: c.config.label.clone(), task: c.task.name().to_string(), seed: c.seed, dir: g.dir, metrics })
        .collect();
    Ok(Grid { results, tasks: available, tasks_without_data: unavailable })
}

/// Trains GLUE cells through the generic runner (finished cells skipped, interrupted ones resumed
/// from their checkpoint); used by the tables and the rank sweep.
pub fn train_glue_cells(
    cells: &[runner::Cell<TrainConfig>],
    backend: BackendKind,
    compute: &crate::backend::ComputeArgs,
    opts: &RunnerOptions,
) -> Result<Vec<RunMetrics>> {
    runner::run_cells(cells, opts, |cell, resume| {
        // A run that wrote metrics.json but stopped before the runner recorded it.
        if resume {
            if let Ok(m) = read_metrics(&cell.dir) {
                return Ok(m);
            }
        }
        let run_opts = RunOptions { resume, quiet: opts.quiet, ..Default::default() };
        let m = run_config(&cell.config, backend, compute, &cell.dir, &run_opts)?.context("run stopped early")?;
        if !opts.quiet {
            eprintln!("{} {}: {} {:.4}", cell.name, cell.dir.display(), m.main_metric, m.best.score);
        }
        Ok(m)
    })
}
