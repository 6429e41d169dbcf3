//! Where an LLM comes from: a Hugging Face folder (config.json, safetensors, tokenizer.json) or
//! a model name in the local HF cache. The model is built once per run (tuning, dtype) from it.
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::DType;
use lorta_models::llama::LlamaForCausalLM;
use lorta_models::load::{parse_dtype, LoadOptions};
use lorta_models::tuning::Tuning;

use super::tokenize::LmTokenizer;

/// `f32`, `bf16`, `f16` → DType, with a clear error.
pub fn parse_dtype_name(s: &str) -> Result<DType> {
    parse_dtype(s).ok_or_else(|| anyhow!("unknown dtype `{s}` (f32, bf16, f16)"))
}

/// A resolved model source.
#[derive(Clone, Debug)]
pub enum LoadedLm {
    HfDir(PathBuf),
}

/// Checks that `name` names a model we can load (for the one "missing inputs" message).
pub fn check_model(name: &str) -> Result<()> {
    resolve(name).map(|_| ())
}

pub fn resolve(name: &str) -> Result<LoadedLm> {
    let dir = lorta_models::hub::resolve_model_dir(name).map_err(|e| anyhow!("`{name}`: {e}"))?;
    if !dir.join("tokenizer.json").is_file() {
        return Err(anyhow!("{}: no tokenizer.json (an LLM run needs the model's tokenizer)", dir.display()));
    }
    Ok(LoadedLm::HfDir(dir))
}

impl LoadedLm {
    pub fn describe(&self) -> String {
        match self {
            LoadedLm::HfDir(d) => d.display().to_string(),
        }
    }

    pub fn tokenizer(&self) -> Result<LmTokenizer> {
        match self {
            LoadedLm::HfDir(d) => LmTokenizer::from_dir(d).with_context(|| format!("loading the tokenizer of {}", d.display())),
        }
    }

    /// The model with `tuning` (fresh adapters etc.), weights in `dtype`, optionally an adapter folder.
    pub fn load_with<B: Backend>(&self, tuning: &Tuning, dtype: DType, adapter: Option<PathBuf>, device: &B::Device) -> Result<LlamaForCausalLM<B>> {
        match self {
            LoadedLm::HfDir(d) => {
                let opts = LoadOptions { tuning: tuning.clone(), dtype, num_labels: None, adapter };
                LlamaForCausalLM::load(d, &opts, device).with_context(|| format!("loading {}", d.display()))
            }
        }
    }

    pub fn load<B: Backend>(&self, tuning: &Tuning, dtype: DType, device: &B::Device) -> Result<LlamaForCausalLM<B>> {
        self.load_with(tuning, dtype, None, device)
    }
}
