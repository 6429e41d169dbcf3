//! ESM-2 protein language model (`model_type` `esm`, HF `EsmModel`), HF names kept:
//! `embeddings.word_embeddings`, `encoder.layer.{l}.attention.{LayerNorm, self.{query,key,value},
//! output.dense}`, `encoder.layer.{l}.{LayerNorm, intermediate.dense, output.dense}`,
//! `encoder.emb_layer_norm_after`; checkpoints with or without the `esm.` prefix
//! (`EsmForMaskedLM`, `EsmForProteinFolding` hold the stem under `esm.`).
//!
//! Differences from BERT: pre-LayerNorm blocks, a final `emb_layer_norm_after`, the query is
//! scaled by `1/√d_h` *before* the rotary embedding (ESM's order), exact-erf GELU, and token
//! dropout: with `token_dropout` the `<mask>` embeddings are zeroed and every embedding is
//! rescaled by `(1 − 0.15·0.8) / (1 − mask_ratio_observed)` (the inference-time form of
//! training's mask dropout; without masks the factor is 0.88).
use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{backend::Backend, Bool, DType, FloatDType, Int, Tensor};
use lorta_core::{AdapterSet, AdapterStep, ArchNaming, MatrixKind, ModelShape, Site};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::hub::ModelDir;
use crate::json::JsonFile;
use crate::load::LoadOptions;
use crate::nn::{downcast, merge_heads, split_heads, upcast, persistent_weights, Builder, HfLinear, Init, LayerNorm, MASK_VALUE};
use crate::tuning::{cast_module, Tuning};
use crate::weights::Weights;

/// Masking ratio used in every ESM training run (15 % selected, 80 % of those masked).
pub const ESM_MASK_RATIO_TRAIN: f64 = 0.15 * 0.8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EsmPositions {
    /// ESM-2: rotary embeddings on q and k.
    Rotary,
    /// ESM-1b: learned absolute positions (RoBERTa-style ids after the padding index).
    Absolute,
}

/// The fields of an ESM `config.json` this implementation uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EsmConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub position_embedding_type: EsmPositions,
    pub rope_theta: f64,
    pub layer_norm_eps: f64,
    pub emb_layer_norm_before: bool,
    pub token_dropout: bool,
    pub mask_token_id: Option<usize>,
    pub pad_token_id: usize,
    pub architecture: Option<String>,
}

impl EsmConfig {
    pub fn from_json(j: &JsonFile) -> Result<Self> {
        let mt = j.opt_str("model_type")?.unwrap_or_default();
        if mt != "esm" {
            return Err(j.err(format!("model_type `{mt}` is not `esm`")));
        }
        let position_embedding_type = match j.opt_str("position_embedding_type")?.as_deref() {
            None | Some("absolute") => EsmPositions::Absolute,
            Some("rotary") => EsmPositions::Rotary,
            Some(other) => return Err(j.err(format!("unsupported position_embedding_type `{other}` (rotary, absolute)"))),
        };
        if j.opt_bool("is_decoder")? == Some(true) {
            return Err(j.err("decoder ESM configs are not supported"));
        }
        let c = EsmConfig {
            vocab_size: j.usize("vocab_size")?,
            hidden_size: j.usize("hidden_size")?,
            num_hidden_layers: j.usize("num_hidden_layers")?,
            num_attention_heads: j.usize("num_attention_heads")?,
            intermediate_size: j.usize("intermediate_size")?,
            max_position_embeddings: j.opt_usize("max_position_embeddings")?.unwrap_or(1026),
            position_embedding_type,
            rope_theta: j.opt_f64("rope_theta")?.unwrap_or(10000.0),
            layer_norm_eps: j.opt_f64("layer_norm_eps")?.unwrap_or(1e-12),
            emb_layer_norm_before: j.opt_bool("emb_layer_norm_before")?.unwrap_or(false),
            token_dropout: j.opt_bool("token_dropout")?.unwrap_or(false),
            mask_token_id: j.opt_usize("mask_token_id")?,
            pad_token_id: j.opt_usize("pad_token_id")?.unwrap_or(1),
            architecture: j.architecture(),
        };
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(j.err(format!("hidden_size {} is not divisible by num_attention_heads {}", c.hidden_size, c.num_attention_heads)));
        }
        if c.token_dropout && c.mask_token_id.is_none() {
            return Err(j.err("token_dropout = true needs `mask_token_id`"));
        }
        Ok(c)
    }

    /// ESM-2 35M (`esm2_t12_35M_UR50D`), the paper's language model.
    pub fn esm2_35m() -> Self {
        EsmConfig {
            vocab_size: 33,
            hidden_size: 480,
            num_hidden_layers: 12,
            num_attention_heads: 20,
            intermediate_size: 1920,
            max_position_embeddings: 1026,
            position_embedding_type: EsmPositions::Rotary,
            rope_theta: 10000.0,
            layer_norm_eps: 1e-5,
            emb_layer_norm_before: false,
            token_dropout: true,
            mask_token_id: Some(32),
            pad_token_id: 1,
            architecture: Some("EsmForMaskedLM".into()),
        }
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    pub fn shape(&self) -> ModelShape {
        ModelShape::new(self.hidden_size, self.num_attention_heads, self.num_hidden_layers, self.intermediate_size)
    }

    /// HF's default rotary inverse frequencies `1 / θ^(2i/d_h)`.
    pub fn inv_freq(&self) -> Vec<f32> {
        let dh = self.head_dim();
        (0..dh / 2).map(|i| 1.0 / (self.rope_theta as f32).powf((2 * i) as f32 / dh as f32)).collect()
    }
}

/// ESM's tokenizer: a `vocab.txt` alphabet (`<cls> <pad> <eos> <unk>`, amino-acid letters, …,
/// `<mask>`). Text splits into `<…>` special tokens and single letters (whitespace ignored);
/// a run of letters outside the alphabet is one `<unk>` (as HF's trie + whitespace split does);
/// the encoding is `<cls> … <eos>`.
#[derive(Clone, Debug)]
pub struct EsmTokenizer {
    pub tokens: Vec<String>,
    index: HashMap<String, u32>,
    pub cls_id: u32,
    pub eos_id: u32,
    pub pad_id: u32,
    pub unk_id: u32,
    pub mask_id: Option<u32>,
}

impl EsmTokenizer {
    pub fn from_vocab(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_tokens(text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
            .map_err(|m| ModelError::file(path, m))
    }

    pub fn from_tokens(tokens: Vec<String>) -> std::result::Result<Self, String> {
        let index: HashMap<String, u32> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let id = |t: &str| index.get(t).copied().ok_or_else(|| format!("ESM vocabulary has no `{t}` token"));
        Ok(EsmTokenizer {
            cls_id: id("<cls>")?,
            eos_id: id("<eos>")?,
            pad_id: id("<pad>")?,
            unk_id: id("<unk>")?,
            mask_id: index.get("<mask>").copied(),
            index,
            tokens,
        })
    }

    pub fn from_dir(dir: &Path) -> Result<Self> {
        let p = dir.join("vocab.txt");
        if !p.exists() {
            return Err(ModelError::file(dir, "ESM model folder has no vocab.txt"));
        }
        Self::from_vocab(&p)
    }

    pub fn token_to_id(&self, t: &str) -> Option<u32> {
        self.index.get(t).copied()
    }

    /// Token ids without `<cls>`/`<eos>`.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        let mut unknown_run = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                unknown_run = false;
                i += 1;
                continue;
            }
            if c == '<' {
                if let Some(end) = chars[i..].iter().position(|&x| x == '>') {
                    let tok: String = chars[i..=i + end].iter().collect();
                    if let Some(&id) = self.index.get(&tok) {
                        out.push(id);
                        unknown_run = false;
                        i += end + 1;
                        continue;
                    }
                }
            }
            match self.index.get(&c.to_string()) {
                Some(&id) => {
                    out.push(id);
                    unknown_run = false;
                }
                None => {
                    if !unknown_run {
                        out.push(self.unk_id);
                    }
                    unknown_run = true;
                }
            }
            i += 1;
        }
        out
    }

    /// `<cls> tokens <eos>`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = vec![self.cls_id];
        ids.extend(self.tokenize(text));
        ids.push(self.eos_id);
        ids
    }
}

/// One pre-LayerNorm block.
#[derive(Module, Debug)]
pub struct EsmLayer<B: Backend> {
    /// `attention.LayerNorm` (before self-attention).
    pub attention_norm: LayerNorm<B>,
    pub query: HfLinear<B>,
    pub key: HfLinear<B>,
    pub value: HfLinear<B>,
    /// `attention.output.dense`.
    pub attention_output: HfLinear<B>,
    /// `LayerNorm` (before the feed-forward block).
    pub ffn_norm: LayerNorm<B>,
    pub intermediate: HfLinear<B>,
    pub output: HfLinear<B>,
    #[module(skip)]
    pub index: usize,
    #[module(skip)]
    pub heads: usize,
}

impl<B: Backend> EsmLayer<B> {
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        mask: Option<Tensor<B, 4, Bool>>,
        rope: Option<&(Tensor<B, 4>, Tensor<B, 4>)>,
        adapters: Option<&AdapterStep<'_, B>>,
    ) -> Tensor<B, 3> {
        let site = |kind| Site::new(self.index, kind);
        let h = self.attention_norm.forward(x.clone());
        let [q, k, v] = HfLinear::forward_adapted_shared(
            [&self.query, &self.key, &self.value],
            h,
            adapters,
            [site(MatrixKind::Query), site(MatrixKind::Key), site(MatrixKind::Value)],
        );
        let (q, k, v) = (split_heads(q, self.heads), split_heads(k, self.heads), split_heads(v, self.heads));
        let dh = q.dims()[3];
        // ESM scales the query before the rotary embedding (scores are not scaled again)
        let q = q * (dh as f64).powf(-0.5);
        let (q, k) = match rope {
            Some((cos, sin)) => (apply_rope(q, cos.clone(), sin.clone()), apply_rope(k, cos.clone(), sin.clone())),
            None => (q, k),
        };
        let ctx = merge_heads(unscaled_attention(q, k, v, mask));
        let a = self.attention_output.forward_adapted(ctx, adapters, site(MatrixKind::Output)) + x;
        let i = crate::nn::gelu_erf(self.intermediate.forward(self.ffn_norm.forward(a.clone())));
        self.output.forward_adapted(i, adapters, site(MatrixKind::FfnDown)) + a
    }
}

/// Softmax attention without a score scale (the query is already scaled).
fn unscaled_attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, mask: Option<Tensor<B, 4, Bool>>) -> Tensor<B, 4> {
    let [b, h, sq, _] = q.dims();
    let sk = k.dims()[2];
    let dtype = q.dtype();
    let scores = upcast(crate::nn::matmul(q, k.swap_dims(2, 3)));
    let scores = match mask {
        Some(m) => scores.mask_fill(m.expand([b, h, sq, sk]), MASK_VALUE),
        None => scores,
    };
    crate::nn::matmul(downcast(softmax(scores, 3), dtype), v)
}

/// RoPE ([`crate::nn::apply_rope`]) computed in f32 as HF does.
fn apply_rope<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 4>, signed_sin: Tensor<B, 4>) -> Tensor<B, 4> {
    let dtype = x.dtype();
    downcast(crate::nn::apply_rope(upcast(x), cos, signed_sin), dtype)
}

/// The ESM encoder: embeddings, pre-LN blocks, `emb_layer_norm_after`, and the adapter set
/// (sites: `Site(l, q|k|v|o)` as in BERT; PEFT naming `{prefix}encoder.layer.{l}.attention.self.query` …).
#[derive(Module, Debug)]
pub struct EsmModel<B: Backend> {
    pub word_embeddings: Param<Tensor<B, 2>>,
    pub position_embeddings: Option<Param<Tensor<B, 2>>>,
    pub emb_layer_norm_before: Option<LayerNorm<B>>,
    pub layers: Vec<EsmLayer<B>>,
    pub emb_layer_norm_after: LayerNorm<B>,
    pub adapters: Option<AdapterSet<B>>,
    #[module(skip)]
    pub inv_freq: Vec<f32>,
    #[module(skip)]
    pub config: EsmConfig,
    #[module(skip)]
    pub tuning: Tuning,
    #[module(skip)]
    pub naming: ArchNaming,
}

/// Keys of ESM checkpoints no model here uses (the MLM head, the contact head, buffers).
pub fn esm_ignorable(key: &str) -> bool {
    let k = key.strip_prefix("esm.").unwrap_or(key);
    k.starts_with("lm_head.")
        || k.starts_with("contact_head.")
        || k.starts_with("pooler.")
        || k.ends_with("embeddings.position_ids")
        || k.ends_with("rotary_embeddings.inv_freq")
}

impl<B: Backend> EsmModel<B> {
    /// Builds the encoder (names relative to the stem; `b`'s weights carry the prefix).
    pub fn build(config: &EsmConfig, tuning: &Tuning, naming: ArchNaming, b: &mut Builder<'_, B>) -> Result<Self> {
        let c = config;
        let d = c.hidden_size;
        let train = tuning.full;
        let eps = c.layer_norm_eps;
        let word_embeddings = b.param("embeddings.word_embeddings.weight", [c.vocab_size, d], Init::Normal(b.init_std), train)?;
        let position_embeddings = match c.position_embedding_type {
            EsmPositions::Absolute => Some(b.param("embeddings.position_embeddings.weight", [c.max_position_embeddings, d], Init::Normal(b.init_std), train)?),
            EsmPositions::Rotary => None,
        };
        let emb_layer_norm_before = if c.emb_layer_norm_before { Some(b.layer_norm("embeddings.layer_norm", d, eps, train)?) } else { None };
        // stored rotary frequencies win over recomputed ones (HF keeps the checkpoint's buffer,
        // which may have been saved in f16)
        let mut inv_freq = c.inv_freq();
        for key in ["rotary_embeddings.inv_freq", "encoder.layer.0.attention.self.rotary_embeddings.inv_freq"] {
            if b.has(key) {
                let n = inv_freq.len();
                let t: Tensor<B, 1> = b.tensor(key, [n], Init::Zeros)?;
                inv_freq = t.cast(FloatDType::F32).into_data().to_vec::<f32>().map_err(|e| ModelError::input(format!("{key}: {e:?}")))?;
                break;
            }
        }
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            layers.push(EsmLayer {
                attention_norm: b.layer_norm(&format!("{p}.attention.LayerNorm"), d, eps, train)?,
                query: b.linear(&format!("{p}.attention.self.query"), d, d, true, train)?,
                key: b.linear(&format!("{p}.attention.self.key"), d, d, true, train)?,
                value: b.linear(&format!("{p}.attention.self.value"), d, d, true, train)?,
                attention_output: b.linear(&format!("{p}.attention.output.dense"), d, d, true, train)?,
                ffn_norm: b.layer_norm(&format!("{p}.LayerNorm"), d, eps, train)?,
                intermediate: b.linear(&format!("{p}.intermediate.dense"), d, c.intermediate_size, true, train)?,
                output: b.linear(&format!("{p}.output.dense"), c.intermediate_size, d, true, train)?,
                index: l,
                heads: c.num_attention_heads,
            });
        }
        let emb_layer_norm_after = b.layer_norm("encoder.emb_layer_norm_after", d, eps, train)?;
        let adapters = tuning.init_adapter::<B>(&c.shape(), b.dtype, &b.device)?;
        Ok(EsmModel {
            word_embeddings,
            position_embeddings,
            emb_layer_norm_before,
            layers,
            emb_layer_norm_after,
            adapters,
            inv_freq,
            config: c.clone(),
            tuning: tuning.clone(),
            naming,
        })
    }

    /// Loads the stem of any ESM checkpoint (`EsmModel`, `EsmForMaskedLM`; other heads ignored).
    pub fn load(dir: &Path, opts: &LoadOptions, device: &B::Device) -> Result<Self> {
        let md = ModelDir::new(dir)?;
        let config = EsmConfig::from_json(&md.config()?)?;
        let mut w = Weights::open(&md.weight_files()?)?;
        let prefix = if w.keys().any(|k| k.starts_with("esm.")) { "esm." } else { "" };
        w.set_prefix(prefix);
        let naming = ArchNaming::Bert { prefix: prefix.to_string() };
        let model = persistent_weights::<B, _, _>(device, Builder::checkpoint(&mut w, opts.dtype, device), |mut b| {
            Self::build(&config, &opts.tuning, naming.clone(), &mut b)
        })?;
        w.ignore(esm_ignorable);
        w.finish("ESM")?;
        match opts.adapter.as_deref() {
            Some(d) => model.with_adapter_dir(d, opts.dtype),
            None => Ok(model),
        }
    }

    pub fn random(config: &EsmConfig, tuning: &Tuning, dtype: DType, device: &B::Device) -> Result<Self> {
        persistent_weights::<B, _, _>(device, Builder::random(dtype, device), |mut b| {
            Self::build(config, tuning, ArchNaming::Bert { prefix: String::new() }, &mut b)
        })
    }

    pub fn with_adapter_dir(mut self, dir: &Path, dtype: DType) -> Result<Self> {
        let device = self.word_embeddings.val().device();
        let set = lorta_core::io::load_adapter::<B>(dir, &self.config.shape(), &self.naming, &device)?;
        self.adapters = Some(cast_module(set, dtype));
        Ok(self)
    }

    /// Embedding output (token dropout rescaling, positions, optional LayerNorm, padding zeroed).
    pub fn embed(&self, input_ids: Tensor<B, 2, Int>, attention_mask: Option<Tensor<B, 2, Int>>) -> Tensor<B, 3> {
        use burn::tensor::module::embedding;
        let [b, s] = input_ids.dims();
        let c = &self.config;
        let mut x = embedding(self.word_embeddings.val(), input_ids.clone());
        if c.token_dropout {
            let mask_id = c.mask_token_id.unwrap_or(usize::MAX) as i64;
            let is_mask = input_ids.clone().equal_elem(mask_id);
            let d = x.dims()[2];
            x = x.mask_fill(is_mask.clone().reshape([b, s, 1]).expand([b, s, d]), 0.0);
            let lengths = match &attention_mask {
                Some(m) => m.clone().sum_dim(1).float(),
                None => Tensor::full([b, 1], s as f32, &input_ids.device()),
            };
            let observed = is_mask.int().sum_dim(1).float() / lengths;
            let scale = observed.neg().add_scalar(1.0).recip().mul_scalar(1.0 - ESM_MASK_RATIO_TRAIN);
            let dtype = x.dtype();
            x = x * downcast(scale, dtype).reshape([b, 1, 1]);
        }
        if let Some(pe) = &self.position_embeddings {
            let pad = c.pad_token_id as i64;
            let m = input_ids.not_equal_elem(pad).int();
            let pos = m.clone().cumsum(1) * m + pad;
            x = x + embedding(pe.val(), pos);
        }
        if let Some(ln) = &self.emb_layer_norm_before {
            x = ln.forward(x);
        }
        if let Some(m) = attention_mask {
            x = x * downcast(m.float(), self.word_embeddings.val().dtype()).reshape([b, s, 1]);
        }
        x
    }

    /// Hidden states: the embedding output, then every block's output, the last one after
    /// `emb_layer_norm_after` (HF's `output_hidden_states`, `num_hidden_layers + 1` entries).
    pub fn forward_hidden_states(&self, input_ids: Tensor<B, 2, Int>, attention_mask: Option<Tensor<B, 2, Int>>) -> Vec<Tensor<B, 3>> {
        let [b, s] = input_ids.dims();
        let device = input_ids.device();
        let mask = attention_mask.clone().map(|m| m.equal_elem(0).reshape([b, 1, 1, s]));
        let x0 = self.embed(input_ids, attention_mask);
        let rope = match self.config.position_embedding_type {
            EsmPositions::Rotary => Some(crate::nn::rotary_tables::<B>(&self.inv_freq, 0, s, x0.dtype(), &device)),
            EsmPositions::Absolute => None,
        };
        let step = self.adapters.as_ref().map(|a| a.step());
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        let mut x = x0;
        for layer in &self.layers {
            states.push(x.clone());
            x = layer.forward(x, mask.clone(), rope.as_ref(), step.as_ref());
        }
        states.push(self.emb_layer_norm_after.forward(x));
        states
    }

    /// Last hidden state `[b, s, d]` (after `emb_layer_norm_after`). `attention_mask` 1 = token.
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>, attention_mask: Option<Tensor<B, 2, Int>>) -> Tensor<B, 3> {
        self.forward_hidden_states(input_ids, attention_mask).pop().expect("at least the embedding output")
    }

    /// Trainable parameters (adapter; everything under full fine-tuning).
    pub fn trainable_params(&self) -> usize {
        if self.tuning.full {
            self.num_params()
        } else {
            self.adapters.num_params()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alphabet() -> Vec<String> {
        ["<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "<mask>"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tokenizer_splits_specials_letters_and_unknown_runs() {
        let t = EsmTokenizer::from_tokens(alphabet()).unwrap();
        // <cls> L A <mask> <unk>(JJ) G <unk>(<x>: not a token, a run of unknown letters) <eos>
        assert_eq!(t.encode("LA<mask>JJ G"), vec![0, 4, 5, 7, 3, 6, 2]);
        assert_eq!(t.tokenize("L <x>"), vec![4, 3]);
        assert_eq!(t.tokenize("  "), Vec::<u32>::new());
    }

    #[test]
    fn tokenizer_needs_the_special_tokens() {
        let e = EsmTokenizer::from_tokens(vec!["<cls>".into(), "A".into()]).unwrap_err();
        assert!(e.contains("<pad>") || e.contains("<eos>"), "{e}");
    }
}
