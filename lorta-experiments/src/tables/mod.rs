//! The paper's GLUE tables (`table1`, `table2`): config files, running every cell (method ×
//! task × seed) as its own training run, and the reports (markdown, JSON, CSV, PNG).
pub mod config;
pub mod plot;
pub mod report;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::backend::BackendKind;
use crate::commands::train::{missing_inputs, run_config};
use crate::glue::{self, GlueTask};
use crate::report::write_json;
use crate::train::run::{read_metrics, RunMetrics, CHECKPOINT_FILE_NAME, CONFIG_FILE};
use crate::train::{RunOptions, TrainConfig};
use config::{cell_dir, cells, expand_env, Cell, TableConfig};

/// What to do with a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellAction {
    /// `metrics.json` exists with the same settings: reuse it.
    Skip,
    /// A checkpoint without metrics (interrupted): continue it.
    Resume,
    /// Nothing there (or `--force`): train from scratch.
    Train,
}

/// Decides whether a cell's folder holds a finished run of exactly `config`.
/// A finished run with different settings is an error (pass `--force` to retrain).
pub fn cell_action(dir: &Path, config: &TrainConfig, force: bool) -> Result<CellAction> {
    if force {
        return Ok(CellAction::Train);
    }
    let cfg_path = dir.join(CONFIG_FILE);
    let stored: Option<TrainConfig> = std::fs::read_to_string(&cfg_path).ok().and_then(|t| serde_json::from_str(&t).ok());
    let finished = read_metrics(dir).is_ok();
    let has_ckpt = dir.join(CHECKPOINT_FILE_NAME).is_file();
    match stored {
        Some(s) if &s != config && (finished || has_ckpt) => bail!(
            "{} holds a run with different settings than the table config now asks for; pass --force to retrain it (or use another --out)",
            dir.display()
        ),
        _ => {}
    }
    Ok(if finished {
        CellAction::Skip
    } else if has_ckpt {
        CellAction::Resume
    } else {
        CellAction::Train
    })
}

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
    let mut all = cells(&table, &preset_used, &available, &model, &gdir)?;
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
        "cells": all.iter().map(|c| serde_json::json!({"dir": cell_dir(&r.out, &r.preset, &table, c), "config": c.config})).collect::<Vec<_>>(),
    });
    write_json(&r.out.join("settings.json"), &settings)?;
    if let Ok(text) = std::fs::read_to_string(&r.config_file) {
        crate::report::write_atomic(&r.out.join(format!("{}.toml", table.table)), text.as_bytes())?;
    }

    let mut results = Vec::new();
    let n = all.len();
    for (i, c) in all.iter().enumerate() {
        let dir = cell_dir(&r.out, &r.preset, &table, c);
        let action = cell_action(&dir, &c.config, r.force)?;
        if r.force && dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {} (--force)", dir.display()))?;
        }
        let what = format!("[{}/{n}] {} {} seed {}", i + 1, c.task.name(), c.config.label, c.seed);
        let metrics = match action {
            CellAction::Skip => {
                if !r.quiet {
                    eprintln!("{what}: finished earlier, skipped ({})", dir.display());
                }
                read_metrics(&dir)?
            }
            CellAction::Train | CellAction::Resume => {
                if !r.quiet {
                    eprintln!("{what}: {}", if action == CellAction::Resume { "resuming" } else { "training" });
                }
                let opts = RunOptions { resume: action == CellAction::Resume, quiet: r.quiet, ..Default::default() };
                let started = std::time::Instant::now();
                let m = run_config(&c.config, r.backend, &r.compute, &dir, &opts)?.context("run stopped early")?;
                if !r.quiet {
                    eprintln!("{what}: {} {:.4} in {:.1}s", m.main_metric, m.best.score, started.elapsed().as_secs_f64());
                }
                m
            }
        };
        results.push(CellResult { method: c.config.label.clone(), task: c.task.name().to_string(), seed: c.seed, dir, metrics });
    }
    let rep = report::build(&table, &r.preset, &available, &unavailable, &results);
    report::write(&r.out, &table, &rep)?;
    println!("{}", rep.markdown);
    println!("results in {}", r.out.display());
    Ok(())
}

pub fn _cell_type_check(_: &Cell) {}
