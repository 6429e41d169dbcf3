//! Generic runner for experiment grids (tables, sweeps): a *cell* is one training run with its
//! own folder and settings. The runner decides per cell whether to skip it (finished with the
//! same settings), resume it (started, not finished) or train it, calls the family's training
//! function, keeps every result and prints progress with an ETA. Families (GLUE tables, the rank
//! sweep, LLM tasks, folding) build their cells and reports; this module knows nothing about them.
//!
//! Files the runner owns in a cell folder:
//! - `cell.json`: the cell's settings (any serde type), written before training starts;
//! - `cell_result.json`: what the training function returned, written atomically when it ends.
//!
//! ```ignore
//! let cells = vec![Cell { dir, name: "rte LoRA r8 seed 42".into(), config }];
//! let results = runner::run_cells(&cells, &RunnerOptions::default(), |cell, resume| train(cell, resume))?;
//! ```
//! The rest of the module: [`jobs`] (`--jobs N`: cells trained by worker processes), [`config`] (versioned TOML files with presets, `${VAR}` expansion,
//! folder slugs), [`score`] (mean ± std over seeds), [`report`] (md/json/csv/png written
//! atomically side by side), [`plot`] (score vs trainable parameters, points or curves).
pub mod config;
pub mod jobs;
pub mod plot;
pub mod report;
pub mod score;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::report::write_json;

pub use score::Score;

/// Settings file of a cell (written by the runner).
pub const CELL_FILE: &str = "cell.json";
/// Result file of a finished cell (written by the runner).
pub const CELL_RESULT_FILE: &str = "cell_result.json";

/// One training run of a grid.
#[derive(Clone, Debug)]
pub struct Cell<C> {
    /// The run's folder (created by the runner).
    pub dir: PathBuf,
    /// Shown in progress lines, e.g. `rte LoRTA r4 seed 42`.
    pub name: String,
    /// Everything that determines the run; a finished cell is reused only if this is unchanged.
    pub config: C,
}

/// What the runner does with a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellAction {
    /// Finished earlier with the same settings: its stored result is reused.
    Skip,
    /// Started earlier with the same settings but not finished: the training function is asked
    /// to resume (it continues from its checkpoint if it wrote one).
    Resume,
    /// Nothing there (or `--force`): train from scratch.
    Train,
}

#[derive(Clone, Debug, Default)]
pub struct RunnerOptions {
    /// Delete and retrain every cell, finished or not.
    pub force: bool,
    /// No progress lines.
    pub quiet: bool,
    /// `--jobs N` workers, or this process as one of them (see [`jobs`]).
    pub jobs: jobs::JobsArgs,
}

/// Decides what to do with the cell folder `dir` for settings `config`. A folder holding a run
/// with other settings is an error naming the folder (pass `force` to retrain it).
pub fn cell_action<C: Serialize + DeserializeOwned + PartialEq>(dir: &Path, config: &C, force: bool) -> Result<CellAction> {
    if force || !dir.exists() {
        return Ok(CellAction::Train);
    }
    let cfg_path = dir.join(CELL_FILE);
    let has_files = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if !cfg_path.is_file() {
        if has_files {
            bail!(
                "{} holds files but no {CELL_FILE} (not a runner cell, or from an older version); pass --force to retrain it (or use another --out)",
                dir.display()
            );
        }
        return Ok(CellAction::Train);
    }
    let text = std::fs::read_to_string(&cfg_path).with_context(|| format!("reading {}", cfg_path.display()))?;
    let stored: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", cfg_path.display()))?;
    // Compare as JSON values so a field added with a default later still compares equal.
    let now = serde_json::to_value(config)?;
    let same = stored == now || serde_json::from_value::<C>(stored).map(|s| &s == config).unwrap_or(false);
    if !same {
        bail!(
            "{} holds a run with different settings than the ones asked for now; pass --force to retrain it (or use another --out)",
            dir.display()
        );
    }
    Ok(if dir.join(CELL_RESULT_FILE).is_file() { CellAction::Skip } else { CellAction::Resume })
}

/// Reads a finished cell's result.
pub fn read_cell_result<R: DeserializeOwned>(dir: &Path) -> Result<R> {
    let p = dir.join(CELL_RESULT_FILE);
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: unexpected content", p.display()))
}

/// Runs every cell in order: skips finished ones, resumes interrupted ones, trains the rest with
/// `train(cell, resume)`; returns the results in cell order. Stops at the first error (finished
/// cells keep their results, so a rerun continues where this one stopped). With `--jobs N` the
/// cells to train go to worker processes first and every result is then read back; a worker
/// (`--worker-cell I`) trains its one cell and gets an empty result list.
pub fn run_cells<C, R, F>(cells: &[Cell<C>], opts: &RunnerOptions, mut train: F) -> Result<Vec<R>>
where
    C: Serialize + DeserializeOwned + PartialEq,
    R: Serialize + DeserializeOwned,
    F: FnMut(&Cell<C>, bool) -> Result<R>,
{
    let n = cells.len();
    let actions_for = |force: bool| cells.iter().map(|c| cell_action(&c.dir, &c.config, force)).collect::<Result<Vec<_>>>();
    let mut actions = actions_for(opts.force)?;
    let mut force = opts.force;
    let mut quiet_skips = opts.quiet;
    let worker = opts.jobs.worker_cell;
    if let Some(w) = worker {
        if w >= n {
            bail!("--worker-cell {w}: the grid has {n} cells");
        }
    } else if opts.jobs.jobs > 1 {
        let todo: Vec<jobs::Job> = cells
            .iter()
            .zip(&actions)
            .enumerate()
            .filter(|(_, (_, a))| **a != CellAction::Skip)
            .map(|(index, (c, _))| jobs::Job { index, name: &c.name, dir: &c.dir })
            .collect();
        if !todo.is_empty() {
            jobs::run_workers(&todo, &opts.jobs, opts.quiet)?;
        }
        // Every cell is finished now; the loop below reads their results.
        actions = actions_for(false)?;
        force = false;
        quiet_skips |= !todo.is_empty(); // the workers' lines said it
        if let Some(c) = cells.iter().zip(&actions).find(|(_, a)| **a != CellAction::Skip).map(|(c, _)| c) {
            bail!("{}: its --jobs worker ended without a result (see {})", c.name, jobs::worker_log(&c.dir).display());
        }
    }
    let mut to_train = actions.iter().filter(|a| **a != CellAction::Skip).count();
    let mut trained_secs = Vec::new();
    let mut results = Vec::with_capacity(n);
    for (i, (c, action)) in cells.iter().zip(&actions).enumerate() {
        if worker.is_some_and(|w| w != i) {
            continue;
        }
        let what = format!("[{}/{n}] {}", i + 1, c.name);
        if *action == CellAction::Skip {
            if worker.is_some() {
                eprintln!("{what}: finished earlier, nothing to do ({})", c.dir.display());
                continue;
            }
            if !quiet_skips {
                eprintln!("{what}: finished earlier, skipped ({})", c.dir.display());
            }
            results.push(read_cell_result(&c.dir)?);
            continue;
        }
        if force && c.dir.exists() {
            std::fs::remove_dir_all(&c.dir).with_context(|| format!("removing {} (--force)", c.dir.display()))?;
        }
        std::fs::create_dir_all(&c.dir).with_context(|| format!("creating {}", c.dir.display()))?;
        write_json(&c.dir.join(CELL_FILE), &c.config)?;
        if !opts.quiet {
            let eta = if trained_secs.is_empty() {
                String::new()
            } else {
                let mean = trained_secs.iter().sum::<f64>() / trained_secs.len() as f64;
                format!(" (grid ETA ~{})", human_secs(mean * to_train as f64))
            };
            eprintln!("{what}: {}{eta}", if *action == CellAction::Resume { "resuming" } else { "training" });
        }
        let started = Instant::now();
        let r = train(c, *action == CellAction::Resume).with_context(|| format!("cell {} ({})", c.name, c.dir.display()))?;
        write_json(&c.dir.join(CELL_RESULT_FILE), &r)?;
        let secs = started.elapsed().as_secs_f64();
        trained_secs.push(secs);
        to_train -= 1;
        if !opts.quiet {
            eprintln!("{what}: done in {}", human_secs(secs));
        }
        if worker.is_none() {
            results.push(r);
        }
    }
    Ok(results)
}

fn human_secs(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0}s")
    } else if s < 5400.0 {
        format!("{:.0}min", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_resume_train_and_force() {
        let tmp = tempfile::tempdir().unwrap();
        let cells: Vec<Cell<u32>> =
            (0..3).map(|i| Cell { dir: tmp.path().join(format!("c{i}")), name: format!("c{i}"), config: i }).collect();
        let opts = RunnerOptions { quiet: true, ..Default::default() };
        // First pass: cell 1 fails; cell 0 is finished, 1 started (cell.json, no result), 2 untouched.
        let e = run_cells(&cells, &opts, |c, _| if c.config == 1 { bail!("boom") } else { Ok(c.config * 10) }).unwrap_err();
        assert!(format!("{e:#}").contains("boom") && format!("{e:#}").contains("c1"), "{e:#}");
        assert_eq!(cell_action(&cells[0].dir, &0u32, false).unwrap(), CellAction::Skip);
        assert_eq!(cell_action(&cells[1].dir, &1u32, false).unwrap(), CellAction::Resume);
        assert_eq!(cell_action(&cells[2].dir, &2u32, false).unwrap(), CellAction::Train);
        // Second pass: 0 skipped (the closure is not called for it), 1 resumed, 2 trained.
        let mut seen = Vec::new();
        let r: Vec<u32> = run_cells(&cells, &opts, |c, resume| {
            seen.push((c.config, resume));
            Ok(c.config * 10 + 1)
        })
        .unwrap();
        assert_eq!(r, [0, 11, 21]);
        assert_eq!(seen, [(1, true), (2, false)]);
        // Other settings in a finished folder: an error naming it; --force retrains everything.
        let e = cell_action(&cells[0].dir, &7u32, false).unwrap_err().to_string();
        assert!(e.contains("c0") && e.contains("--force"), "{e}");
        let r: Vec<u32> = run_cells(&cells, &RunnerOptions { force: true, quiet: true, ..Default::default() }, |c, resume| {
            assert!(!resume);
            Ok(c.config + 100)
        })
        .unwrap();
        assert_eq!(r, [100, 101, 102]);
        // A --jobs worker trains its one cell (again with --force) and returns no results.
        let mut seen = Vec::new();
        let worker = |i| RunnerOptions { force: true, quiet: true, jobs: jobs::JobsArgs { worker_cell: Some(i), ..Default::default() } };
        let r: Vec<u32> = run_cells(&cells, &worker(2), |c, _| {
            seen.push(c.config);
            Ok(c.config + 200)
        })
        .unwrap();
        assert!(r.is_empty());
        assert_eq!(seen, [2]);
        assert_eq!(read_cell_result::<u32>(&cells[2].dir).unwrap(), 202);
        assert_eq!(read_cell_result::<u32>(&cells[1].dir).unwrap(), 101);
        assert!(run_cells(&cells, &worker(3), |c, _| Ok(c.config)).unwrap_err().to_string().contains("3 cells"));
        // A foreign folder is not silently overwritten.
        let foreign = tmp.path().join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("x"), "y").unwrap();
        assert!(cell_action(&foreign, &0u32, false).unwrap_err().to_string().contains(CELL_FILE));
    }
}
