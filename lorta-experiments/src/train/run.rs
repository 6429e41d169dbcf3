//! GLUE fine-tuning on top of the task-agnostic loop ([`super::fit`]): the GLUE [`Task`]
//! (shuffled, optionally length-bucketed batches; cross-entropy or MSE; the task's metrics), the
//! run configuration and the final `metrics.json`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Int, Tensor, TensorData};
use lorta_core::AdapterConfig;
use lorta_models::bert::BertForSequenceClassification;
use lorta_models::load::LoadOptions;
use lorta_models::tuning::{HeadTuning, Tuning};
use serde::{Deserialize, Serialize};

use super::data::{majority_baseline, to_tensors, TaskData};
use super::fit::{fit, FitConfig};
pub use super::fit::{LogEntry, RunOptions, CONFIG_FILE, LOG_FILE, METRICS_FILE, RUN_FILE};
use super::task::{Metrics, Task};
use crate::glue::{epoch_batches, pad_batch_to, task_metrics, BatchConfig, BatchLabels, Encoded, GlueTask, Label};
use crate::report::write_json;

pub const CHECKPOINT_FILE_NAME: &str = super::checkpoint::CHECKPOINT_FILE;

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
    /// Compute dtype of the frozen base; adapters, head and optimizer state stay in f32.
    #[serde(default = "default_dtype")]
    pub dtype: DType,
    /// Padded sequence lengths are rounded up to a multiple of this (GPU backends compile
    /// kernels per shape; 1 = pad to the longest example of the batch). Above 1, a partial
    /// training batch is also padded to `batch_size` rows that weigh nothing in the loss.
    #[serde(default = "one")]
    pub pad_to_multiple: usize,
    /// Random weights from the model folder's config.json (timing runs only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub random_weights: bool,
    /// Dropout probability replacing the checkpoint's (`None`: its config.json values).
    #[serde(default)]
    pub dropout: Option<f64>,
}

fn default_dtype() -> DType {
    DType::F32
}

fn one() -> usize {
    1
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
        pos(self.pad_to_multiple, "--pad-to-multiple")?;
        if !matches!(self.dtype, DType::F32 | DType::BF16 | DType::F16) {
            bail!("--dtype: expected f32, bf16 or f16, got {:?}", self.dtype);
        }
        if let Some(p) = self.dropout {
            if !(0.0..1.0).contains(&p) {
                bail!("--dropout must be in [0, 1), got {p}");
            }
        }
        self.fit_config().validate()?;
        self.task()?;
        Ok(())
    }

    /// The loop's settings.
    pub fn fit_config(&self) -> FitConfig {
        FitConfig {
            label: self.label.clone(),
            epochs: self.epochs,
            max_steps: self.max_steps,
            lr: self.lr,
            head_lr: self.head_lr,
            weight_decay: self.weight_decay,
            warmup_ratio: self.warmup_ratio,
            lr_scheduler: Default::default(),
            max_grad_norm: self.max_grad_norm,
            seed: self.seed,
            eval_every: self.eval_every,
        }
    }

    pub fn tuning(&self) -> Tuning {
        let trainable_dtype = (self.dtype != DType::F32).then_some(DType::F32);
        Tuning { adapter: self.adapter.clone(), head: self.head, seed: self.seed, trainable_dtype, dropout: self.dropout, ..Default::default() }
    }
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

/// True when `p` is a parameter of the classification head (lorta-models'
/// `BertForSequenceClassification`: `dense.*`, `out.*`), trained at the head learning rate.
pub fn is_head_param(path: &str) -> bool {
    path.starts_with("dense.") || path.starts_with("out.")
}

/// The batch loss averaged over its first `real` rows; rows after them pad a partial batch to
/// the full batch shape and weigh nothing (see [`GlueTrainTask`]'s `loss`).
fn loss_fn<B: Backend>(logits: Tensor<B, 2>, labels: &BatchLabels, real: usize, device: &B::Device) -> Tensor<B, 1> {
    let [b, _] = logits.dims();
    let per_row = match labels {
        BatchLabels::Class(c) => {
            let y = Tensor::<B, 2, Int>::from_data(TensorData::new(c.clone(), [b, 1]), device);
            log_softmax(logits, 1).gather(1, y).reshape([b]).neg()
        }
        BatchLabels::Score(s) => {
            let y = Tensor::<B, 1>::from_data(TensorData::new(s.clone(), [b]), device);
            (logits.reshape([b]) - y).square()
        }
    };
    if real >= b {
        return per_row.mean();
    }
    let weights: Vec<f32> = (0..b).map(|r| if r < real { 1.0 } else { 0.0 }).collect();
    let weights = Tensor::<B, 1>::from_data(TensorData::new(weights, [b]), device).cast(per_row.dtype());
    (per_row * weights).sum().div_scalar(real as f64)
}

/// Predictions on `dev` (file order) and the task metrics.
pub fn evaluate<B: Backend>(
    model: &BertForSequenceClassification<B>,
    task: GlueTask,
    dev: &[Encoded],
    batch_size: usize,
    pad_id: u32,
    pad_to_multiple: usize,
    device: &B::Device,
) -> Result<BTreeMap<String, f64>> {
    let mut preds = Vec::with_capacity(dev.len());
    for chunk in dev.chunks(batch_size) {
        let refs: Vec<&Encoded> = chunk.iter().collect();
        let b = pad_batch_to(&refs, pad_id, pad_to_multiple);
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

/// The GLUE [`Task`]: tokenized data, batching and the task's loss and metrics.
pub struct GlueTrainTask<'a> {
    pub config: &'a TrainConfig,
    pub task: GlueTask,
    pub data: &'a TaskData,
    pub batch: BatchConfig,
    pub lengths: Vec<usize>,
}

impl<'a> GlueTrainTask<'a> {
    pub fn new(config: &'a TrainConfig, data: &'a TaskData) -> Result<Self> {
        let batch = BatchConfig { bucket_chunks: config.bucket_chunks, ..BatchConfig::train(config.batch_size) };
        let lengths = data.train.iter().map(|e| e.input_ids.len()).collect();
        Ok(GlueTrainTask { config, task: config.task()?, data, batch, lengths })
    }
}

impl<B: AutodiffBackend> Task<B> for GlueTrainTask<'_> {
    type Model = BertForSequenceClassification<B>;

    fn name(&self) -> String {
        self.task.name().to_string()
    }

    fn epoch_plan(&self, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
        epoch_batches(&self.lengths, &self.batch, seed, epoch as u64)
    }

    fn loss(&self, model: &Self::Model, batch: &[usize], device: &B::Device) -> Result<Tensor<B, 1>> {
        let mut refs: Vec<&Encoded> = batch.iter().map(|&i| &self.data.train[i]).collect();
        let real = refs.len();
        // Where lengths are padded to buckets (GPU backends), a partial batch is also padded to
        // the full batch with copies of its first example that weigh nothing in the loss: one
        // shape per length bucket. The partial last batch of an epoch otherwise brought new
        // shapes to compile mid-training, after which MiniLM bf16 steps took ~28 ms instead of
        // ~16, in that process and in later ones reading the kernel cache (H200, measurements
        // h200-2026-12-01-s17, calls 3-5).
        if self.config.pad_to_multiple > 1 && (1..self.config.batch_size).contains(&real) {
            refs.resize(self.config.batch_size, refs[0]);
        }
        let b = pad_batch_to(&refs, self.data.pad_id, self.config.pad_to_multiple);
        let t = to_tensors::<B>(&b, device);
        let logits = model.forward(t.input_ids, Some(t.attention_mask), Some(t.token_type_ids));
        Ok(loss_fn(logits, &b.labels, real, device))
    }

    fn evaluate(&self, model: &BertForSequenceClassification<B::InnerBackend>, device: &B::Device) -> Result<Metrics> {
        evaluate(model, self.task, &self.data.dev, self.config.eval_batch_size, self.data.pad_id, self.config.pad_to_multiple, device)
    }

    fn main_metric(&self) -> (String, bool) {
        (self.task.main_metric().key().to_string(), true)
    }

    fn is_head_param(&self, path: &str) -> bool {
        is_head_param(path)
    }
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
    // Refuse an existing run before spending time on loading the model.
    super::fit::check_out_dir(out, opts.resume)?;
    let load_opts =
        LoadOptions { tuning: config.tuning(), num_labels: Some(task.num_labels()), dtype: config.dtype, ..LoadOptions::default() };
    let model: BertForSequenceClassification<B> = if config.random_weights {
        let md = lorta_models::hub::ModelDir::new(&config.model)?;
        let bert_config = lorta_models::bert::BertConfig::from_json(&md.config()?)?;
        BertForSequenceClassification::random(&bert_config, &load_opts, device)?
    } else {
        BertForSequenceClassification::load(&config.model, &load_opts, device)
            .with_context(|| format!("loading the model from {} (--model)", config.model.display()))?
    };
    let trainable_params = model.trainable_params();
    let trainable_params_excl_head = model.encoder.trainable_params();

    let glue = GlueTrainTask::new(config, data)?;
    let outcome = fit(&glue, model, &config.fit_config(), &serde_json::to_value(config)?, out, opts, device)?;
    if !outcome.finished {
        return Ok(None);
    }
    let (best, last) = outcome.best_and_last(true)?;
    let metrics = RunMetrics {
        task: task.name().to_string(),
        label: config.label.clone(),
        main_metric: task.main_metric().key().to_string(),
        best,
        last,
        history: outcome.log.clone(),
        trainable_params,
        trainable_params_excl_head,
        train_examples: data.train.len(),
        eval_examples: data.dev.len(),
        majority_baseline: majority_baseline(&data.train, &data.dev),
        total_steps: outcome.total_steps,
    };
    write_json(&out.join(METRICS_FILE), &metrics)?;
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


#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};
    use burn_ndarray::NdArray;

    type AB = burn_autodiff::Autodiff<NdArray>;

    /// A batch padded with extra rows gives the unpadded batch's loss and gradients, and no
    /// gradient to the padding rows (classification and regression).
    #[test]
    fn padding_rows_weigh_nothing_in_the_loss() {
        let device = Default::default();
        for (width, labels, padded_labels) in [
            (3, BatchLabels::Class(vec![2, 0]), BatchLabels::Class(vec![2, 0, 2, 2])),
            (1, BatchLabels::Score(vec![0.5, -1.0]), BatchLabels::Score(vec![0.5, -1.0, 0.5, 0.5])),
        ] {
            let logits = Tensor::<AB, 2>::random([4, width], Distribution::Normal(0.0, 2.0), &device).require_grad();
            let real = logits.clone().slice([0..2, 0..width]);
            let unpadded = loss_fn(real, &labels, 2, &device);
            let padded = loss_fn(logits.clone(), &padded_labels, 2, &device);
            padded.clone().into_data().assert_approx_eq::<f32>(&unpadded.clone().into_data(), Tolerance::absolute(1e-6));
            let g_pad = logits.grad(&padded.backward()).unwrap();
            let g_ref = logits.grad(&unpadded.backward()).unwrap();
            g_pad.clone().into_data().assert_approx_eq::<f32>(&g_ref.into_data(), Tolerance::absolute(1e-6));
            let tail = g_pad.slice([2..4, 0..width]).abs().max().into_scalar();
            assert_eq!(tail, 0.0, "padding rows got a gradient");
        }
    }
}
