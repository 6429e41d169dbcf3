//! The SFT training task: response-only NLL on (optionally packed) Alpaca sequences; evaluation
//! = the same loss on held-out examples (and its perplexity).
use anyhow::Result;
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use lorta_models::llama::LlamaForCausalLM;

use crate::glue::{epoch_batches, BatchConfig};
use crate::lm::score::{continuation_logprobs, pad_sequences, pad_sequences_rows, sft_loss, to_host};
use crate::lm::Sequence;
use crate::train::task::{Metrics, Task};

pub struct SftTask {
    pub train: Vec<Sequence>,
    pub eval: Vec<Sequence>,
    pub pad_id: u32,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    /// Padded lengths are multiples of this (GPU backends: 16, see `--pad-to-multiple`).
    pub pad_to_multiple: usize,
}

impl SftTask {
    /// Mean response-token NLL over `seqs` (token-weighted).
    pub fn mean_nll<B: Backend>(&self, model: &LlamaForCausalLM<B>, seqs: &[Sequence], device: &B::Device) -> Result<f64> {
        let (mut total, mut tokens) = (0.0, 0usize);
        for chunk in seqs.chunks(self.eval_batch_size.max(1)) {
            let refs: Vec<&Sequence> = chunk.iter().collect();
            let batch = pad_sequences::<B>(&refs, self.pad_id, self.pad_to_multiple, device)?;
            total -= to_host(continuation_logprobs(model, &batch))?.iter().sum::<f64>();
            tokens += batch.counts.iter().sum::<usize>();
        }
        Ok(total / tokens.max(1) as f64)
    }
}

impl<B: AutodiffBackend> Task<B> for SftTask {
    type Model = LlamaForCausalLM<B>;

    fn name(&self) -> String {
        "sft".into()
    }

    fn epoch_plan(&self, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
        let lengths: Vec<usize> = self.train.iter().map(|s| s.ids.len()).collect();
        epoch_batches(&lengths, &BatchConfig::train(self.batch_size), seed, epoch as u64)
    }

    fn loss(&self, model: &Self::Model, batch: &[usize], device: &B::Device) -> Result<Tensor<B, 1>> {
        let seqs: Vec<&Sequence> = batch.iter().map(|&i| &self.train[i]).collect();
        // on a GPU (lengths in buckets) a partial batch keeps the full batch's rows
        let rows = if self.pad_to_multiple > 1 { self.batch_size } else { seqs.len() };
        let padded = pad_sequences_rows::<B>(&seqs, rows, self.pad_id, self.pad_to_multiple, device)?;
        Ok(sft_loss(continuation_logprobs(model, &padded), &padded.counts))
    }

    fn evaluate(&self, model: &<Self::Model as AutodiffModule<B>>::InnerModule, device: &B::Device) -> Result<Metrics> {
        let nll = self.mean_nll(model, &self.eval, device)?;
        let mut m = Metrics::new();
        m.insert("eval_loss".into(), nll);
        m.insert("eval_perplexity".into(), nll.exp());
        Ok(m)
    }

    fn main_metric(&self) -> (String, bool) {
        ("eval_loss".into(), false)
    }
}
