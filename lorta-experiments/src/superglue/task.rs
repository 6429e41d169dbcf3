//! The Table 3 training task: tokenized samples of one task, MeZO's losses (cross-entropy over
//! the candidates' mean log-likelihoods for COPA; the gold continuation's token NLL for ReCoRD,
//! SQuAD and DROP) and the evaluation (accuracy by candidate scoring; EM/F1 of greedy answers).
//!
//! ReCoRD trains on the gold entity's continuation only (LM-style, one sequence per example)
//! rather than on all its candidates: a ReCoRD example has ~10–20 entities over a long passage,
//! and MeZO's classification objective would multiply the training cost by that. Its
//! evaluation scores every candidate.
use std::collections::BTreeMap;

use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use lorta_models::llama::LlamaForCausalLM;
use serde::{Deserialize, Serialize};

use super::data::TaskSplits;
use super::metrics::{drop_em_f1, squad_em_f1};
use super::prompts::{clean_generation, LmExample, Target};
use super::LlmTask;
use crate::glue::{epoch_batches, BatchConfig};
use crate::lm::score::{classification_loss, continuation_logprobs, greedy_answer, pad_sequences, pad_sequences_rows, sft_loss, to_host, ChoiceGroup};
use crate::lm::{LmTokenizer, Sequence};
use crate::train::task::{Metrics, Task};

/// A tokenized training example.
#[derive(Clone, Debug)]
pub enum TrainItem {
    /// Every candidate, and which one is gold.
    Choice { seqs: Vec<Sequence>, correct: usize },
    /// The gold continuation.
    Lm(Sequence),
}

/// A tokenized evaluation example.
#[derive(Clone, Debug)]
pub enum EvalItem {
    Choice { seqs: Vec<Sequence>, correct: Vec<usize> },
    Generate { prompt: Vec<u32>, golds: Vec<Vec<String>> },
}

/// Sizes that shape the computation (not the result).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table3TaskConfig {
    pub batch_size: usize,
    /// Sequences per scoring forward pass in evaluation.
    pub eval_batch_size: usize,
    pub max_len: usize,
    pub max_new_tokens: usize,
    /// Padded lengths are multiples of this (GPU backends: 16, see `--pad-to-multiple`).
    #[serde(default = "one")]
    pub pad_to_multiple: usize,
}

fn one() -> usize {
    1
}

pub struct Table3Task {
    pub task: LlmTask,
    pub train: Vec<TrainItem>,
    pub dev: Vec<EvalItem>,
    /// `None` when the reported set is the dev set (COPA).
    pub eval: Option<Vec<EvalItem>>,
    pub tok: LmTokenizer,
    pub stop_ids: Vec<u32>,
    pub config: Table3TaskConfig,
}

fn encode_train(task: LlmTask, ex: &LmExample, tok: &LmTokenizer, max_len: usize) -> Result<TrainItem> {
    Ok(match (&ex.target, task) {
        (Target::Choice { candidates, correct }, LlmTask::Copa) => TrainItem::Choice {
            seqs: candidates.iter().map(|c| tok.sequence(&ex.prompt, c, false, Some(max_len))).collect::<Result<_>>()?,
            correct: correct[0],
        },
        _ => TrainItem::Lm(tok.sequence(&ex.prompt, ex.train_continuation(), false, Some(max_len))?),
    })
}

fn encode_eval(ex: &LmExample, tok: &LmTokenizer, max_len: usize, max_new_tokens: usize) -> Result<EvalItem> {
    Ok(match &ex.target {
        Target::Choice { candidates, correct } => EvalItem::Choice {
            seqs: candidates.iter().map(|c| tok.sequence(&ex.prompt, c, false, Some(max_len))).collect::<Result<_>>()?,
            correct: correct.clone(),
        },
        Target::Generate { golds, .. } => EvalItem::Generate { prompt: tok.prompt(&ex.prompt, Some(max_len.saturating_sub(max_new_tokens).max(1)))?, golds: golds.clone() },
    })
}

impl Table3Task {
    /// Sequences a training item puts in a batch, at most (its candidates, or one).
    fn rows_per_item(&self) -> usize {
        self.train
            .iter()
            .map(|t| match t {
                TrainItem::Choice { seqs, .. } => seqs.len(),
                TrainItem::Lm(_) => 1,
            })
            .max()
            .unwrap_or(1)
    }

    pub fn new(splits: &TaskSplits, tok: LmTokenizer, config: Table3TaskConfig) -> Result<Self> {
        let task = splits.task;
        let enc_train = |xs: &[LmExample]| -> Result<Vec<TrainItem>> {
            xs.iter().enumerate().map(|(i, e)| encode_train(task, e, &tok, config.max_len).with_context(|| format!("{} train example {i} (id {})", task.title(), e.id))).collect()
        };
        let enc_eval = |xs: &[LmExample], what: &str| -> Result<Vec<EvalItem>> {
            xs.iter().enumerate().map(|(i, e)| encode_eval(e, &tok, config.max_len, config.max_new_tokens).with_context(|| format!("{} {what} example {i} (id {})", task.title(), e.id))).collect()
        };
        let train = enc_train(&splits.train)?;
        let dev = enc_eval(&splits.dev, "dev")?;
        let same = splits.dev.len() == splits.eval.len() && splits.dev.iter().zip(&splits.eval).all(|(a, b)| a == b);
        let eval = if same { None } else { Some(enc_eval(&splits.eval, "eval")?) };
        let stop_ids = if task.is_generation() { tok.newline_stop_ids() } else { Vec::new() };
        Ok(Table3Task { task, train, dev, eval, tok, stop_ids, config })
    }

    /// Metrics of `items` (`accuracy`, or `em` and `f1`, ×1).
    pub fn metrics<B: Backend>(&self, model: &LlamaForCausalLM<B>, items: &[EvalItem], device: &B::Device) -> Result<Metrics> {
        let mut m = Metrics::new();
        if self.task.is_generation() {
            let (mut em, mut f1) = (0.0, 0.0);
            for it in items {
                let EvalItem::Generate { prompt, golds } = it else { continue };
                let text = greedy_answer(model, &self.tok, prompt, self.config.max_new_tokens, &self.stop_ids)?;
                let pred = clean_generation(&text);
                let (e, f) = match self.task {
                    LlmTask::Drop => drop_em_f1(&pred, golds),
                    _ => squad_em_f1(&pred, &golds.iter().map(|g| g.join(" ")).collect::<Vec<_>>()),
                };
                em += e;
                f1 += f;
            }
            let n = items.len().max(1) as f64;
            m.insert("em".into(), em / n);
            m.insert("f1".into(), f1 / n);
        } else {
            // all candidates of all examples, scored in chunks of eval_batch_size sequences
            let mut flat: Vec<&Sequence> = Vec::new();
            for it in items {
                if let EvalItem::Choice { seqs, .. } = it {
                    flat.extend(seqs.iter());
                }
            }
            let mut means = Vec::with_capacity(flat.len());
            for chunk in flat.chunks(self.config.eval_batch_size.max(1)) {
                let batch = pad_sequences::<B>(chunk, self.tok.pad_id, self.config.pad_to_multiple, device)?;
                let sums = to_host(continuation_logprobs(model, &batch))?;
                means.extend(sums.iter().zip(&batch.counts).map(|(s, &c)| s / c as f64));
            }
            let mut hits = 0usize;
            let mut at = 0usize;
            for it in items {
                if let EvalItem::Choice { seqs, correct } = it {
                    let scores = &means[at..at + seqs.len()];
                    at += seqs.len();
                    let mut best = 0;
                    for (j, s) in scores.iter().enumerate() {
                        if *s > scores[best] {
                            best = j;
                        }
                    }
                    hits += usize::from(correct.contains(&best));
                }
            }
            m.insert("accuracy".into(), hits as f64 / items.len().max(1) as f64);
        }
        Ok(m)
    }
}

impl<B: AutodiffBackend> Task<B> for Table3Task {
    type Model = LlamaForCausalLM<B>;

    fn name(&self) -> String {
        self.task.name().to_string()
    }

    fn epoch_plan(&self, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
        let lengths: Vec<usize> = self
            .train
            .iter()
            .map(|t| match t {
                TrainItem::Choice { seqs, .. } => seqs.iter().map(|s| s.ids.len()).max().unwrap_or(0),
                TrainItem::Lm(s) => s.ids.len(),
            })
            .collect();
        epoch_batches(&lengths, &BatchConfig::train(self.config.batch_size), seed, epoch as u64)
    }

    fn loss(&self, model: &Self::Model, batch: &[usize], device: &B::Device) -> Result<Tensor<B, 1>> {
        let mut seqs: Vec<&Sequence> = Vec::new();
        let mut groups = Vec::new();
        for &i in batch {
            match &self.train[i] {
                TrainItem::Choice { seqs: s, correct } => {
                    groups.push(ChoiceGroup { start: seqs.len(), len: s.len(), correct: *correct });
                    seqs.extend(s.iter());
                }
                TrainItem::Lm(s) => seqs.push(s),
            }
        }
        // on a GPU (lengths in buckets) every batch has a full batch's rows (the padding rows
        // belong to no group and carry no target token)
        let rows = if self.config.pad_to_multiple > 1 { self.config.batch_size * self.rows_per_item() } else { seqs.len() };
        let padded = pad_sequences_rows::<B>(&seqs, rows, self.tok.pad_id, self.config.pad_to_multiple, device)?;
        let sums = continuation_logprobs(model, &padded);
        Ok(if groups.is_empty() { sft_loss(sums, &padded.counts) } else { classification_loss(sums, &padded.counts, &groups) })
    }

    fn evaluate(&self, model: &<Self::Model as AutodiffModule<B>>::InnerModule, device: &B::Device) -> Result<Metrics> {
        let dev = self.metrics(model, &self.dev, device)?;
        let eval = match &self.eval {
            Some(e) => self.metrics(model, e, device)?,
            None => dev.clone(),
        };
        let mut out = BTreeMap::new();
        for (k, v) in dev {
            out.insert(format!("dev_{k}"), v);
        }
        for (k, v) in eval {
            out.insert(format!("eval_{k}"), v);
        }
        Ok(out)
    }

    fn main_metric(&self) -> (String, bool) {
        (format!("dev_{}", self.task.main_metric()), true)
    }
}
