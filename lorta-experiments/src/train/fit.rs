//! The task-agnostic training loop: AdamW with adapter / head parameter groups, linear warmup and
//! decay, global-norm clipping, evaluation every epoch (or every N steps), checkpoint + exact
//! resume, a JSON-lines log and a progress bar with ETA. A [`Task`] supplies batches, losses and
//! metrics.
//!
//! The device is never waited for inside a step: losses stay on the device and are read back
//! every [`RunOptions::loss_every`] steps (and before evaluations and checkpoints), gradient
//! clipping scales by a device-side coefficient. Every step's loss is still read individually and
//! summed on the host in f64, so the logged means do not depend on when they were read.
//!
//! Determinism: the batch plan of epoch `e` depends only on (seed, e); before each step the
//! backend RNG (dropout) is seeded from (seed, step); parameters, optimizer moments and the
//! position in the epoch are checkpointed exactly (f32), so a resumed run repeats the
//! uninterrupted one bit for bit on the same backend.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, CHECKPOINT_FILE};
use super::optim::{load_trainable, trainable_tensors, AdamW, AdamWConfig, GroupLr};
use super::schedule::{LinearSchedule, ScheduleKind};
use super::task::{Metrics, Task};
use crate::report::{write_atomic, write_json};

pub const METRICS_FILE: &str = "metrics.json";
pub const LOG_FILE: &str = "log.jsonl";
pub const CONFIG_FILE: &str = "train_config.json";
pub const RUN_FILE: &str = "run.json";

/// Losses are read back from the device every this many steps unless told otherwise.
pub const DEFAULT_LOSS_EVERY: usize = 16;

/// The optimisation settings of a run (they determine the result).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// Display name of the method (e.g. `LoRTA r4`).
    pub label: String,
    pub epochs: usize,
    /// Stop after this many optimizer steps (overrides `epochs` for the schedule).
    pub max_steps: Option<usize>,
    pub lr: f64,
    pub head_lr: f64,
    pub weight_decay: f64,
    pub warmup_ratio: f64,
    /// Decay after warmup (absent in runs saved before it existed: linear).
    #[serde(default)]
    pub lr_scheduler: ScheduleKind,
    pub max_grad_norm: Option<f64>,
    pub seed: u64,
    /// Evaluate every N optimizer steps (and at the end) instead of every epoch.
    pub eval_every: Option<usize>,
}

impl FitConfig {
    /// Checks the numbers; errors name the command-line flag.
    pub fn validate(&self) -> Result<()> {
        if self.max_steps.is_none() && self.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        if self.max_steps == Some(0) {
            bail!("--max-steps must be at least 1");
        }
        if self.eval_every == Some(0) {
            bail!("--eval-every must be at least 1");
        }
        for (v, flag) in [(self.lr, "--lr"), (self.head_lr, "--head-lr"), (self.weight_decay, "--weight-decay")] {
            if !v.is_finite() || v < 0.0 {
                bail!("{flag} must be a finite non-negative number, got {v}");
            }
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            bail!("--warmup-ratio must be in [0, 1], got {}", self.warmup_ratio);
        }
        if let Some(m) = self.max_grad_norm {
            if !m.is_finite() || m <= 0.0 {
                bail!("--max-grad-norm must be positive (0 disables clipping), got {m}");
            }
        }
        Ok(())
    }
}

/// One evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Epochs completed (fractional when evaluating every N steps).
    pub epoch: f64,
    pub step: usize,
    /// Mean training loss since the previous entry.
    pub train_loss: f64,
    /// Adapter learning rate of the last step.
    pub lr: f64,
    pub metrics: Metrics,
    /// The task's main metric (selects the best entry).
    pub score: f64,
}

/// What a checkpoint stores besides tensors. `config` is the caller's whole run configuration
/// (compared on resume).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FitState {
    pub config: serde_json::Value,
    pub global_step: usize,
    pub total_steps: usize,
    /// Current epoch (0-based) and how many of its batches are done.
    pub epoch: usize,
    pub batch_in_epoch: usize,
    pub loss_sum: f64,
    pub loss_count: usize,
    pub log: Vec<LogEntry>,
    pub optimizer_steps: BTreeMap<String, u64>,
}

/// Options that do not change the result.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub resume: bool,
    /// Also checkpoint every N steps (always at the end of each epoch and of the run).
    pub save_every: Option<usize>,
    /// Show progress (a bar on a terminal, one line per evaluation on stderr).
    pub quiet: bool,
    /// Stop (without error) after this many steps of this process; for tests of resuming.
    pub stop_after: Option<usize>,
    /// Read the losses back from the device every N steps (0: [`DEFAULT_LOSS_EVERY`]).
    pub loss_every: usize,
    /// Measurement runs: wait for the device after every step and record each step's wall time
    /// (`run.json`: `step_ms`, and the median after the first `TIMING_WARMUP` steps).
    pub time_steps: bool,
}

/// Steps left out of the reported median step time (kernel compilation, allocator warm-up).
pub const TIMING_WARMUP: usize = 5;

/// A finished (or stopped) fit.
pub struct FitOutcome<M> {
    pub model: M,
    pub log: Vec<LogEntry>,
    pub total_steps: usize,
    pub steps_this_process: usize,
    pub resumed: bool,
    /// Seconds from the start of `fit` to the end of this process's first step (device synced):
    /// model building is not included, kernel compilation is.
    pub first_step_seconds: Option<f64>,
    pub seconds: f64,
    /// Wall time of each step of this process (with [`RunOptions::time_steps`]).
    pub step_ms: Vec<f64>,
    /// `false` when stopped early by [`RunOptions::stop_after`].
    pub finished: bool,
}

impl<M> FitOutcome<M> {
    /// Best entry by the main metric (the earliest on ties) and the last entry.
    pub fn best_and_last(&self, higher_is_better: bool) -> Result<(LogEntry, LogEntry)> {
        match (best_entry(&self.log, higher_is_better), self.log.last()) {
            (Some(b), Some(l)) => Ok((b.clone(), l.clone())),
            _ => bail!("no evaluation was run (0 training steps?)"),
        }
    }
}

/// Best entry: best main score (NaN never wins), the earliest on ties.
pub fn best_entry(log: &[LogEntry], higher_is_better: bool) -> Option<&LogEntry> {
    let mut best: Option<&LogEntry> = None;
    for e in log {
        let better = match best {
            None => true,
            Some(b) if b.score.is_nan() => !e.score.is_nan(),
            Some(b) => {
                if higher_is_better {
                    e.score > b.score
                } else {
                    e.score < b.score
                }
            }
        };
        if better {
            best = Some(e);
        }
    }
    best
}

/// Refuses to overwrite: an existing run in `out` needs `--resume` (or a fresh `--out`).
/// Returns the checkpoint to resume from.
pub fn check_out_dir(out: &Path, resume: bool) -> Result<Option<PathBuf>> {
    let ckpt = out.join(CHECKPOINT_FILE);
    if resume {
        return Ok(ckpt.is_file().then_some(ckpt));
    }
    for f in [CHECKPOINT_FILE, METRICS_FILE] {
        if out.join(f).exists() {
            bail!(
                "{} already exists: pass --resume to continue that run, or choose another --out",
                out.join(f).display()
            );
        }
    }
    Ok(None)
}

fn differing_keys(now: &serde_json::Value, saved: &serde_json::Value) -> Vec<String> {
    match (now, saved) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => a
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k} (checkpoint: {}, now: {})", b.get(k).cloned().unwrap_or_default(), v))
            .collect(),
        _ if now != saved => vec!["configuration".to_string()],
        _ => vec![],
    }
}

fn write_log(out: &Path, log: &[LogEntry]) -> Result<()> {
    let mut s = String::new();
    for e in log {
        s.push_str(&serde_json::to_string(e)?);
        s.push('\n');
    }
    write_atomic(&out.join(LOG_FILE), s.as_bytes())
}

/// Losses of the steps not yet read back (one scalar tensor per step, on the device).
struct PendingLosses<B: Backend> {
    losses: Vec<Tensor<B, 1>>,
    first_step: usize,
}

impl<B: Backend> PendingLosses<B> {
    /// Reads every pending loss (one transfer) and adds them to the state's running sum.
    fn flush(&mut self, state: &mut FitState, task: &str, label: &str) -> Result<Option<f64>> {
        if self.losses.is_empty() {
            return Ok(None);
        }
        let n = self.losses.len();
        let values: Vec<f32> = Tensor::cat(std::mem::take(&mut self.losses), 0)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| anyhow::anyhow!("reading the training losses: {e:?}"))?;
        for (i, v) in values.iter().enumerate() {
            if !v.is_finite() {
                bail!(
                    "training loss became {v} at step {} of {task} ({label}); lower --lr / --head-lr or set --max-grad-norm",
                    self.first_step + i + 1
                );
            }
            state.loss_sum += *v as f64;
        }
        state.loss_count += n;
        Ok(values.last().map(|v| *v as f64))
    }
}

/// Trains `model` on `task` with `config`, writing the checkpoint, `log.jsonl`, `train_config.json`
/// (`run_config`, the caller's full configuration) and `run.json` into `out`. The caller writes its
/// family's `metrics.json` from the outcome.
pub fn fit<B: AutodiffBackend, T: Task<B>>(
    task: &T,
    mut model: T::Model,
    config: &FitConfig,
    run_config: &serde_json::Value,
    out: &Path,
    opts: &RunOptions,
    device: &B::Device,
) -> Result<FitOutcome<T::Model>> {
    config.validate()?;
    let started = Instant::now();
    let name = task.name();
    let (main_key, _) = task.main_metric();
    std::fs::create_dir_all(out).with_context(|| format!("creating output folder {}", out.display()))?;
    let resume_from = check_out_dir(out, opts.resume)?;

    let steps_per_epoch = task.epoch_plan(config.seed, 0).len();
    if steps_per_epoch == 0 {
        bail!("{name}: no training batches (empty training set?)");
    }
    let total_steps = config.max_steps.unwrap_or(config.epochs * steps_per_epoch);
    let schedule = LinearSchedule::with_kind(config.lr_scheduler, config.warmup_ratio, total_steps);
    let mut optim = AdamW::<B::InnerBackend>::new(AdamWConfig::default());

    let mut state = FitState {
        config: run_config.clone(),
        global_step: 0,
        total_steps,
        epoch: 0,
        batch_in_epoch: 0,
        loss_sum: 0.0,
        loss_count: 0,
        log: Vec::new(),
        optimizer_steps: BTreeMap::new(),
    };
    if let Some(ckpt) = &resume_from {
        let loaded = checkpoint::load(ckpt)?;
        let s: FitState = serde_json::from_value(loaded.state)
            .with_context(|| format!("{}: training state has an unexpected format", ckpt.display()))?;
        let diff = differing_keys(run_config, &s.config);
        if !diff.is_empty() {
            bail!(
                "{}: the checkpoint was trained with different settings: {}; resume with the same flags or use another --out",
                ckpt.display(),
                diff.join(", ")
            );
        }
        let what = ckpt.display().to_string();
        let mut params = loaded.params;
        model = load_trainable::<B, _>(model, &mut params, &what)?;
        if let Some(k) = params.keys().next() {
            bail!("{what}: parameter `{k}` is not a trainable parameter of this model");
        }
        let mut opt_tensors = loaded.optimizer;
        optim.load_tensors(&mut opt_tensors, &s.optimizer_steps, device, &what)?;
        state = s;
        if !opts.quiet {
            eprintln!("resuming {} from step {}/{} (epoch {})", out.display(), state.global_step, total_steps, state.epoch + 1);
        }
    }
    write_json(&out.join(CONFIG_FILE), run_config)?;

    let group = |path: &str| GroupLr {
        lr: if task.is_head_param(path) { config.head_lr } else { config.lr },
        weight_decay: config.weight_decay,
    };
    let bar = if opts.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(total_steps as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps, {elapsed} elapsed, ETA {eta} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_prefix(format!("{name} {}", config.label));
        b.set_position(state.global_step as u64);
        b
    };

    let save = |state: &mut FitState, model: &T::Model, optim: &AdamW<B::InnerBackend>| -> Result<()> {
        let params = trainable_tensors::<B, _>(model);
        let (opt_tensors, steps) = optim.to_tensors();
        state.optimizer_steps = steps;
        checkpoint::save(&out.join(CHECKPOINT_FILE), &params, &opt_tensors, &serde_json::to_value(&*state)?)
    };

    let loss_every = if opts.loss_every == 0 { DEFAULT_LOSS_EVERY } else { opts.loss_every };
    let mut pending = PendingLosses::<B::InnerBackend> { losses: Vec::new(), first_step: state.global_step };
    let mut steps_this_process = 0usize;
    let mut first_step_seconds = None;
    let mut finished = true;
    let mut step_ms = Vec::new();
    'epochs: while state.global_step < total_steps {
        let plan = task.epoch_plan(config.seed, state.epoch);
        let n_batches = plan.len();
        for bi in state.batch_in_epoch..n_batches {
            if state.global_step >= total_steps {
                break;
            }
            if opts.stop_after.is_some_and(|n| steps_this_process >= n) {
                finished = false;
                break 'epochs;
            }
            let step_started = Instant::now();
            // dropout masks depend only on the run's seed and the step: a resumed run draws the same
            lorta_models::dropout::seed_step::<B>(device, config.seed, state.global_step as u64);
            let loss = task.loss(&model, &plan[bi], device)?;
            if pending.losses.is_empty() {
                pending.first_step = state.global_step;
            }
            pending.losses.push(loss.clone().inner().reshape([1]));
            let grads = GradientsParams::from_grads::<B, _>(loss.backward(), &model);
            let factor = schedule.factor(state.global_step);
            let last_lr = config.lr * factor;
            let scaled = |p: &str| {
                let g = group(p);
                GroupLr { lr: g.lr * factor, weight_decay: g.weight_decay }
            };
            model = optim.step::<B, _, _>(model, grads, &scaled, config.max_grad_norm).0;
            state.global_step += 1;
            state.batch_in_epoch = bi + 1;
            steps_this_process += 1;
            if opts.time_steps {
                B::sync(device).map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"))?;
                step_ms.push(step_started.elapsed().as_secs_f64() * 1e3);
            }

            let epoch_done = bi + 1 == n_batches;
            let last = state.global_step == total_steps;
            let eval_now = match config.eval_every {
                Some(n) => state.global_step % n == 0 || last,
                None => epoch_done || last,
            };
            let save_now = last || epoch_done || opts.save_every.is_some_and(|n| state.global_step % n == 0);
            if first_step_seconds.is_none() || eval_now || save_now || state.global_step % loss_every == 0 {
                if let Some(v) = pending.flush(&mut state, &name, &config.label)? {
                    bar.set_message(format!("loss {v:.4}"));
                }
                first_step_seconds.get_or_insert_with(|| started.elapsed().as_secs_f64());
            }
            bar.set_position(state.global_step as u64);

            if eval_now {
                let metrics = task.evaluate(&model.valid(), device)?;
                let score = metrics.get(&main_key).copied().unwrap_or(f64::NAN);
                let entry = LogEntry {
                    epoch: state.epoch as f64 + (bi + 1) as f64 / n_batches as f64,
                    step: state.global_step,
                    train_loss: state.loss_sum / state.loss_count.max(1) as f64,
                    lr: last_lr,
                    metrics,
                    score,
                };
                if !opts.quiet {
                    bar.suspend(|| {
                        eprintln!(
                            "{name} {} epoch {:.2} step {}: train loss {:.4}, dev {main_key} {:.4}",
                            config.label, entry.epoch, entry.step, entry.train_loss, entry.score
                        )
                    });
                }
                state.log.push(entry);
                state.loss_sum = 0.0;
                state.loss_count = 0;
                write_log(out, &state.log)?;
            }
            if epoch_done {
                state.epoch += 1;
                state.batch_in_epoch = 0;
            }
            if save_now {
                save(&mut state, &model, &optim)?;
            }
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    write_json(
        &out.join(RUN_FILE),
        &serde_json::json!({
            "seconds_this_process": seconds,
            "steps_this_process": steps_this_process,
            "first_step_seconds": first_step_seconds,
            "resumed": resume_from.is_some(),
            "finished": finished,
            "median_step_ms": median_after_warmup(&step_ms),
            "timed_steps": step_ms.len().saturating_sub(TIMING_WARMUP),
            "step_ms": step_ms,
        }),
    )?;
    Ok(FitOutcome {
        model,
        log: state.log,
        total_steps,
        steps_this_process,
        resumed: resume_from.is_some(),
        first_step_seconds,
        seconds,
        finished,
        step_ms,
    })
}

/// Median of the step times after the first [`TIMING_WARMUP`]; `None` if there are none.
pub fn median_after_warmup(step_ms: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = step_ms.iter().skip(TIMING_WARMUP).copied().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(step: usize, score: f64) -> LogEntry {
        LogEntry { epoch: 0.0, step, train_loss: 0.0, lr: 0.0, metrics: Metrics::new(), score }
    }

    #[test]
    fn best_entry_follows_the_metric_direction() {
        let log = vec![entry(1, f64::NAN), entry(2, 0.5), entry(3, 0.7), entry(4, 0.7), entry(5, 0.2)];
        assert_eq!(best_entry(&log, true).unwrap().step, 3);
        assert_eq!(best_entry(&log, false).unwrap().step, 5);
        assert!(best_entry(&[], true).is_none());
    }

}
