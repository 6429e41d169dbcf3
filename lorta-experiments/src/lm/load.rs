//! Where an LLM comes from: a Hugging Face folder (or a model name in the local HF cache), a
//! GGUF file, or a llama2.c checkpoint with its tokenizer file — whatever
//! `lorta_models::load::load_llama_any` reads. The model is built once per run (tuning, dtype).
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::DType;
use lorta_models::llama::LlamaForCausalLM;
use lorta_models::load::{load_llama_any, load_lm_tokenizer, parse_dtype, LoadOptions, LmFormat};
use lorta_models::tuning::Tuning;

use super::tokenize::LmTokenizer;

/// `f32`, `bf16`, `f16` → DType, with a clear error.
pub fn parse_dtype_name(s: &str) -> Result<DType> {
    parse_dtype(s).ok_or_else(|| anyhow!("unknown dtype `{s}` (f32, bf16, f16)"))
}

/// A resolved model source.
#[derive(Clone, Debug)]
pub struct LoadedLm {
    pub path: PathBuf,
    /// Tokenizer file for checkpoints without one (llama2.c).
    pub tokenizer: Option<PathBuf>,
}

/// Checks that `name` names a model we can load (for the one "missing inputs" message).
pub fn check_model(name: &str) -> Result<()> {
    resolve(name).map(|_| ())
}

/// A `.gguf` / llama2.c file as given, else an HF folder or cache name.
pub fn resolve(name: &str) -> Result<LoadedLm> {
    let p = Path::new(name);
    let path = if p.is_file() {
        p.to_path_buf()
    } else {
        lorta_models::hub::resolve_model_dir(name).map_err(|e| anyhow!("`{name}`: {e}"))?
    };
    LmFormat::detect(&path).map_err(|e| anyhow!("`{name}`: {e}"))?;
    Ok(LoadedLm { path, tokenizer: None })
}

impl LoadedLm {
    pub fn with_tokenizer(mut self, t: Option<PathBuf>) -> Self {
        self.tokenizer = t;
        self
    }

    pub fn describe(&self) -> String {
        self.path.display().to_string()
    }

    pub fn tokenizer(&self) -> Result<LmTokenizer> {
        let src = self.tokenizer.as_deref().unwrap_or(&self.path);
        let t = load_lm_tokenizer(src).with_context(|| format!("loading the tokenizer of {}", src.display()))?;
        Ok(LmTokenizer::new(t))
    }

    /// The model with `tuning` (fresh adapters etc.), weights in `dtype`, optionally an adapter folder.
    pub fn load_with<B: Backend>(&self, tuning: &Tuning, dtype: DType, adapter: Option<PathBuf>, device: &B::Device) -> Result<LlamaForCausalLM<B>> {
        let opts = LoadOptions { tuning: tuning.clone(), dtype, num_labels: None, adapter };
        let lm = load_llama_any::<B>(&self.path, self.tokenizer.as_deref(), &opts, device).with_context(|| format!("loading {}", self.path.display()))?;
        Ok(lm.model)
    }

    pub fn load<B: Backend>(&self, tuning: &Tuning, dtype: DType, device: &B::Device) -> Result<LlamaForCausalLM<B>> {
        self.load_with(tuning, dtype, None, device)
    }
}
