//! The GLUE training loop: AdamW with separate adapter / head learning rates, linear warmup and
//! decay, global-norm clipping, evaluation every epoch (or every N steps), checkpoint + resume,
//! a JSON-lines log and a final `metrics.json`.
//!
//! Determinism: the shuffled order of epoch `e` depends only on (seed, e); dropout masks only on
//! (seed, step) (`lorta_models::dropout::seed_step` before each step); parameters, optimizer moments and
//! the position in the epoch are checkpointed exactly (f32), so a resumed run repeats the
//! uninterrupted one bit for bit on the same backend.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::{AutodiffModule, Module};
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use lorta_core::AdapterConfig;
use lorta_models::bert::BertForSequenceClassification;
use lorta_models::load::LoadOptions;
use lorta_models::tuning::{HeadTuning, Tuning};
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, CHECKPOINT_FILE};
use super::data::{majority_baseline, to_tensors, TaskData};
use super::optim::{load_trainable, trainable_tensors, AdamW, AdamWConfig, GroupLr};
use super::schedule::LinearSchedule;
use crate::glue::{epoch_batches, pad_batch, task_metrics, BatchConfig, BatchLabels, Encoded, GlueTask, Label};
use crate::report::{write_atomic, write_json};

pub const METRICS_FILE: &str = "metrics.json";
pub const LOG_FILE: &str = "log.jsonl";
pub const CONFIG_FILE: &str = "train_config.json";
pub const CHECKPOINT_FILE_NAME: &str = CHECKPOINT_FILE;
pub const RUN_FILE: &str = "run.json";

/// Everything that determines a training run (written to `train_config.json`; a resumed run
/// must use the same values).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub task: String,
    /// Display name of the method (e.g. `LoRTA r4`).
    pub label: String,
    pub adapter: Option<AdapterConfig>,
    pub head: HeadTuning,
    pub model: PathBuf,
    pub glue_dir: PathBuf,
    pub epochs: usize,
    pub max_steps: Option<usize>,
    pub max_train_samples: Option<usize>,
    pub max_eval_samples: Option<usize>,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub max_seq_len: usize,
    pub lr: f64,
    pub head_lr: f64,
    pub weight_decay: f64,
    pub warmup_ratio: f64,
    pub max_grad_norm: Option<f64>,
    pub seed: u64,
    /// Evaluate every N optimizer steps (and at the end) instead of every epoch.
    pub eval_every: Option<usize>,
    /// Length bucketing: sort chunks of `k · batch_size` shuffled examples by length.
    pub bucket_chunks: Option<usize>,
    /// Dropout probability replacing the checkpoint's (`None`: its config.json values).
    #[serde(default)]
    pub dropout: Option<f64>,
}

impl TrainConfig {
    pub fn task(&self) -> Result<GlueTask> {
        Ok(self.task.parse::<GlueTask>()?)
    }

    /// Checks the numbers before anything is loaded; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        let pos = |v: usize, flag: &str| -> Result<()> {
            if v == 0 {
                bail!("{flag} must be at least 1");
            }
            Ok(())
        };
        pos(self.batch_size, "--batch-size")?;
        pos(self.eval_batch_size, "--eval-batch-size")?;
        pos(self.max_seq_len, "--max-seq-len")?;
        if self.max_steps.is_none() {
            pos(self.epochs, "--epochs")?;
        }
        if let Some(s) = self.max_steps {
            pos(s, "--max-steps")?;
        }
        if let Some(e) = self.eval_every {
            pos(e, "--eval-every")?;
        }
        for (v, flag) in [(self.lr, "--lr"), (self.head_lr, "--head-lr"), (self.weight_decay, "--weight-decay")] {
            if !v.is_finite() || v < 0.0 {
                bail!("{flag} must be a finite non-negative number, got {v}");
            }
        }
        if let Some(p) = self.dropout {
            if !(0.0..1.0).contains(&p) {
                bail!("--dropout must be in [0, 1), got {p}");
            }
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            bail!("--warmup-ratio must be in [0, 1], got {}", self.warmup_ratio);
        }
        self.task()?;
        Ok(())
    }

    pub fn tuning(&self) -> Tuning {
        Tuning { adapter: self.adapter.clone(), head: self.head, seed: self.seed, dropout: self.dropout, ..Default::default() }
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
    pub metrics: BTreeMap<String, f64>,
    /// The task's main metric (selects the best entry).
    pub score: f64,
}

/// What a checkpoint stores besides tensors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    pub config: TrainConfig,
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

/// Final result of a run (`metrics.json`). No timings, so that identical runs give identical files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    pub task: String,
    pub label: String,
    pub main_metric: String,
    pub best: LogEntry,
    pub last: LogEntry,
    pub history: Vec<LogEntry>,
    pub trainable_params: usize,
    pub trainable_params_excl_head: usize,
    pub train_examples: usize,
    pub eval_examples: usize,
    /// Dev accuracy of always predicting the most frequent training class.
    pub majority_baseline: Option<f64>,
    pub total_steps: usize,
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
}

/// Best entry: highest main score, the earliest on ties.
pub fn best_entry(log: &[LogEntry]) -> Option<&LogEntry> {
    let mut best: Option<&LogEntry> = None;
    for e in log {
        if best.is_none_or(|b| e.score > b.score) {
            best = Some(e);
        }
    }
    best
}

/// True when `p` is a parameter of the classification head (lorta-models'
/// `BertForSequenceClassification`: `dense.*`, `out.*`), trained at the head learning rate.
pub fn is_head_param(path: &str) -> bool {
    path.starts_with("dense.") || path.starts_with("out.")
}

fn loss_fn<B: Backend>(logits: Tensor<B, 2>, labels: &BatchLabels, device: &B::Device) -> Tensor<B, 1> {
    let [b, _] = logits.dims();
    match labels {
        BatchLabels::Class(c) => {
            let y = Tensor::<B, 2, Int>::from_data(TensorData::new(c.clone(), [b, 1]), device);
            log_softmax(logits, 1).gather(1, y).mean().neg()
        }
        BatchLabels::Score(s) => {
            let y = Tensor::<B, 1>::from_data(TensorData::new(s.clone(), [b]), device);
            (logits.reshape([b]) - y).square().mean()
        }
    }
}

/// Predictions on `dev` (file order) and the task metrics.
pub fn evaluate<B: Backend>(
    model: &BertForSequenceClassification<B>,
    task: GlueTask,
    dev: &[Encoded],
    batch_size: usize,
    pad_id: u32,
    device: &B::Device,
) -> Result<BTreeMap<String, f64>> {
    let mut preds = Vec::with_capacity(dev.len());
    for chunk in dev.chunks(batch_size) {
        let refs: Vec<&Encoded> = chunk.iter().collect();
        let b = pad_batch(&refs, pad_id);
        let t = to_tensors::<B>(&b, device);
        let logits = model.forward(t.input_ids, Some(t.attention_mask), Some(t.token_type_ids));
        let [n, c] = logits.dims();
        let v: Vec<f32> = logits.into_data().convert::<f32>().to_vec().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        for r in 0..n {
            let row = &v[r * c..(r + 1) * c];
            if task.is_regression() {
                preds.push(Label::Score(row[0]));
            } else {
                let mut arg = 0;
                for (j, x) in row.iter().enumerate() {
                    if *x > row[arg] {
                        arg = j;
                    }
                }
                preds.push(Label::Class(arg));
            }
        }
    }
    let labels: Vec<Label> = dev.iter().map(|e| e.label).collect();
    Ok(task_metrics(task, &preds, &labels))
}

/// Refuses to overwrite: an existing run in `out` needs `--resume` (or a fresh `--out`).
fn check_out_dir(out: &Path, resume: bool) -> Result<Option<PathBuf>> {
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

fn differing_keys(a: &TrainConfig, b: &TrainConfig) -> Vec<String> {
    let (a, b) = (serde_json::to_value(a).unwrap_or_default(), serde_json::to_value(b).unwrap_or_default());
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            a.iter().filter(|(k, v)| b.get(*k) != Some(*v)).map(|(k, v)| format!("{k} (checkpoint: {}, now: {})", b.get(k).cloned().unwrap_or_default(), v)).collect()
        }
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

/// Trains `config` on `data`, writing into `out`. Returns the final metrics (also in
/// `out/metrics.json`), or `None` when stopped early by `opts.stop_after`.
pub fn train<B: AutodiffBackend>(
    config: &TrainConfig,
    data: &TaskData,
    out: &Path,
    opts: &RunOptions,
    device: &B::Device,
) -> Result<Option<RunMetrics>> {
    config.validate()?;
    let task = config.task()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating output folder {}", out.display()))?;
    let resume_from = check_out_dir(out, opts.resume)?;
    let started = Instant::now();

    let load_opts = LoadOptions { tuning: config.tuning(), num_labels: Some(task.num_labels()), ..LoadOptions::default() };
    let mut model: BertForSequenceClassification<B> = BertForSequenceClassification::load(&config.model, &load_opts, device)
        .with_context(|| format!("loading the model from {} (--model)", config.model.display()))?;
    let trainable_params = model.trainable_params();
    let trainable_params_excl_head = model.encoder.trainable_params();

    let bcfg = BatchConfig { bucket_chunks: config.bucket_chunks, ..BatchConfig::train(config.batch_size) };
    let lengths: Vec<usize> = data.train.iter().map(|e| e.input_ids.len()).collect();
    let steps_per_epoch = epoch_batches(&lengths, &bcfg, config.seed, 0).len();
    let total_steps = config.max_steps.unwrap_or(config.epochs * steps_per_epoch);
    let schedule = LinearSchedule::from_ratio(config.warmup_ratio, total_steps);
    let mut optim = AdamW::<B::InnerBackend>::new(AdamWConfig::default());

    let mut state = TrainState {
        config: config.clone(),
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
        let s: TrainState = serde_json::from_value(loaded.state)
            .with_context(|| format!("{}: training state has an unexpected format", ckpt.display()))?;
        let diff = differing_keys(config, &s.config);
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
    write_json(&out.join(CONFIG_FILE), config)?;

    let group = |path: &str| {
        if is_head_param(path) {
            GroupLr { lr: config.head_lr, weight_decay: config.weight_decay }
        } else {
            GroupLr { lr: config.lr, weight_decay: config.weight_decay }
        }
    };
    let bar = if opts.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(total_steps as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps, {elapsed} elapsed, ETA {eta} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_prefix(format!("{} {}", task.name(), config.label));
        b.set_position(state.global_step as u64);
        b
    };

    let save = |state: &mut TrainState, model: &BertForSequenceClassification<B>, optim: &AdamW<B::InnerBackend>| -> Result<()> {
        let params = trainable_tensors::<B, _>(model);
        let (opt_tensors, steps) = optim.to_tensors();
        state.optimizer_steps = steps;
        checkpoint::save(&out.join(CHECKPOINT_FILE), &params, &opt_tensors, &serde_json::to_value(&*state)?)
    };

    let mut steps_this_process = 0usize;
    while state.global_step < total_steps {
        let batches = epoch_batches(&lengths, &bcfg, config.seed, state.epoch as u64);
        let n_batches = batches.len();
        for bi in state.batch_in_epoch..n_batches {
            if state.global_step >= total_steps {
                break;
            }
            if opts.stop_after.is_some_and(|n| steps_this_process >= n) {
                bar.finish_and_clear();
                return Ok(None);
            }
            let refs: Vec<&Encoded> = batches[bi].iter().map(|&i| &data.train[i]).collect();
            let batch = pad_batch(&refs, data.pad_id);
            let t = to_tensors::<B>(&batch, device);
            lorta_models::dropout::seed_step::<B>(device, config.seed, state.global_step as u64);
            let logits = model.forward(t.input_ids, Some(t.attention_mask), Some(t.token_type_ids));
            let loss = loss_fn(logits, &batch.labels, device);
            let loss_value: f64 = loss.clone().into_scalar().elem();
            if !loss_value.is_finite() {
                bail!(
                    "training loss became {loss_value} at step {} of {} ({}); lower --lr / --head-lr or set --max-grad-norm",
                    state.global_step + 1,
                    task.name(),
                    config.label
                );
            }
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
            state.loss_sum += loss_value;
            state.loss_count += 1;
            steps_this_process += 1;
            bar.set_position(state.global_step as u64);
            bar.set_message(format!("loss {loss_value:.4}"));

            let epoch_done = bi + 1 == n_batches;
            let last = state.global_step == total_steps;
            let eval_now = match config.eval_every {
                Some(n) => state.global_step % n == 0 || last,
                None => epoch_done || last,
            };
            if eval_now {
                let metrics = evaluate(&model.valid(), task, &data.dev, config.eval_batch_size, data.pad_id, device)?;
                let score = metrics.get(task.main_metric().key()).copied().unwrap_or(f64::NAN);
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
                            "{} {} epoch {:.2} step {}: train loss {:.4}, dev {} {:.4}",
                            task.name(),
                            config.label,
                            entry.epoch,
                            entry.step,
                            entry.train_loss,
                            task.main_metric().key(),
                            entry.score
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
            if last || epoch_done || opts.save_every.is_some_and(|n| state.global_step % n == 0) {
                save(&mut state, &model, &optim)?;
            }
        }
    }
    bar.finish_and_clear();

    let (best, last) = match (best_entry(&state.log), state.log.last()) {
        (Some(b), Some(l)) => (b.clone(), l.clone()),
        _ => bail!("no evaluation was run (0 training steps?)"),
    };
    let metrics = RunMetrics {
        task: task.name().to_string(),
        label: config.label.clone(),
        main_metric: task.main_metric().key().to_string(),
        best,
        last,
        history: state.log.clone(),
        trainable_params,
        trainable_params_excl_head,
        train_examples: data.train.len(),
        eval_examples: data.dev.len(),
        majority_baseline: majority_baseline(&data.train, &data.dev),
        total_steps,
    };
    write_json(&out.join(METRICS_FILE), &metrics)?;
    write_json(
        &out.join(RUN_FILE),
        &serde_json::json!({
            "seconds_this_process": started.elapsed().as_secs_f64(),
            "steps_this_process": steps_this_process,
            "resumed": resume_from.is_some(),
            "train_file": data.train_source,
            "dev_file": data.dev_source,
        }),
    )?;
    Ok(Some(metrics))
}

/// Reads a finished run's `metrics.json`.
pub fn read_metrics(out: &Path) -> Result<RunMetrics> {
    let p = out.join(METRICS_FILE);
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a metrics file of this version", p.display()))
}

/// Runs that are finished have a `metrics.json`.
pub fn is_finished(out: &Path) -> bool {
    read_metrics(out).is_ok()
}

#[allow(dead_code)]
fn _assert_module<B: AutodiffBackend>(m: BertForSequenceClassification<B>) -> usize {
    m.num_params()
}
