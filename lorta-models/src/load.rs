//! Loading by architecture: [`LoadOptions`], [`Architecture`] detection from `config.json`, and
//! [`AutoModel`], the dispatch the CLI (`forward`, `generate`) and the parity tests share;
//! [`load_llama_any`]: a LLaMA causal LM with its tokenizer from an HF folder, a GGUF file or a
//! llama2.c checkpoint.
use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, DType, FloatDType, Tensor};
use serde_json::{json, Value};

use crate::bert::{int_batch, BertForSequenceClassification, BertModel};
use crate::error::{ModelError, Result};
use crate::hub::ModelDir;
use crate::json::JsonFile;
use crate::llama::LlamaForCausalLM;
use crate::tuning::Tuning;

/// How to load a model.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    pub tuning: Tuning,
    /// Compute dtype: weights of any stored dtype are converted to it (F32 everywhere; F16 /
    /// BF16 where the backend supports them).
    pub dtype: DType,
    /// Label count of a classifier (a different count than the checkpoint's re-initialises
    /// the output layer).
    pub num_labels: Option<usize>,
    /// Adapter folder to load in place of `tuning.adapter`.
    pub adapter: Option<PathBuf>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { tuning: Tuning::frozen(), dtype: DType::F32, num_labels: None, adapter: None }
    }
}

impl LoadOptions {
    pub fn inference() -> Self {
        Self::default()
    }
    pub fn with_adapter(mut self, dir: Option<PathBuf>) -> Self {
        self.adapter = dir;
        self
    }
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }
}

/// Parses `f32`, `f16`/`float16`/`half`, `bf16`/`bfloat16`.
pub fn parse_dtype(s: &str) -> Option<DType> {
    Some(match s.to_ascii_lowercase().as_str() {
        "f32" | "float32" | "fp32" => DType::F32,
        "f16" | "float16" | "fp16" | "half" => DType::F16,
        "bf16" | "bfloat16" => DType::BF16,
        "f64" | "float64" | "fp64" => DType::F64,
        _ => return None,
    })
}

pub fn load_bert<B: Backend>(dir: &Path, opts: &LoadOptions, device: &B::Device) -> Result<BertModel<B>> {
    BertModel::load(dir, opts, device)
}
pub fn load_bert_classifier<B: Backend>(dir: &Path, opts: &LoadOptions, device: &B::Device) -> Result<BertForSequenceClassification<B>> {
    BertForSequenceClassification::load(dir, opts, device)
}
pub fn load_llama<B: Backend>(dir: &Path, opts: &LoadOptions, device: &B::Device) -> Result<LlamaForCausalLM<B>> {
    LlamaForCausalLM::load(dir, opts, device)
}

/// The file formats [`load_llama_any`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LmFormat {
    /// A Hugging Face checkpoint folder.
    HfDir,
    /// A `.gguf` file (LLaMA architecture).
    Gguf,
    /// A llama2.c `.bin` checkpoint (v0 layout).
    Llama2c,
}

impl LmFormat {
    /// A folder is HF, a file starting with the GGUF magic is GGUF, any other file llama2.c.
    pub fn detect(path: &Path) -> Result<Self> {
        if path.is_dir() {
            Ok(LmFormat::HfDir)
        } else if path.is_file() {
            Ok(if crate::gguf::is_gguf(path) { LmFormat::Gguf } else { LmFormat::Llama2c })
        } else {
            Err(ModelError::file(path, "no such model file or folder (expected an HF folder, a .gguf file or a llama2.c .bin)"))
        }
    }
}

/// A causal LM and its tokenizer (None: an HF folder without tokenizer.json, or a llama2.c
/// checkpoint without `--tokenizer`).
#[derive(Debug)]
pub struct LoadedLm<B: Backend> {
    pub model: LlamaForCausalLM<B>,
    pub tokenizer: Option<Box<dyn crate::lm_tokenizer::LmTokenizer>>,
    pub format: LmFormat,
}

impl<B: Backend> LoadedLm<B> {
    /// The tokenizer, or an error saying how to get one.
    pub fn tokenizer(&self) -> Result<&dyn crate::lm_tokenizer::LmTokenizer> {
        self.tokenizer.as_deref().ok_or_else(|| {
            ModelError::input(match self.format {
                LmFormat::Llama2c => "a llama2.c checkpoint needs its tokenizer file (--tokenizer tok512.bin)",
                _ => "the model has no tokenizer (no tokenizer.json in the folder); pass a tokenizer file",
            })
        })
    }

    /// Stop ids for generation: the tokenizer's EOS ids, else the config's.
    pub fn stop_ids(&self) -> Vec<u32> {
        let mut ids = self.model.config.eos_token_ids.clone();
        if let Some(t) = &self.tokenizer {
            for e in t.eos_ids() {
                if !ids.contains(&e) {
                    ids.push(e);
                }
            }
        }
        ids
    }
}

/// A tokenizer file given next to the model: a llama2.c tokenizer `.bin`, a `tokenizer.json`, a
/// GGUF file (its tokenizer metadata) or an HF folder.
pub fn load_lm_tokenizer(path: &Path) -> Result<Box<dyn crate::lm_tokenizer::LmTokenizer>> {
    use crate::lm_tokenizer::{HfLmTokenizer, SpmLmTokenizer};
    if path.is_dir() {
        return Ok(Box::new(HfLmTokenizer::from_dir(path)?));
    }
    if crate::gguf::is_gguf(path) {
        return crate::gguf::GgufFile::open(path)?.tokenizer();
    }
    if path.extension().is_some_and(|e| e == "json") {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| ModelError::file(path, format!("tokenizer: {e}")))?;
        return Ok(Box::new(HfLmTokenizer { inner, bos: None, eos: vec![], pad: None, template: None, origin: path.to_path_buf() }));
    }
    Ok(Box::new(SpmLmTokenizer::from_llama2c_file(path)?))
}

/// A LLaMA causal LM from an HF folder, a GGUF file or a llama2.c checkpoint (format from
/// [`LmFormat::detect`]), with `opts` (tuning, adapter, dtype) applied the same way for all.
/// The tokenizer comes from `tokenizer` when given, else from the model (folder / GGUF
/// metadata); llama2.c checkpoints carry none.
pub fn load_llama_any<B: Backend>(path: &Path, tokenizer: Option<&Path>, opts: &LoadOptions, device: &B::Device) -> Result<LoadedLm<B>> {
    let format = LmFormat::detect(path)?;
    let (model, own_tok): (LlamaForCausalLM<B>, Option<Box<dyn crate::lm_tokenizer::LmTokenizer>>) = match format {
        LmFormat::HfDir => {
            let tok = if tokenizer.is_none() && path.join("tokenizer.json").is_file() {
                Some(Box::new(crate::lm_tokenizer::HfLmTokenizer::from_dir(path)?) as Box<dyn crate::lm_tokenizer::LmTokenizer>)
            } else {
                None
            };
            (LlamaForCausalLM::load(path, opts, device)?, tok)
        }
        LmFormat::Gguf => {
            let file = crate::gguf::GgufFile::open(path)?;
            let tok = if tokenizer.is_none() && file.get("tokenizer.ggml.model").is_some() { Some(file.tokenizer()?) } else { None };
            (file.load_model(opts, device)?, tok)
        }
        LmFormat::Llama2c => (crate::llama2c::load_llama2c(path, opts, device)?, None),
    };
    let tokenizer = match tokenizer {
        Some(t) => Some(load_lm_tokenizer(t)?),
        None => own_tok,
    };
    if let Some(t) = &tokenizer {
        if t.vocab_size() > model.config.vocab_size {
            return Err(ModelError::file(
                t.source(),
                format!("tokenizer has {} tokens, more than the model's vocab_size {} ({})", t.vocab_size(), model.config.vocab_size, path.display()),
            ));
        }
    }
    Ok(LoadedLm { model, tokenizer, format })
}

/// What `config.json` describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// BERT / RoBERTa encoder (bare, or a pre-training checkpoint whose head is ignored).
    Encoder,
    /// `BertForSequenceClassification` / `RobertaForSequenceClassification`.
    SequenceClassification,
    /// `LlamaForCausalLM`.
    CausalLm,
}

pub fn detect_architecture(config: &JsonFile) -> Result<Architecture> {
    let mt = config.opt_str("model_type")?.unwrap_or_default();
    let arch = config.architecture().unwrap_or_default();
    match mt.as_str() {
        "llama" => Ok(Architecture::CausalLm),
        "bert" | "roberta" | "xlm-roberta" => Ok(if arch.ends_with("ForSequenceClassification") {
            Architecture::SequenceClassification
        } else {
            Architecture::Encoder
        }),
        other => Err(config.err(format!(
            "unsupported model_type `{other}` (architectures {arch:?}); supported: bert, roberta (encoders, sequence classification), llama (causal LM)"
        ))),
    }
}

/// Any supported model, chosen from `config.json`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AutoModel<B: Backend> {
    Encoder(BertModel<B>),
    Classifier(BertForSequenceClassification<B>),
    CausalLm(LlamaForCausalLM<B>),
}

/// A dense f32 array with its shape (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Array {
    pub fn from_tensor<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Self> {
        let shape = t.dims().to_vec();
        let t = if t.dtype() == DType::F32 { t } else { t.cast(FloatDType::F32) };
        let data = t.into_data().to_vec::<f32>().map_err(|e| ModelError::input(format!("reading tensor: {e:?}")))?;
        Ok(Array { shape, data })
    }
    /// Element at a multi-index.
    pub fn at(&self, idx: &[usize]) -> f32 {
        let mut off = 0;
        for (i, &x) in idx.iter().enumerate() {
            off = off * self.shape[i] + x;
        }
        self.data[off]
    }
    /// Nested JSON arrays.
    pub fn to_json(&self) -> Value {
        fn rec(shape: &[usize], data: &[f32]) -> Value {
            if shape.len() == 1 {
                return Value::Array(data.iter().map(|&x| json!(x)).collect());
            }
            let step = shape[1..].iter().product::<usize>();
            Value::Array(data.chunks(step.max(1)).take(shape[0]).map(|c| rec(&shape[1..], c)).collect())
        }
        rec(&self.shape, &self.data)
    }
}

/// What `forward` writes.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardOutput {
    pub input_ids: Vec<Vec<u32>>,
    pub attention_mask: Vec<Vec<u32>>,
    /// `[batch][token][hidden]` (encoders, and the decoder's final normed hidden state).
    pub last_hidden_state: Option<Array>,
    /// `[batch][token][vocab]` (causal LM) or `[batch][labels]` (classification).
    pub logits: Option<Array>,
}

impl ForwardOutput {
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("input_ids".into(), json!(self.input_ids));
        m.insert("attention_mask".into(), json!(self.attention_mask));
        if let Some(h) = &self.last_hidden_state {
            m.insert("last_hidden_state".into(), h.to_json());
        }
        if let Some(l) = &self.logits {
            m.insert("logits".into(), l.to_json());
        }
        Value::Object(m)
    }
}

impl<B: Backend> AutoModel<B> {
    pub fn load(dir: &Path, opts: &LoadOptions, device: &B::Device) -> Result<Self> {
        let md = ModelDir::new(dir)?;
        Ok(match detect_architecture(&md.config()?)? {
            Architecture::Encoder => AutoModel::Encoder(BertModel::load(dir, opts, device)?),
            Architecture::SequenceClassification => AutoModel::Classifier(BertForSequenceClassification::load(dir, opts, device)?),
            Architecture::CausalLm => AutoModel::CausalLm(LlamaForCausalLM::load(dir, opts, device)?),
        })
    }

    pub fn architecture(&self) -> Architecture {
        match self {
            AutoModel::Encoder(_) => Architecture::Encoder,
            AutoModel::Classifier(_) => Architecture::SequenceClassification,
            AutoModel::CausalLm(_) => Architecture::CausalLm,
        }
    }

    /// Padding id from the config (`pad_token_id`; LLaMA without one pads with 0).
    pub fn pad_id(&self) -> u32 {
        match self {
            AutoModel::Encoder(m) => m.config.pad_token_id as u32,
            AutoModel::Classifier(m) => m.encoder.config.pad_token_id as u32,
            AutoModel::CausalLm(m) => m.config.pad_token_id.unwrap_or(0),
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            AutoModel::Encoder(m) => m.config.vocab_size,
            AutoModel::Classifier(m) => m.encoder.config.vocab_size,
            AutoModel::CausalLm(m) => m.config.vocab_size,
        }
    }

    fn device(&self) -> B::Device {
        match self {
            AutoModel::Encoder(m) => m.embeddings.word_embeddings.val().device(),
            AutoModel::Classifier(m) => m.encoder.embeddings.word_embeddings.val().device(),
            AutoModel::CausalLm(m) => m.model.embed_tokens.val().device(),
        }
    }

    /// Runs the model on token id sequences, right-padded with [`pad_id`](Self::pad_id) and
    /// masked. `type_ids` (encoders) default to 0.
    pub fn forward_ids(&self, seqs: &[Vec<u32>], type_ids: Option<&[Vec<u32>]>) -> Result<ForwardOutput> {
        if seqs.is_empty() || seqs.iter().any(|s| s.is_empty()) {
            return Err(ModelError::input("forward: every sequence needs at least one token id"));
        }
        let vocab = self.vocab_size();
        if let Some(bad) = seqs.iter().flatten().find(|&&t| t as usize >= vocab) {
            return Err(ModelError::input(format!("token id {bad} out of range (vocab_size {vocab})")));
        }
        let pad = self.pad_id();
        let n = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let ids: Vec<Vec<u32>> = seqs.iter().map(|s| s.iter().copied().chain(std::iter::repeat_n(pad, n - s.len())).collect()).collect();
        let mask: Vec<Vec<u32>> = seqs.iter().map(|s| std::iter::repeat_n(1, s.len()).chain(std::iter::repeat_n(0, n - s.len())).collect()).collect();
        let types: Vec<Vec<u32>> = match type_ids {
            Some(t) => seqs
                .iter()
                .zip(t)
                .map(|(s, t)| {
                    let mut v: Vec<u32> = t.iter().copied().take(s.len()).collect();
                    v.resize(n, 0);
                    v
                })
                .collect(),
            None => vec![vec![0; n]; seqs.len()],
        };
        let device = self.device();
        let ids_t = int_batch::<B>(&ids, &device)?;
        let mask_t = int_batch::<B>(&mask, &device)?;
        let types_t = int_batch::<B>(&types, &device)?;
        let (hidden, logits) = match self {
            AutoModel::Encoder(m) => (Some(m.forward(ids_t, Some(mask_t), Some(types_t))), None),
            AutoModel::Classifier(m) => {
                let h = m.encoder.forward(ids_t, Some(mask_t), Some(types_t));
                let l = Array::from_tensor(m.head(h.clone()))?;
                (Some(h), Some(l))
            }
            AutoModel::CausalLm(m) => {
                let h = m.forward_hidden(ids_t, Some(mask_t), None);
                let l = Array::from_tensor(m.logits(h.clone()))?;
                (Some(h), Some(l))
            }
        };
        Ok(ForwardOutput {
            input_ids: ids,
            attention_mask: mask,
            last_hidden_state: hidden.map(Array::from_tensor).transpose()?,
            logits,
        })
    }
}
