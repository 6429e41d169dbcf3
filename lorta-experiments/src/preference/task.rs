//! The DPO training task. Policy = the adapted model; reference policy = the same model with
//! its adapter, prefixes and Houlsby adapters switched off ([`LlamaForCausalLM::without_tuning`]:
//! no second copy of the weights), run without autodiff. Sequence log-probs are sums over the
//! response tokens (prompt and padding masked), as TRL computes them.
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use lorta_models::llama::LlamaForCausalLM;
use serde::{Deserialize, Serialize};

use super::data::PreferencePair;
use crate::glue::{epoch_batches, BatchConfig};
use crate::lm::chat::{assistant, render_chat, system, ChatMessage};
use crate::lm::score::{continuation_logprobs, dpo_loss, dpo_stats, pad_sequences, pad_sequences_rows, to_host, DpoStats};
use crate::lm::{LmTokenizer, Sequence};
use crate::train::task::{Metrics, Task};

/// DPO settings (the paper's preset: β 0.1, max prompt 1024, max length 1536).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DpoConfig {
    pub beta: f64,
    pub max_prompt_len: usize,
    pub max_len: usize,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    /// Render prompts with the tokenizer's chat template instead of the Human/Assistant text.
    pub chat_template: bool,
    /// Padded lengths are multiples of this (GPU backends: 16, see `--pad-to-multiple`).
    #[serde(default = "one")]
    pub pad_to_multiple: usize,
}

fn one() -> usize {
    1
}

/// A tokenized pair.
#[derive(Clone, Debug)]
pub struct PairSeqs {
    pub chosen: Sequence,
    pub rejected: Sequence,
}

fn chat_prompt(p: &PreferencePair, tok: &LmTokenizer) -> Result<String> {
    if !tok.has_chat_template() {
        return Err(anyhow!("{}: no chat template (drop --chat-template)", tok.source));
    }
    let mut msgs = Vec::new();
    match (&p.system, &p.question) {
        (Some(s), Some(q)) => {
            if !s.trim().is_empty() {
                msgs.push(system(s.clone()));
            }
            msgs.push(ChatMessage::user(q.clone()));
        }
        _ => {
            // HH-RLHF transcript → alternating turns
            for chunk in p.prompt.split("\n\nHuman:").filter(|c| !c.trim().is_empty()) {
                let (human, reply) = match chunk.split_once("\n\nAssistant:") {
                    Some((h, a)) => (h, Some(a)),
                    None => (chunk, None),
                };
                msgs.push(ChatMessage::user(human.trim().to_string()));
                if let Some(a) = reply.filter(|a| !a.trim().is_empty()) {
                    msgs.push(assistant(a.trim().to_string()));
                }
            }
        }
    }
    render_chat(&msgs, true, tok)
}

/// Tokenizes pairs: prompt limited to `max_prompt_len` from the left, the whole to `max_len`,
/// each response followed by EOS (TRL appends it).
pub fn encode_pairs(pairs: &[PreferencePair], tok: &LmTokenizer, cfg: &DpoConfig) -> Result<Vec<PairSeqs>> {
    pairs
        .iter()
        .map(|p| {
            let (prompt, chosen, rejected) = if cfg.chat_template {
                (chat_prompt(p, tok)?, p.chosen.trim_start().to_string(), p.rejected.trim_start().to_string())
            } else {
                (p.prompt.clone(), p.chosen.clone(), p.rejected.clone())
            };
            let enc = |r: &str| tok.sequence_limited(&prompt, r, true, Some(cfg.max_prompt_len), cfg.max_len);
            Ok(PairSeqs { chosen: enc(&chosen)?, rejected: enc(&rejected)? })
        })
        .collect::<Result<Vec<_>>>()
        .context("tokenizing the preference pairs")
}

pub struct DpoTask {
    pub train: Vec<PairSeqs>,
    pub eval: Vec<PairSeqs>,
    pub pad_id: u32,
    pub config: DpoConfig,
    /// Reference log-probs of the evaluation pairs (constant: computed once).
    eval_ref: OnceLock<(Vec<f64>, Vec<f64>)>,
}

impl DpoTask {
    pub fn new(train: Vec<PairSeqs>, eval: Vec<PairSeqs>, pad_id: u32, config: DpoConfig) -> Self {
        DpoTask { train, eval, pad_id, config, eval_ref: OnceLock::new() }
    }

    /// (chosen, rejected) summed response log-probs of `pairs` under `model`, in chunks.
    pub fn logps<B: Backend>(&self, model: &LlamaForCausalLM<B>, pairs: &[&PairSeqs], device: &B::Device) -> Result<(Vec<f64>, Vec<f64>)> {
        let (mut c, mut r) = (Vec::new(), Vec::new());
        for chunk in pairs.chunks(self.config.eval_batch_size.max(1)) {
            let seqs: Vec<&Sequence> = chunk.iter().map(|p| &p.chosen).chain(chunk.iter().map(|p| &p.rejected)).collect();
            let batch = pad_sequences::<B>(&seqs, self.pad_id, self.config.pad_to_multiple, device)?;
            let v = to_host(continuation_logprobs(model, &batch))?;
            c.extend_from_slice(&v[..chunk.len()]);
            r.extend_from_slice(&v[chunk.len()..]);
        }
        Ok((c, r))
    }

    /// DPO loss and reward statistics of the evaluation pairs.
    pub fn eval_stats<B: Backend>(&self, model: &LlamaForCausalLM<B>, device: &B::Device) -> Result<DpoStats> {
        let pairs: Vec<&PairSeqs> = self.eval.iter().collect();
        let reference = model.without_tuning().ok_or_else(|| anyhow!("DPO needs a reference policy: use an adapter method, not full fine-tuning"))?;
        if self.eval_ref.get().is_none() {
            let r = self.logps(&reference, &pairs, device)?;
            let _ = self.eval_ref.set(r);
        }
        let (rc, rr) = self.eval_ref.get().expect("set above");
        let (pc, pr) = self.logps(model, &pairs, device)?;
        Ok(dpo_stats(&pc, &pr, rc, rr, self.config.beta))
    }
}

impl<B: AutodiffBackend> Task<B> for DpoTask {
    type Model = LlamaForCausalLM<B>;

    fn name(&self) -> String {
        "dpo".into()
    }

    fn epoch_plan(&self, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
        let lengths: Vec<usize> = self.train.iter().map(|p| p.chosen.ids.len().max(p.rejected.ids.len())).collect();
        epoch_batches(&lengths, &BatchConfig::train(self.config.batch_size), seed, epoch as u64)
    }

    fn loss(&self, model: &Self::Model, batch: &[usize], device: &B::Device) -> Result<Tensor<B, 1>> {
        let pairs: Vec<&PairSeqs> = batch.iter().map(|&i| &self.train[i]).collect();
        let n = pairs.len();
        // reference policy: the same weights, adapter off, no autodiff graph
        let reference = model.valid().without_tuning().ok_or_else(|| anyhow!("DPO needs a reference policy: use an adapter method, not full fine-tuning"))?;
        let seqs: Vec<&Sequence> = pairs.iter().map(|p| &p.chosen).chain(pairs.iter().map(|p| &p.rejected)).collect();
        // on a GPU (lengths in buckets) a partial batch keeps the full batch's rows; the padding
        // rows come after the chosen and rejected ones and carry no target token
        let rows = if self.config.pad_to_multiple > 1 { 2 * self.config.batch_size } else { seqs.len() };
        let ref_batch = pad_sequences_rows::<B::InnerBackend>(&seqs, rows, self.pad_id, self.config.pad_to_multiple, device)?;
        let refs = to_host(continuation_logprobs(&reference, &ref_batch))?;
        let batch = pad_sequences_rows::<B>(&seqs, rows, self.pad_id, self.config.pad_to_multiple, device)?;
        let sums = continuation_logprobs(model, &batch);
        let chosen = sums.clone().slice([0..n]);
        let rejected = sums.slice([n..2 * n]);
        Ok(dpo_loss(chosen, rejected, &refs[..n], &refs[n..2 * n], self.config.beta))
    }

    fn evaluate(&self, model: &<Self::Model as AutodiffModule<B>>::InnerModule, device: &B::Device) -> Result<Metrics> {
        let s = self.eval_stats(model, device)?;
        let mut m = Metrics::new();
        m.insert("loss".into(), s.loss);
        m.insert("rewards_accuracy".into(), s.rewards_accuracy);
        m.insert("rewards_margin".into(), s.rewards_margin);
        m.insert("rewards_chosen".into(), s.rewards_chosen);
        m.insert("rewards_rejected".into(), s.rewards_rejected);
        m.insert("logps_chosen".into(), s.logps_chosen);
        m.insert("logps_rejected".into(), s.logps_rejected);
        Ok(m)
    }

    fn main_metric(&self) -> (String, bool) {
        ("loss".into(), false)
    }
}
