//! Loading by architecture: [`LoadOptions`], [`Architecture`] detection from `config.json`, and
//! [`AutoModel`], the dispatch the CLI (`forward`, `generate`) and the parity tests share.
use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, DType, FloatDType, Tensor};
use serde_json::{json, Value};

use crate::bert::{int_batch, BertForSequenceClassification, BertModel};
use crate::error::{ModelError, Result};
use crate::esm::{EsmModel, EsmTokenizer};
use crate::esmfold::{EsmFold, FoldOptions};
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

/// What `config.json` describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// BERT / RoBERTa encoder (bare, or a pre-training checkpoint whose head is ignored).
    Encoder,
    /// `BertForSequenceClassification` / `RobertaForSequenceClassification`.
    SequenceClassification,
    /// `LlamaForCausalLM`.
    CausalLm,
    /// ESM-2 protein language model (`EsmModel`, `EsmForMaskedLM`: the stem).
    Esm,
    /// `EsmForProteinFolding` (ESMFold).
    ProteinFolding,
}

pub fn detect_architecture(config: &JsonFile) -> Result<Architecture> {
    let mt = config.opt_str("model_type")?.unwrap_or_default();
    let arch = config.architecture().unwrap_or_default();
    match mt.as_str() {
        "llama" => Ok(Architecture::CausalLm),
        "esm" => Ok(if arch == "EsmForProteinFolding" || config.opt_bool("is_folding_model")? == Some(true) {
            Architecture::ProteinFolding
        } else {
            Architecture::Esm
        }),
        "bert" | "roberta" | "xlm-roberta" => Ok(if arch.ends_with("ForSequenceClassification") {
            Architecture::SequenceClassification
        } else {
            Architecture::Encoder
        }),
        other => Err(config.err(format!(
            "unsupported model_type `{other}` (architectures {arch:?}); supported: bert, roberta (encoders, sequence classification), llama (causal LM), esm (ESM-2, ESMFold)"
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
    Esm(EsmModel<B>),
    ProteinFolding(EsmFold<B>),
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

/// Token ids per text and, for BERT-style tokenizers, token type ids.
pub type EncodedTexts = (Vec<Vec<u32>>, Option<Vec<Vec<u32>>>);

/// What `forward` writes.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardOutput {
    pub input_ids: Vec<Vec<u32>>,
    pub attention_mask: Vec<Vec<u32>>,
    /// `[batch][token][hidden]` (encoders, and the decoder's final normed hidden state).
    pub last_hidden_state: Option<Array>,
    /// `[batch][token][vocab]` (causal LM) or `[batch][labels]` (classification).
    pub logits: Option<Array>,
    /// Further named outputs (ESMFold: `s_s`, `s_z`, `distogram_logits`, `positions`).
    pub extra: Vec<(String, Array)>,
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
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.to_json());
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
            Architecture::Esm => AutoModel::Esm(EsmModel::load(dir, opts, device)?),
            Architecture::ProteinFolding => AutoModel::ProteinFolding(EsmFold::load(dir, opts, device)?),
        })
    }

    pub fn architecture(&self) -> Architecture {
        match self {
            AutoModel::Encoder(_) => Architecture::Encoder,
            AutoModel::Classifier(_) => Architecture::SequenceClassification,
            AutoModel::CausalLm(_) => Architecture::CausalLm,
            AutoModel::Esm(_) => Architecture::Esm,
            AutoModel::ProteinFolding(_) => Architecture::ProteinFolding,
        }
    }

    /// Padding id from the config (`pad_token_id`; LLaMA without one pads with 0).
    pub fn pad_id(&self) -> u32 {
        match self {
            AutoModel::Encoder(m) => m.config.pad_token_id as u32,
            AutoModel::Classifier(m) => m.encoder.config.pad_token_id as u32,
            AutoModel::CausalLm(m) => m.config.pad_token_id.unwrap_or(0),
            AutoModel::Esm(m) => m.config.pad_token_id as u32,
            // AlphaFold aatype inputs are padded with 0 (and masked)
            AutoModel::ProteinFolding(_) => 0,
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            AutoModel::Encoder(m) => m.config.vocab_size,
            AutoModel::Classifier(m) => m.encoder.config.vocab_size,
            AutoModel::CausalLm(m) => m.config.vocab_size,
            AutoModel::Esm(m) => m.config.vocab_size,
            AutoModel::ProteinFolding(_) => 21,
        }
    }

    fn device(&self) -> B::Device {
        match self {
            AutoModel::Encoder(m) => m.embeddings.word_embeddings.val().device(),
            AutoModel::Classifier(m) => m.encoder.embeddings.word_embeddings.val().device(),
            AutoModel::CausalLm(m) => m.model.embed_tokens.val().device(),
            AutoModel::Esm(m) => m.word_embeddings.val().device(),
            AutoModel::ProteinFolding(m) => m.distogram_head.weight.val().device(),
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
            AutoModel::Esm(m) => (Some(m.forward(ids_t, Some(mask_t))), None),
            AutoModel::ProteinFolding(_) => {
                return Err(ModelError::input("ESMFold: use AutoModel::fold (amino-acid sequences, recycles)"));
            }
        };
        Ok(ForwardOutput {
            input_ids: ids,
            attention_mask: mask,
            last_hidden_state: hidden.map(Array::from_tensor).transpose()?,
            logits,
            extra: Vec::new(),
        })
    }

    /// Token ids of texts with the folder's tokenizer: ESM's alphabet for ESM-2, AlphaFold
    /// residue indices for ESMFold (one-letter codes, unknown letters → X), else
    /// `tokenizer.json` / `vocab.txt` (WordPiece).
    pub fn encode_texts(&self, dir: &Path, texts: &[String]) -> Result<EncodedTexts> {
        match self {
            AutoModel::Esm(_) => {
                let tok = EsmTokenizer::from_dir(dir)?;
                Ok((texts.iter().map(|t| tok.encode(t)).collect(), None))
            }
            AutoModel::ProteinFolding(_) => {
                Ok((texts.iter().map(|t| crate::structure_module::aatype_of(t.trim())).collect(), None))
            }
            _ => {
                let tok = crate::tokenizer::TextTokenizer::from_dir(dir, None)?;
                let enc = texts.iter().map(|t| tok.encode(t)).collect::<Result<Vec<_>>>()?;
                Ok((enc.iter().map(|e| e.ids.clone()).collect(), Some(enc.into_iter().map(|e| e.type_ids).collect())))
            }
        }
    }

    /// ESMFold on residue-index sequences (right-padded and masked): `s_s`, `s_z`,
    /// `distogram_logits` and the final `positions` `[b, L, 14, 3]` (atom14, Å).
    pub fn fold(&self, seqs: &[Vec<u32>], num_recycles: usize) -> Result<ForwardOutput> {
        let AutoModel::ProteinFolding(m) = self else {
            return Err(ModelError::input("fold: the model is not an EsmForProteinFolding checkpoint"));
        };
        if seqs.is_empty() || seqs.iter().any(|s| s.is_empty()) {
            return Err(ModelError::input("fold: every sequence needs at least one residue"));
        }
        if let Some(bad) = seqs.iter().flatten().find(|&&t| t > 20) {
            return Err(ModelError::input(format!("residue index {bad} out of range (AlphaFold aatype 0..=20)")));
        }
        let n = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let ids: Vec<Vec<u32>> = seqs.iter().map(|s| s.iter().copied().chain(std::iter::repeat_n(0, n - s.len())).collect()).collect();
        let mask: Vec<Vec<u32>> = seqs.iter().map(|s| std::iter::repeat_n(1, s.len()).chain(std::iter::repeat_n(0, n - s.len())).collect()).collect();
        let device = self.device();
        let out = m.forward(int_batch::<B>(&ids, &device)?, int_batch::<B>(&mask, &device)?, FoldOptions { num_recycles, structure: true });
        let mut extra = vec![
            ("s_s".to_string(), Array::from_tensor(out.s_s)?),
            ("s_z".to_string(), Array::from_tensor(out.s_z)?),
            ("distogram_logits".to_string(), Array::from_tensor(out.distogram_logits)?),
        ];
        if let Some(st) = out.structure {
            extra.push(("positions".to_string(), Array::from_tensor(st.final_positions())?));
        }
        Ok(ForwardOutput { input_ids: ids, attention_mask: mask, last_hidden_state: None, logits: None, extra })
    }
}
