//! Dropout as Hugging Face trains these models: probabilities from the checkpoint's
//! `config.json` (BERT/RoBERTa `hidden_dropout_prob`, `attention_probs_dropout_prob`,
//! `classifier_dropout`; LLaMA `attention_dropout`), optionally replaced by one value
//! ([`crate::tuning::Tuning::dropout`]).
//!
//! Dropout is active only on a backend that tracks gradients (burn's `Autodiff`, i.e. the
//! training forward); evaluation runs on the inner backend (`model.valid()`) and is unchanged.
//! Masks come from the backend's random generator: the training loop calls [`seed_step`] before
//! each step so that a run is reproducible and a resumed run draws the same masks as an
//! uninterrupted one.
use burn::tensor::{backend::Backend, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::json::JsonFile;

/// Dropout probabilities of a model (0 = off).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DropoutConfig {
    /// After the embeddings and after each sub-layer's output projection (BERT).
    pub hidden: f64,
    /// On the attention probabilities.
    pub attention: f64,
    /// Before each layer of the classification head.
    pub classifier: f64,
}

fn prob(j: &JsonFile, key: &str, default: f64) -> Result<f64> {
    // HF writes `null` for "not set" (e.g. `classifier_dropout`).
    let p = if j.get(key).is_some_and(|v| v.is_null()) { default } else { j.opt_f64(key)?.unwrap_or(default) };
    if !(0.0..1.0).contains(&p) {
        return Err(j.err(format!("`{key}` = {p}: a dropout probability must be in [0, 1)")));
    }
    Ok(p)
}

impl DropoutConfig {
    /// BERT/RoBERTa: HF's defaults (0.1, 0.1) where the keys are absent; `classifier_dropout`
    /// null or absent means `hidden_dropout_prob`, as in HF's classification heads.
    pub fn from_bert_json(j: &JsonFile) -> Result<Self> {
        let hidden = prob(j, "hidden_dropout_prob", 0.1)?;
        Ok(DropoutConfig {
            hidden,
            attention: prob(j, "attention_probs_dropout_prob", 0.1)?,
            classifier: prob(j, "classifier_dropout", hidden)?,
        })
    }

    /// LLaMA: `attention_dropout` (HF default 0); LLaMA has no other dropout.
    pub fn from_llama_json(j: &JsonFile) -> Result<Self> {
        Ok(DropoutConfig { hidden: 0.0, attention: prob(j, "attention_dropout", 0.0)?, classifier: 0.0 })
    }

    /// Every probability replaced by `p` (`--dropout P`); `None` keeps the checkpoint's values.
    /// A `p` outside [0, 1) is an error.
    pub fn with_override(self, p: Option<f64>) -> Result<Self> {
        match p {
            None => Ok(self),
            Some(p) if (0.0..1.0).contains(&p) => Ok(DropoutConfig { hidden: p, attention: p, classifier: p }),
            Some(p) => Err(crate::ModelError::input(format!("--dropout {p}: a dropout probability must be in [0, 1)"))),
        }
    }
}

/// Inverted dropout with probability `p`, only when the backend tracks gradients (training).
pub fn dropout<B: Backend, const D: usize>(x: Tensor<B, D>, p: f64) -> Tensor<B, D> {
    if p == 0.0 || !B::ad_enabled(&x.device()) {
        return x;
    }
    let keep = x.random_like(Distribution::Bernoulli(1.0 - p));
    x * keep * (1.0 / (1.0 - p))
}

/// Seeds the backend's random generator (dropout masks) for training step `global_step` of a
/// run with seed `run_seed`: call it before each step's forward pass. The seed mixes both with
/// SplitMix64, so consecutive steps and nearby run seeds get unrelated streams.
pub fn seed_step<B: Backend>(device: &B::Device, run_seed: u64, global_step: u64) {
    B::seed(device, step_seed(run_seed, global_step));
}

/// The seed [`seed_step`] uses.
pub fn step_seed(run_seed: u64, global_step: u64) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    mix(mix(run_seed) ^ global_step.wrapping_mul(0xD1B5_4A32_D192_ED03))
}
