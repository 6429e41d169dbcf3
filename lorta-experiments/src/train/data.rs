//! GLUE splits → tokenized examples (the checkpoint's tokenizer, its pair conventions,
//! truncation to the maximum length) and padded host batches → tensors.
use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use lorta_models::tokenizer::TextTokenizer;

use crate::glue::{self, Batch, Dataset, Encoded, GlueTask, Split};

/// Tokenized train and dev sets of one task.
pub struct TaskData {
    pub task: GlueTask,
    pub train: Vec<Encoded>,
    pub dev: Vec<Encoded>,
    pub pad_id: u32,
    pub train_source: String,
    pub dev_source: String,
    /// Rows the GLUE reader left out (ragged TSV rows), per file; written to the run's `data.json`.
    pub skipped_rows: Vec<SkippedRows>,
}

/// Rows of one data file that were left out.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SkippedRows {
    pub file: String,
    pub count: usize,
    /// 1-based line numbers (all of them: a file with more than a few is an error).
    pub lines: Vec<usize>,
    /// Reason of the first one.
    pub reason: String,
}

/// Prints one warning per file that left rows out and returns what was left out.
pub fn report_skipped(sets: &[&Dataset]) -> Vec<SkippedRows> {
    let mut out = Vec::new();
    for ds in sets {
        if let Some(w) = ds.skip_warning() {
            eprintln!("{w}");
            out.push(SkippedRows {
                file: ds.source.display().to_string(),
                count: ds.skipped.len(),
                lines: ds.skipped.iter().map(|(l, _)| *l).collect(),
                reason: ds.skipped[0].1.clone(),
            });
        }
    }
    out
}

pub fn encode_dataset(tok: &TextTokenizer, ds: &Dataset) -> Result<Vec<Encoded>> {
    ds.examples
        .iter()
        .enumerate()
        .map(|(i, ex)| {
            let e = match &ex.text_b {
                Some(b) => tok.encode_pair(&ex.text_a, b),
                None => tok.encode(&ex.text_a),
            }
            .with_context(|| format!("{}: example {} (0-based, in file order)", ds.source.display(), i))?;
            Ok(Encoded { input_ids: e.ids, token_type_ids: e.type_ids, label: ex.label })
        })
        .collect()
}

/// Loads and tokenizes train (first `max_train` examples in file order) and dev (first
/// `max_eval`).
pub fn load_task(
    glue_dir: &Path,
    task: GlueTask,
    model_dir: &Path,
    max_seq_len: usize,
    max_train: Option<usize>,
    max_eval: Option<usize>,
) -> Result<TaskData> {
    let tok = TextTokenizer::from_dir(model_dir, Some(max_seq_len))?;
    let train = glue::load_split(glue_dir, task, Split::Train)?.take(max_train);
    let dev = glue::load_split(glue_dir, task, Split::Dev)?.take(max_eval);
    let skipped_rows = report_skipped(&[&train, &dev]);
    anyhow::ensure!(!train.is_empty(), "{}: no training examples", train.source.display());
    anyhow::ensure!(!dev.is_empty(), "{}: no dev examples", dev.source.display());
    Ok(TaskData {
        task,
        train: encode_dataset(&tok, &train)?,
        dev: encode_dataset(&tok, &dev)?,
        pad_id: tok.pad_id(),
        train_source: train.source.display().to_string(),
        dev_source: dev.source.display().to_string(),
        skipped_rows,
    })
}

/// Device tensors of a padded batch.
pub struct TensorBatch<B: Backend> {
    pub input_ids: Tensor<B, 2, Int>,
    pub attention_mask: Tensor<B, 2, Int>,
    pub token_type_ids: Tensor<B, 2, Int>,
}

pub fn to_tensors<B: Backend>(b: &Batch, device: &B::Device) -> TensorBatch<B> {
    let shape = [b.batch, b.seq_len];
    let t = |v: &Vec<i64>| Tensor::<B, 2, Int>::from_data(TensorData::new(v.clone(), shape), device);
    TensorBatch { input_ids: t(&b.input_ids), attention_mask: t(&b.attention_mask), token_type_ids: t(&b.token_type_ids) }
}

/// Majority-class accuracy on `dev` given the train labels (the baseline a classifier must beat).
pub fn majority_baseline(train: &[Encoded], dev: &[Encoded]) -> Option<f64> {
    let mut counts = std::collections::BTreeMap::new();
    for e in train {
        *counts.entry(e.label.class()?).or_insert(0usize) += 1;
    }
    let (&maj, _) = counts.iter().max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c)))?;
    let hits = dev.iter().filter(|e| e.label.class() == Some(maj)).count();
    Some(hits as f64 / dev.len().max(1) as f64)
}
