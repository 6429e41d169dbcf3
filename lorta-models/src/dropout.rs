//! Dropout as Hugging Face trains these models: probabilities from the checkpoint's
//! `config.json` (BERT/RoBERTa `hidden_dropout_prob`, `attention_probs_dropout_prob`,
//! `classifier_dropout`; LLaMA `attention_dropout`), optionally replaced by one value
//! ([`crate::tuning::Tuning::dropout`]).
//!
//! Dropout is active only on a backend that tracks gradients (burn's `Autodiff`, i.e. the
//! training forward); evaluation runs on the inner backend (`model.valid()`) and is unchanged.
//! Masks come from the backend's random generator (on the device), or with [`set_host_masks`]
//! from a counter-based generator on the host, filled on every core: burn-ndarray draws its
//! masks one element at a time from ChaCha on one thread, ~10 % of a CPU training step. Either
//! way the training loop calls [`seed_step`] before each step, so a run is reproducible and a
//! resumed run draws the same masks as an uninterrupted one.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use burn::tensor::{backend::Backend, DType, Distribution, Tensor, TensorData};
use rayon::prelude::*;
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

static HOST_MASKS: AtomicBool = AtomicBool::new(false);
/// The host generator's stream: the step's seed and the number of masks drawn since.
static HOST_STREAM: Mutex<(u64, u64)> = Mutex::new((0, 0));

/// Draw dropout masks on the host (all cores) instead of with the backend's generator: for CPU
/// backends, where "uploading" a mask is a copy. GPU backends keep their device generator.
pub fn set_host_masks(on: bool) {
    HOST_MASKS.store(on, Ordering::Relaxed);
}

/// Inverted dropout with probability `p`, only when the backend tracks gradients (training).
pub fn dropout<B: Backend, const D: usize>(x: Tensor<B, D>, p: f64) -> Tensor<B, D> {
    if p == 0.0 || !B::ad_enabled(&x.device()) {
        return x;
    }
    let scale = 1.0 / (1.0 - p);
    if HOST_MASKS.load(Ordering::Relaxed) && x.dtype() == DType::F32 {
        let (shape, device) = (x.shape(), x.device());
        let mask = host_mask(shape.num_elements(), p, scale as f32);
        return x * Tensor::from_data(TensorData::new(mask, shape), &device);
    }
    // the mask is a constant: scaling it first leaves one tracked product
    let keep = x.random_like(Distribution::Bernoulli(1.0 - p)).mul_scalar(scale);
    x * keep
}

/// `n` mask values, each `scale` with probability `1 − p` and else 0, from the host stream: value
/// `i` of the `c`-th mask since [`seed_step`] is a SplitMix64 output of (step seed, c, i), so the
/// result does not depend on the number of threads.
fn host_mask(n: usize, p: f64, scale: f32) -> Vec<f32> {
    let (seed, call) = {
        let mut s = HOST_STREAM.lock().unwrap_or_else(|e| e.into_inner());
        s.1 += 1;
        (s.0, s.1)
    };
    mask_values(seed, call, n, p, scale)
}

fn mask_values(seed: u64, call: u64, n: usize, p: f64, scale: f32) -> Vec<f32> {
    let base = mix(seed ^ call.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    // keep when the top 32 bits fall below (1 − p)·2³²
    let threshold = ((1.0 - p) * 4_294_967_296.0) as u64;
    (0..n as u64)
        .into_par_iter()
        .map(|i| if mix(base.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))) >> 32 < threshold { scale } else { 0.0 })
        .collect()
}

/// Seeds the dropout masks (the backend's generator and the host stream) for training step
/// `global_step` of a run with seed `run_seed`: call it before each step's forward pass. The seed
/// mixes both with SplitMix64, so consecutive steps and nearby run seeds get unrelated streams.
pub fn seed_step<B: Backend>(device: &B::Device, run_seed: u64, global_step: u64) {
    let seed = step_seed(run_seed, global_step);
    B::seed(device, seed);
    *HOST_STREAM.lock().unwrap_or_else(|e| e.into_inner()) = (seed, 0);
}

/// SplitMix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed [`seed_step`] uses.
pub fn step_seed(run_seed: u64, global_step: u64) -> u64 {
    let next = |z: u64| mix(z.wrapping_add(0x9E37_79B9_7F4A_7C15));
    next(next(run_seed) ^ global_step.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_seeds_differ_by_step_and_seed() {
        let mut u: Vec<u64> = (0..100).map(|s| step_seed(42, s)).collect();
        u.sort();
        u.dedup();
        assert_eq!(u.len(), 100);
        assert_ne!(step_seed(1, 0), step_seed(2, 0));
        assert_eq!(step_seed(7, 3), step_seed(7, 3));
    }

    #[test]
    fn host_masks_keep_one_minus_p_scaled_and_are_reproducible() {
        let (n, p) = (400_000, 0.1);
        let m = mask_values(7, 1, n, p, (1.0 / (1.0 - p)) as f32);
        let kept = m.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        // binomial standard deviation ~5e-4: 0.9 ± 0.003 cannot fail by chance
        assert!((kept - 0.9).abs() < 0.003, "kept fraction {kept}");
        assert!(m.iter().all(|&v| v == 0.0 || v == (1.0 / 0.9) as f32));
        // the same (seed, call) gives the same mask, whatever the chunking across threads
        assert_eq!(m, mask_values(7, 1, n, p, (1.0 / 0.9) as f32));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(m, pool.install(|| mask_values(7, 1, n, p, (1.0 / 0.9) as f32)));
        // another call or another step's seed gives an unrelated mask (agreement ~ 0.9² + 0.1²)
        for other in [mask_values(7, 2, n, p, 1.0 / 0.9), mask_values(8, 1, n, p, 1.0 / 0.9)] {
            let same = m.iter().zip(&other).filter(|(a, b)| (**a == 0.0) == (**b == 0.0)).count() as f64 / n as f64;
            assert!((same - 0.82).abs() < 0.005, "agreement {same}");
        }
        // runs of zeros and keeps are not periodic: neighbours are independent too
        let pairs = m.windows(2).filter(|w| w[0] == 0.0 && w[1] == 0.0).count() as f64 / n as f64;
        assert!((pairs - 0.01).abs() < 0.002, "adjacent drops {pairs}");
    }
}
