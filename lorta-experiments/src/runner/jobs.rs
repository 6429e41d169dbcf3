//! `--jobs N`: a grid's cells trained by up to N worker processes at once. A GPU runs several
//! small trainings side by side faster than one after another (a MiniLM GLUE cell leaves an H200
//! mostly idle), and `--gpus` spreads the workers over several devices. Each worker is this
//! program run again with the same arguments plus `--worker-cell I`: it builds the same grid,
//! trains cell I through the usual skip / resume logic and exits; its output goes to a log beside
//! the cell's folder. The parent then reads every result through the runner's skip path and
//! writes the reports, so a grid trained with `--jobs` is the same grid as one trained without
//! (and either can resume the other).
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Options of a grid command (`table1`, `table2`, `sweep`) for parallel training.
#[derive(clap::Args, Debug, Clone)]
pub struct JobsArgs {
    /// Train up to N cells at once, each in its own process (on one GPU they share it; with
    /// --gpus they are spread over several). On ndarray (CPU) keep 1: one run already uses every core.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// With --jobs: CUDA device ordinals to spread the workers over (comma list, e.g. 0,1,2,3;
    /// each worker sees one through CUDA_VISIBLE_DEVICES). Default: every worker on the default device.
    #[arg(long, value_delimiter = ',')]
    pub gpus: Option<Vec<String>>,
    /// Set by --jobs for its workers: train only this cell (index in the grid) and write no reports.
    #[arg(long, hide = true)]
    pub worker_cell: Option<usize>,
}

impl Default for JobsArgs {
    fn default() -> Self {
        JobsArgs { jobs: 1, gpus: None, worker_cell: None }
    }
}

impl JobsArgs {
    /// Whether this process is a worker (trains one cell, writes no reports).
    pub fn is_worker(&self) -> bool {
        self.worker_cell.is_some()
    }

    /// Checks the flags before anything is trained.
    pub fn validate(&self) -> Result<()> {
        if self.jobs == 0 {
            bail!("--jobs 0: expected at least 1");
        }
        if let Some(g) = &self.gpus {
            if g.is_empty() || g.iter().any(|d| d.trim().is_empty()) {
                bail!("--gpus {:?}: expected a comma list of device ordinals, e.g. 0,1", g.join(","));
            }
        }
        Ok(())
    }
}

/// The program's arguments for a worker: ours without `--jobs` / `--gpus` (both spellings), plus
/// `--worker-cell cell`.
pub fn worker_args(args: &[OsString], cell: usize) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut skip_value = false;
    for a in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let s = a.to_string_lossy();
        if s == "--jobs" || s == "--gpus" || s == "--worker-cell" {
            skip_value = true;
            continue;
        }
        if s.starts_with("--jobs=") || s.starts_with("--gpus=") || s.starts_with("--worker-cell=") {
            continue;
        }
        out.push(a.clone());
    }
    out.push("--worker-cell".into());
    out.push(cell.to_string().into());
    out
}

/// Where a worker's output goes: `<cell folder>.worker.log` beside the folder (a `--force` worker
/// removes the folder itself).
pub fn worker_log(cell_dir: &Path) -> PathBuf {
    let name = cell_dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "cell".into());
    cell_dir.with_file_name(format!("{name}.worker.log"))
}

/// One cell to train: its index in the grid, its name, its folder.
pub struct Job<'a> {
    pub index: usize,
    pub name: &'a str,
    pub dir: &'a Path,
}

/// Trains `jobs` with up to `opts.jobs` workers at once; returns when all have ended. A failed
/// worker stops new ones from starting; the error names every failed cell and its log.
pub fn run_workers(jobs: &[Job], opts: &JobsArgs, quiet: bool) -> Result<()> {
    let exe = std::env::current_exe().context("finding this program to start --jobs workers")?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let slots = opts.jobs.max(1).min(jobs.len().max(1));
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { crate::lm::progress_bar(jobs.len() as u64, "cells") };
    // indicatif drops println on a hidden bar (stderr not a terminal): print plainly then.
    let say = |line: String| {
        if quiet {
        } else if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
    };
    let mut running: Vec<Option<(usize, Child, Instant)>> = (0..slots).map(|_| None).collect();
    let mut next = 0;
    let mut failed: Vec<String> = Vec::new();
    let mut done = 0;
    loop {
        for slot in 0..slots {
            if running[slot].is_none() && next < jobs.len() && failed.is_empty() {
                let j = &jobs[next];
                let log = worker_log(j.dir);
                if let Some(parent) = log.parent() {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
                }
                let file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
                let mut cmd = Command::new(&exe);
                cmd.args(worker_args(&args, j.index)).stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file);
                if let Some(g) = &opts.gpus {
                    cmd.env("CUDA_VISIBLE_DEVICES", g[slot % g.len()].trim());
                }
                let child = cmd.spawn().with_context(|| format!("starting the worker for {}", j.name))?;
                say(format!("[{}/{}] {}: training (worker {slot}, log {})", next + 1, jobs.len(), j.name, log.display()));
                running[slot] = Some((next, child, Instant::now()));
                next += 1;
            }
        }
        for slot in running.iter_mut() {
            let Some((k, child, started)) = slot else {
                continue;
            };
            match child.try_wait().context("waiting for a --jobs worker")? {
                None => {}
                Some(status) => {
                    let j = &jobs[*k];
                    let secs = started.elapsed().as_secs_f64();
                    if status.success() {
                        say(format!("[{}/{}] {}: done in {secs:.0}s", *k + 1, jobs.len(), j.name));
                    } else {
                        let log = worker_log(j.dir);
                        let tail = std::fs::read_to_string(&log).unwrap_or_default();
                        let tail: Vec<&str> = tail.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
                        failed.push(format!("{} ({status}; log {}):\n    {}", j.name, log.display(), tail.join("\n    ")));
                        say(format!("[{}/{}] {}: failed ({status}), see {}", *k + 1, jobs.len(), j.name, log.display()));
                    }
                    done += 1;
                    bar.set_position(done as u64);
                    *slot = None;
                }
            }
        }
        if running.iter().all(Option::is_none) && (next >= jobs.len() || !failed.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
    if !failed.is_empty() {
        bail!(
            "{} of {} cells failed in --jobs workers (finished cells keep their results; rerun to continue):\n- {}",
            failed.len(),
            jobs.len(),
            failed.join("\n- ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_args_drop_the_parallel_flags_and_name_the_cell() {
        let a: Vec<OsString> = ["table2", "--jobs", "4", "--gpus=0,1", "--preset", "gpu", "--jobs=2", "--gpus", "2", "--quiet"]
            .iter()
            .map(OsString::from)
            .collect();
        let w: Vec<String> = worker_args(&a, 7).iter().map(|s| s.to_string_lossy().to_string()).collect();
        assert_eq!(w, ["table2", "--preset", "gpu", "--quiet", "--worker-cell", "7"]);
        // A worker's own arguments stay a worker's (no nesting).
        let again: Vec<String> = worker_args(&worker_args(&a, 7), 3).iter().map(|s| s.to_string_lossy().to_string()).collect();
        assert_eq!(again, ["table2", "--preset", "gpu", "--quiet", "--worker-cell", "3"]);
    }

    #[test]
    fn logs_sit_beside_the_cell_folder_and_flags_are_checked() {
        assert_eq!(worker_log(Path::new("out/runs/rte/lora-r8/seed42")), Path::new("out/runs/rte/lora-r8/seed42.worker.log"));
        assert!(JobsArgs { jobs: 0, ..Default::default() }.validate().is_err());
        assert!(JobsArgs { jobs: 2, gpus: Some(vec!["0".into(), "".into()]), worker_cell: None }.validate().is_err());
        assert!(JobsArgs { jobs: 2, gpus: Some(vec!["0".into(), "1".into()]), worker_cell: None }.validate().is_ok());
    }
}
