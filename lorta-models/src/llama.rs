//! LLaMA decoders (`model_type` `llama`): RMSNorm, RoPE with `rope_theta` (HF's rotate-half
//! convention; `default`, `linear` and `llama3` scaling), grouped-query attention when
//! `num_key_value_heads < num_attention_heads`, SwiGLU MLP, tied or untied LM head, a KV cache and
//! generation (greedy, or temperature / top-p sampling with a seed; stop tokens).
//! HF module names are kept: `model.embed_tokens`, `model.layers.{l}.self_attn.{q,k,v,o}_proj`,
//! `model.layers.{l}.mlp.{gate,up,down}_proj`, `..._layernorm`, `model.norm`, `lm_head`.
use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Bool, DType, FloatDType, Int, Tensor, TensorData};
use lorta_core::{AdapterSet, AdapterStep, ArchNaming, MatrixKind, ModelShape, Site};
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::hub::ModelDir;
use crate::json::JsonFile;
use crate::load::LoadOptions;
use crate::dropout::DropoutConfig;
use crate::nn::{apply_rope, attention_dropout, merge_heads, padding_mask, split_heads, Activation, persistent_weights, Builder, HfLinear, Init, RmsNorm};
use crate::tuning::{cast_module, module_rng, Houlsby, Prefix, PrefixPositions, Tuning};
use crate::weights::Weights;

/// RoPE frequency scaling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rope_type", rename_all = "lowercase")]
pub enum RopeScaling {
    Default,
    Linear { factor: f64 },
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_position_embeddings: usize },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub attention_bias: bool,
    pub mlp_bias: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: Option<u32>,
    /// `dtype` (transformers 5) or `torch_dtype` (4.x), informational.
    pub torch_dtype: Option<String>,
}

impl LlamaConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_json(&JsonFile::read(path)?)
    }

    pub fn from_json(j: &JsonFile) -> Result<Self> {
        let mt = j.opt_str("model_type")?.unwrap_or_default();
        if mt != "llama" {
            return Err(j.err(format!("model_type `{mt}` is not supported by the LLaMA implementation (expected `llama`)")));
        }
        let act = j.opt_str("hidden_act")?.unwrap_or_else(|| "silu".into());
        if Activation::parse(&act) != Some(Activation::Silu) {
            return Err(j.err(format!("unsupported hidden_act `{act}` for LLaMA (only silu)")));
        }
        if let Some(tp) = j.opt_usize("pretraining_tp")? {
            if tp != 1 {
                return Err(j.err(format!("pretraining_tp = {tp} is not supported (only 1)")));
            }
        }
        let hidden = j.usize("hidden_size")?;
        let heads = j.usize("num_attention_heads")?;
        let kv = j.opt_usize("num_key_value_heads")?.unwrap_or(heads);
        if heads == 0 || kv == 0 || heads % kv != 0 {
            return Err(j.err(format!("num_attention_heads {heads} must be a positive multiple of num_key_value_heads {kv}")));
        }
        let head_dim = match j.opt_usize("head_dim")? {
            Some(h) => h,
            None if hidden % heads == 0 => hidden / heads,
            None => return Err(j.err(format!("hidden_size {hidden} not divisible by num_attention_heads {heads} and no head_dim"))),
        };
        if head_dim % 2 != 0 {
            return Err(j.err(format!("head_dim {head_dim} must be even for RoPE")));
        }
        // transformers 5: `rope_parameters {rope_theta, rope_type, ...}`; 4.x: top-level
        // `rope_theta` and `rope_scaling {type|rope_type, factor, ...}`.
        let params = j.get("rope_parameters").cloned();
        let scaling = params.clone().or_else(|| j.get("rope_scaling").cloned());
        let theta = params
            .as_ref()
            .and_then(|p| p.get("rope_theta"))
            .and_then(|v| v.as_f64())
            .or(j.opt_f64("rope_theta")?)
            .unwrap_or(10000.0);
        let max_pos = j.opt_usize("max_position_embeddings")?.unwrap_or(2048);
        let rope_scaling = match scaling {
            None => RopeScaling::Default,
            Some(s) => {
                let ty = s.get("rope_type").or_else(|| s.get("type")).and_then(|v| v.as_str()).unwrap_or("default");
                let num = |k: &str| -> Result<f64> {
                    s.get(k).and_then(|v| v.as_f64()).ok_or_else(|| j.err(format!("rope scaling `{ty}` needs a numeric `{k}`")))
                };
                match ty {
                    "default" => RopeScaling::Default,
                    "linear" => RopeScaling::Linear { factor: num("factor")? },
                    "llama3" => RopeScaling::Llama3 {
                        factor: num("factor")?,
                        low_freq_factor: num("low_freq_factor")?,
                        high_freq_factor: num("high_freq_factor")?,
                        original_max_position_embeddings: num("original_max_position_embeddings")? as usize,
                    },
                    other => {
                        return Err(j.err(format!("unsupported rope scaling type `{other}` (supported: default, linear, llama3)")))
                    }
                }
            }
        };
        let dtype = match j.opt_str("dtype")? {
            Some(d) => Some(d),
            None => j.opt_str("torch_dtype")?,
        };
        Ok(LlamaConfig {
            vocab_size: j.usize("vocab_size")?,
            hidden_size: hidden,
            intermediate_size: j.usize("intermediate_size")?,
            num_hidden_layers: j.usize("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: kv,
            head_dim,
            rms_norm_eps: j.opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta: theta,
            rope_scaling,
            max_position_embeddings: max_pos,
            tie_word_embeddings: j.opt_bool("tie_word_embeddings")?.unwrap_or(false),
            attention_bias: j.opt_bool("attention_bias")?.unwrap_or(false),
            mlp_bias: j.opt_bool("mlp_bias")?.unwrap_or(false),
            bos_token_id: j.ids("bos_token_id")?.first().copied(),
            eos_token_ids: j.ids("eos_token_id")?,
            pad_token_id: j.ids("pad_token_id")?.first().copied(),
            torch_dtype: dtype,
        })
    }

    /// LLaMA-2-7B's architecture.
    pub fn llama2_7b() -> Self {
        LlamaConfig {
            vocab_size: 32000,
            hidden_size: 4096,
            intermediate_size: 11008,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: 32,
            head_dim: 128,
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            rope_scaling: RopeScaling::Default,
            max_position_embeddings: 4096,
            tie_word_embeddings: false,
            attention_bias: false,
            mlp_bias: false,
            bos_token_id: Some(1),
            eos_token_ids: vec![2],
            pad_token_id: None,
            torch_dtype: Some("float16".into()),
        }
    }

    pub fn shape(&self) -> ModelShape {
        ModelShape {
            hidden: self.hidden_size,
            heads: self.num_attention_heads,
            kv_heads: self.num_key_value_heads,
            head_dim: self.head_dim,
            layers: self.num_hidden_layers,
            intermediate: self.intermediate_size,
        }
    }

    /// RoPE inverse frequencies (f32 as HF computes them), with the configured scaling.
    pub fn inv_freq(&self) -> Vec<f32> {
        let dh = self.head_dim;
        let base: Vec<f32> = (0..dh / 2)
            .map(|i| 1.0 / (self.rope_theta as f32).powf((2 * i) as f32 / dh as f32))
            .collect();
        match &self.rope_scaling {
            RopeScaling::Default => base,
            RopeScaling::Linear { factor } => base.iter().map(|f| f / *factor as f32).collect(),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                let old = *original_max_position_embeddings as f64;
                let low_wl = old / low_freq_factor;
                let high_wl = old / high_freq_factor;
                base.iter()
                    .map(|&f| {
                        let f = f as f64;
                        let wl = 2.0 * std::f64::consts::PI / f;
                        let scaled = if wl > low_wl { f / factor } else { f };
                        let medium = wl >= high_wl && wl <= low_wl;
                        if medium {
                            let s = (old / wl - low_freq_factor) / (high_freq_factor - low_freq_factor);
                            ((1.0 - s) * scaled / factor + s * scaled) as f32
                        } else {
                            scaled as f32
                        }
                    })
                    .collect()
            }
        }
    }

    /// Parameters of the base model.
    pub fn num_params(&self) -> usize {
        let (d, f, v, l) = (self.hidden_size, self.intermediate_size, self.vocab_size, self.num_hidden_layers);
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let attn = d * q * 2 + d * kv * 2;
        let mlp = 3 * d * f;
        let per_layer = attn + mlp + 2 * d;
        v * d + l * per_layer + d + if self.tie_word_embeddings { 0 } else { v * d }
    }
}

/// Cached keys and values per layer, `[b, kv_heads, t, head_dim]` (before prefix and GQA
/// repetition), and the number of cached positions.
#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    pub layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    pub len: usize,
}

impl<B: Backend> KvCache<B> {
    pub fn new(layers: usize) -> Self {
        KvCache { layers: vec![None; layers], len: 0 }
    }
}

/// Reorders the rows of a Q or K projection `[heads·dh, cols]` from the interleaved RoPE layout
/// (Meta's original LLaMA code, llama2.c's `run.c`, GGUF as llama.cpp's converter writes it) to
/// the rotate-half layout this implementation (and HF) uses.
///
/// Why: interleaved RoPE rotates the pairs (2j, 2j+1) of each head by angle pos·θ^(-2j/dh);
/// rotate-half rotates the pairs (j, j+dh/2) by the same angle. Moving row 2j of each head to j
/// and row 2j+1 to j+dh/2 turns one into the other; the same permutation on Q and K leaves every
/// q·k score, hence the model, unchanged (V and O are untouched). This is HF's `permute` in
/// `convert_llama_weights_to_hf.py`; llama.cpp's converter applies its inverse.
pub fn interleaved_to_rotate_half_rows(w: &[f32], heads: usize, cols: usize) -> Vec<f32> {
    let rows = w.len() / cols.max(1);
    let dh = rows / heads.max(1);
    let half = dh / 2;
    let mut out = vec![0.0; w.len()];
    for h in 0..heads {
        for j in 0..half {
            for (k, dst_row) in [(0, j), (1, j + half)] {
                let src = (h * dh + 2 * j + k) * cols;
                let dst = (h * dh + dst_row) * cols;
                out[dst..dst + cols].copy_from_slice(&w[src..src + cols]);
            }
        }
    }
    out
}

/// `[b, kvh, t, dh] → [b, kvh·n, t, dh]`, query head `j` using kv head `j / n` (HF's repeat_kv).
fn repeat_kv<B: Backend>(x: Tensor<B, 4>, n: usize) -> Tensor<B, 4> {
    if n == 1 {
        return x;
    }
    let [b, kvh, t, dh] = x.dims();
    x.reshape([b, kvh, 1, t, dh]).expand([b, kvh, n, t, dh]).reshape([b, kvh * n, t, dh])
}

#[derive(Module, Debug)]
pub struct LlamaLayer<B: Backend> {
    pub q_proj: HfLinear<B>,
    pub k_proj: HfLinear<B>,
    pub v_proj: HfLinear<B>,
    pub o_proj: HfLinear<B>,
    pub gate_proj: HfLinear<B>,
    pub up_proj: HfLinear<B>,
    pub down_proj: HfLinear<B>,
    pub input_layernorm: RmsNorm<B>,
    pub post_attention_layernorm: RmsNorm<B>,
    pub prefix: Option<Prefix<B>>,
    pub houlsby_attention: Option<Houlsby<B>>,
    pub houlsby_ffn: Option<Houlsby<B>>,
    #[module(skip)]
    pub index: usize,
    #[module(skip)]
    pub heads: usize,
    #[module(skip)]
    pub kv_heads: usize,
    /// `attention_dropout` on the attention probabilities (training only).
    #[module(skip)]
    pub attention_dropout: f64,
}

impl<B: Backend> LlamaLayer<B> {
    /// One decoder layer on the residual stream kept as `[b·s, d]` rows (`b` sequences): the
    /// linear maps take it as is, and only attention sees `[b, h, s, dh]` heads, so no layer
    /// pays reshapes around each of its seven products (host time per operation bounds a GPU
    /// step, H200 session 11).
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: Tensor<B, 2>,
        b: usize,
        cos: Tensor<B, 4>,
        sin: Tensor<B, 4>,
        mask: Option<Tensor<B, 4, Bool>>,
        cache: Option<&mut Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
        adapters: Option<&AdapterStep<'_, B>>,
    ) -> Tensor<B, 2> {
        let site = |kind| Site::new(self.index, kind);
        let rows = x.dims()[0];
        let s = rows / b;
        let h = self.input_layernorm.forward(x.clone());
        let [q, k, v] = HfLinear::forward_adapted_shared2(
            [&self.q_proj, &self.k_proj, &self.v_proj],
            h,
            adapters,
            [site(MatrixKind::Query), site(MatrixKind::Key), site(MatrixKind::Value)],
        );
        // the attention block as one autodiff node with its own backward where the backend has
        // fused operations (no cache, no prefix, every query head its own key/value head)
        let plain_block = cache.is_none() && self.prefix.is_none() && self.kv_heads == self.heads;
        if plain_block && (self.attention_dropout == 0.0 || !B::ad_enabled(&x.device())) {
            let dh = q.dims()[1] / self.heads;
            let masking = crate::nn::attention_masking(dh);
            if let Some(ctx) = lorta_core::fused::rope_attention(q.clone(), k.clone(), v.clone(), b, self.heads, cos.clone(), sin.clone(), mask.clone(), masking) {
                return self.finish(x, ctx, b, adapters);
            }
        }
        let heads = |t: Tensor<B, 2>, n: usize| {
            let o = t.dims()[1];
            split_heads(t.reshape([b, s, o]), n)
        };
        let (q, k, v) = (heads(q, self.heads), heads(k, self.kv_heads), heads(v, self.kv_heads));
        let q = apply_rope(q, cos.clone(), sin.clone());
        let k = apply_rope(k, cos, sin);
        let (mut k, mut v) = match cache {
            Some(slot) => {
                let (k, v) = match slot.take() {
                    Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
                    None => (k, v),
                };
                *slot = Some((k.clone(), v.clone()));
                (k, v)
            }
            None => (k, v),
        };
        if let Some(p) = &self.prefix {
            let (pk, pv) = p.heads(b, self.kv_heads);
            k = Tensor::cat(vec![pk, k], 2);
            v = Tensor::cat(vec![pv, v], 2);
        }
        let n = self.heads / self.kv_heads;
        let ctx = merge_heads(attention_dropout(q, repeat_kv(k, n), repeat_kv(v, n), mask, self.attention_dropout));
        let ctx_width = ctx.dims()[2];
        self.finish(x, ctx.reshape([rows, ctx_width]), b, adapters)
    }

    /// The rest of the layer from the attention context rows `[b·s, h·dh]`: output projection,
    /// residual, MLP, residual.
    fn finish(&self, x: Tensor<B, 2>, ctx: Tensor<B, 2>, b: usize, adapters: Option<&AdapterStep<'_, B>>) -> Tensor<B, 2> {
        let site = |kind| Site::new(self.index, kind);
        let [rows, d] = x.dims();
        let s = rows / b;
        let mut o = self.o_proj.forward_adapted2(ctx, adapters, site(MatrixKind::Output));
        if let Some(hb) = &self.houlsby_attention {
            o = hb.forward(o.reshape([b, s, d])).reshape([rows, d]);
        }
        let x = x + o;
        let h = self.post_attention_layernorm.forward(x.clone());
        let act = lorta_core::fused::swiglu(self.gate_proj.forward2(h.clone()), self.up_proj.forward2(h));
        let mut m = self.down_proj.forward_adapted2(act, adapters, site(MatrixKind::FfnDown));
        if let Some(hb) = &self.houlsby_ffn {
            m = hb.forward(m.reshape([b, s, d])).reshape([rows, d]);
        }
        x + m
    }
}

#[derive(Module, Debug)]
pub struct LlamaModel<B: Backend> {
    pub embed_tokens: Param<Tensor<B, 2>>,
    pub layers: Vec<LlamaLayer<B>>,
    pub norm: RmsNorm<B>,
}

/// Sampling settings. `temperature == 0` means greedy decoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
    /// Generation stops after emitting one of these (default: the config's `eos_token_id`).
    pub stop_tokens: Vec<u32>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig { max_new_tokens: 20, temperature: 0.0, top_p: 1.0, seed: 0, stop_tokens: vec![] }
    }
}

/// `LlamaForCausalLM`: the decoder, its LM head (`None` = tied to `embed_tokens`), adapters.
#[derive(Module, Debug)]
pub struct LlamaForCausalLM<B: Backend> {
    pub model: LlamaModel<B>,
    pub lm_head: Option<HfLinear<B>>,
    pub adapters: Option<AdapterSet<B>>,
    #[module(skip)]
    pub config: LlamaConfig,
    #[module(skip)]
    pub tuning: Tuning,
    #[module(skip)]
    pub inv_freq: Vec<f32>,
}

impl<B: Backend> LlamaForCausalLM<B> {
    pub fn build(config: &LlamaConfig, tuning: &Tuning, b: &mut Builder<'_, B>) -> Result<Self> {
        let c = config;
        let (d, dh) = (c.hidden_size, c.head_dim);
        let (q, kv) = (c.num_attention_heads * dh, c.num_key_value_heads * dh);
        let train = tuning.full;
        let embed_tokens = b.param("model.embed_tokens.weight", [c.vocab_size, d], Init::Normal(b.init_std), train)?;
        let mut rng = module_rng(tuning);
        let (dtype, device) = (b.dtype, b.device.clone());
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let (ab, mb) = (c.attention_bias, c.mlp_bias);
            layers.push(LlamaLayer {
                q_proj: b.linear(&format!("{p}.self_attn.q_proj"), d, q, ab, train)?,
                k_proj: b.linear(&format!("{p}.self_attn.k_proj"), d, kv, ab, train)?,
                v_proj: b.linear(&format!("{p}.self_attn.v_proj"), d, kv, ab, train)?,
                o_proj: b.linear(&format!("{p}.self_attn.o_proj"), q, d, ab, train)?,
                gate_proj: b.linear(&format!("{p}.mlp.gate_proj"), d, c.intermediate_size, mb, train)?,
                up_proj: b.linear(&format!("{p}.mlp.up_proj"), d, c.intermediate_size, mb, train)?,
                down_proj: b.linear(&format!("{p}.mlp.down_proj"), c.intermediate_size, d, mb, train)?,
                input_layernorm: b.rms_norm(&format!("{p}.input_layernorm"), d, c.rms_norm_eps, train)?,
                post_attention_layernorm: b.rms_norm(&format!("{p}.post_attention_layernorm"), d, c.rms_norm_eps, train)?,
                prefix: tuning.prefix_len.map(|len| Prefix::init(len, kv, &mut rng, dtype, &device)),
                houlsby_attention: tuning.houlsby.map(|m| Houlsby::init(d, m, &mut rng, dtype, &device)),
                houlsby_ffn: tuning.houlsby.map(|m| Houlsby::init(d, m, &mut rng, dtype, &device)),
                index: l,
                heads: c.num_attention_heads,
                kv_heads: c.num_key_value_heads,
                attention_dropout: 0.0,
            });
        }
        let norm = b.rms_norm("model.norm", d, c.rms_norm_eps, train)?;
        // Tied heads are usually absent from the file; one stored anyway is loaded.
        let lm_head = if !c.tie_word_embeddings || b.has("lm_head.weight") {
            Some(b.linear("lm_head", d, c.vocab_size, false, train)?)
        } else {
            None
        };
        let adapters = tuning.init_adapter::<B>(&c.shape(), dtype, &device)?;
        let model = LlamaForCausalLM {
            model: LlamaModel { embed_tokens, layers, norm },
            lm_head,
            adapters,
            config: c.clone(),
            tuning: tuning.clone(),
            inv_freq: c.inv_freq(),
        };
        // Random weights: no config.json, so no dropout unless `tuning.dropout` asks for it.
        Ok(model.with_dropout(DropoutConfig::default().with_override(tuning.dropout)?))
    }

    /// Sets the attention dropout of every layer (LLaMA has no other dropout).
    pub fn with_dropout(mut self, d: DropoutConfig) -> Self {
        for l in &mut self.model.layers {
            l.attention_dropout = d.attention;
        }
        self
    }

    /// Loads a `LlamaForCausalLM` (or bare `LlamaModel`, whose keys lack `model.`) checkpoint.
    /// A tied head absent from the file uses `embed_tokens`.
    pub fn load(dir: &Path, opts: &LoadOptions, device: &B::Device) -> Result<Self> {
        let md = ModelDir::new(dir)?;
        let json = md.config()?;
        let config = LlamaConfig::from_json(&json)?;
        let dropout = DropoutConfig::from_llama_json(&json)?.with_override(opts.tuning.dropout)?;
        let mut w = Weights::open(&md.weight_files()?)?;
        // Names are `model.…`; a bare LlamaModel checkpoint stores them without the prefix.
        let bare = !w.keys().any(|k| k.starts_with("model."));
        if bare {
            w.set_strip("model.");
        }
        Ok(Self::from_weights(&config, w, opts, device)?.with_dropout(dropout))
    }

    /// Builds the model from checkpoint tensors under HF names (safetensors, or a GGUF /
    /// llama2.c [`TensorSource`](crate::weights::TensorSource)): every tensor must be used.
    pub fn from_weights(config: &LlamaConfig, mut w: Weights, opts: &LoadOptions, device: &B::Device) -> Result<Self> {
        let mut model = persistent_weights::<B, _, _>(device, Builder::checkpoint(&mut w, opts.dtype, device), |mut b| {
            Self::build(config, &opts.tuning, &mut b)
        })?;
        w.ignore(|k| k.ends_with("rotary_emb.inv_freq"));
        w.finish("LlamaForCausalLM")?;
        if let Some(a) = opts.adapter.as_deref() {
            model = model.with_adapter_dir(a, opts.dtype)?;
        }
        Ok(model)
    }

    /// Random weights (on device, `N(0, 0.02²)`, norms 1) in `dtype`: cheap enough for 7B.
    pub fn random(config: &LlamaConfig, tuning: &Tuning, dtype: DType, device: &B::Device) -> Result<Self> {
        persistent_weights::<B, _, _>(device, Builder::random(dtype, device), |mut b| Self::build(config, tuning, &mut b))
    }

    pub fn naming(&self) -> ArchNaming {
        ArchNaming::Llama
    }

    /// Replaces the adapter set by an adapter folder (PEFT LoRA/IA3/VeRA, the paper's LoRTA, ours).
    pub fn with_adapter_dir(mut self, dir: &Path, dtype: DType) -> Result<Self> {
        let device = self.model.embed_tokens.val().device();
        let set = lorta_core::io::load_adapter::<B>(dir, &self.config.shape(), &ArchNaming::Llama, &device)?;
        self.adapters = Some(cast_module(set, dtype));
        Ok(self)
    }

    fn prefix_len(&self) -> usize {
        self.model.layers.first().and_then(|l| l.prefix.as_ref()).map(|p| p.len()).unwrap_or(0)
    }

    /// Final hidden states (after the last RMSNorm) `[b, s, d]`. `attention_mask` covers the
    /// cached positions too (`[b, cache.len + s]`); positions start at `cache.len` (right padding
    /// assumed for batches), plus the prefix length under prefix tuning (PEFT's convention, see
    /// [`PrefixPositions`]).
    pub fn forward_hidden(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2, Int>>,
        mut cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let [b, s] = input_ids.dims();
        let device = input_ids.device();
        let offset = cache.as_ref().map(|c| c.len).unwrap_or(0);
        let extra = self.prefix_len();
        let x = burn::tensor::module::embedding(self.model.embed_tokens.val(), input_ids);
        let dtype = x.dtype();
        let first_position = match self.tuning.prefix_positions {
            PrefixPositions::AfterPrefix => extra + offset,
            PrefixPositions::FromZero => offset,
        };
        let (cos, sin) = crate::nn::rotary_tables::<B>(&self.inv_freq, first_position, s, dtype, &device);
        let sk = extra + offset + s;
        let causal = if s > 1 {
            let data: Vec<bool> = (0..s).flat_map(|i| (0..sk).map(move |j| j >= extra && j - extra > offset + i)).collect();
            Some(Tensor::<B, 2, Bool>::from_data(TensorData::new(data, [s, sk]), &device).reshape([1, 1, s, sk]))
        } else {
            None
        };
        let pad = attention_mask.map(|m| padding_mask(m, extra));
        let mask = match (causal, pad) {
            (Some(c), Some(p)) => Some(c.expand([b, 1, s, sk]).bool_or(p.expand([b, 1, s, sk]))),
            (Some(c), None) => Some(c.expand([b, 1, s, sk])),
            (None, Some(p)) => Some(p.expand([b, 1, s, sk])),
            (None, None) => None,
        };
        // shared adapter factors (LoRTA) are combined once per forward, not once per site
        let step = self.adapters.as_ref().map(|a| a.step());
        let d = x.dims()[2];
        let mut x = x.reshape([b * s, d]);
        for (l, layer) in self.model.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[l]);
            x = layer.forward(x, b, cos.clone(), sin.clone(), mask.clone(), slot, step.as_ref());
        }
        if let Some(c) = cache {
            c.len += s;
        }
        self.model.norm.forward(x).reshape([b, s, d])
    }

    /// LM logits for hidden states.
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(h) => h.forward(hidden),
            None => {
                let [b, s, d] = hidden.dims();
                let w = self.model.embed_tokens.val();
                let v = w.dims()[0];
                crate::nn::matmul(hidden.reshape([b * s, d]), w.transpose()).reshape([b, s, v])
            }
        }
    }

    /// Logits `[b, s, vocab]`.
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>, attention_mask: Option<Tensor<B, 2, Int>>) -> Tensor<B, 3> {
        self.logits(self.forward_hidden(input_ids, attention_mask, None))
    }

    /// Continues `prompt` (one sequence) with a KV cache; returns prompt + new tokens (the stop
    /// token included, as HF does).
    pub fn generate(&self, prompt: &[u32], cfg: &GenerationConfig) -> Result<Vec<u32>> {
        if prompt.is_empty() {
            return Err(ModelError::input("generate: empty prompt"));
        }
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= self.config.vocab_size) {
            return Err(ModelError::input(format!("token id {bad} out of range (vocab_size {})", self.config.vocab_size)));
        }
        if !(cfg.top_p > 0.0 && cfg.top_p <= 1.0) || cfg.temperature < 0.0 {
            return Err(ModelError::input(format!("invalid sampling settings: temperature {} (≥ 0), top_p {} (in (0, 1])", cfg.temperature, cfg.top_p)));
        }
        let stops = if cfg.stop_tokens.is_empty() { self.config.eos_token_ids.clone() } else { cfg.stop_tokens.clone() };
        let device = self.model.embed_tokens.val().device();
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
        let mut cache = KvCache::new(self.config.num_hidden_layers);
        let mut out = prompt.to_vec();
        let mut next_input = prompt.to_vec();
        for _ in 0..cfg.max_new_tokens {
            let ids = crate::bert::int_batch::<B>(&[next_input.clone()], &device)?;
            let h = self.forward_hidden(ids, None, Some(&mut cache));
            let [_, s, d] = h.dims();
            let last = h.slice([0..1, s - 1..s, 0..d]);
            let logits: Vec<f32> = self
                .logits(last)
                .cast(FloatDType::F32)
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| ModelError::input(format!("reading logits: {e:?}")))?;
            let tok = if cfg.temperature == 0.0 { argmax(&logits) } else { sample(&logits, cfg.temperature, cfg.top_p, &mut rng) };
            out.push(tok);
            if stops.contains(&tok) {
                break;
            }
            next_input = vec![tok];
        }
        Ok(out)
    }

    /// The base model: the same weights with the adapter set, prefixes and Houlsby adapters
    /// switched off (DPO's reference policy, PEFT's `disable_adapter()`). Tensors are shared,
    /// not copied. Under full fine-tuning the weights themselves are trained, so there is no
    /// base model left to switch back to: `None`.
    pub fn without_tuning(&self) -> Option<Self> {
        if self.tuning.full {
            return None;
        }
        let mut base = self.clone();
        base.adapters = None;
        for l in base.model.layers.iter_mut() {
            l.prefix = None;
            l.houlsby_attention = None;
            l.houlsby_ffn = None;
        }
        Some(base)
    }

    /// Trainable parameters: adapter + prefixes + Houlsby adapters (everything under full FT).
    pub fn trainable_params(&self) -> usize {
        if self.tuning.full {
            return self.num_params();
        }
        self.adapters.num_params()
            + self
                .model
                .layers
                .iter()
                .map(|l| l.prefix.num_params() + l.houlsby_attention.num_params() + l.houlsby_ffn.num_params())
                .sum::<usize>()
    }
}

/// First maximum (as torch.argmax).
fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// Temperature + nucleus sampling: keep the most probable tokens whose cumulative probability
/// reaches `top_p` (at least one), renormalise, draw.
fn sample(logits: &[f32], temperature: f64, top_p: f64, rng: &mut rand::rngs::StdRng) -> u32 {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut probs: Vec<(usize, f64)> = logits.iter().enumerate().map(|(i, &l)| (i, ((l as f64 - max) / temperature).exp())).collect();
    let z: f64 = probs.iter().map(|p| p.1).sum();
    probs.iter_mut().for_each(|p| p.1 /= z);
    probs.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    let mut cum = 0.0;
    let mut keep = 0;
    for (k, p) in probs.iter().enumerate() {
        cum += p.1;
        keep = k + 1;
        if cum >= top_p {
            break;
        }
    }
    let kept = &probs[..keep];
    let total: f64 = kept.iter().map(|p| p.1).sum();
    let mut u = rng.random::<f64>() * total;
    for &(i, p) in kept {
        if u < p {
            return i as u32;
        }
        u -= p;
    }
    kept[keep - 1].0 as u32
}


#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LlamaConfig> {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("config.json");
        std::fs::write(&p, text).unwrap();
        LlamaConfig::from_file(&p)
    }

    const BASE: &str = r#""model_type":"llama","vocab_size":10,"hidden_size":16,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4"#;

    #[test]
    fn transformers_4_and_5_rope_layouts() {
        // 4.x: top-level rope_theta / rope_scaling (legacy `type`), torch_dtype, no head_dim.
        let c = parse(&format!(
            r#"{{{BASE},"rope_theta":500000.0,"rope_scaling":{{"type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}},"torch_dtype":"bfloat16","eos_token_id":[2,3]}}"#
        ))
        .unwrap();
        assert_eq!((c.rope_theta, c.head_dim, c.num_key_value_heads), (500000.0, 4, 4));
        assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { .. }));
        assert_eq!(c.torch_dtype.as_deref(), Some("bfloat16"));
        assert_eq!(c.eos_token_ids, vec![2, 3]);
        // 5.x: rope_parameters, dtype; null rope_scaling means default.
        let c = parse(&format!(r#"{{{BASE},"rope_parameters":{{"rope_theta":1000.0,"rope_type":"linear","factor":2.0}},"dtype":"float16","rope_scaling":null}}"#)).unwrap();
        assert_eq!(c.rope_theta, 1000.0);
        assert_eq!(c.rope_scaling, RopeScaling::Linear { factor: 2.0 });
        let inv = c.inv_freq();
        assert!((inv[0] - 0.5).abs() < 1e-7, "{inv:?}");
        let c = parse(&format!(r#"{{{BASE},"rope_scaling":null}}"#)).unwrap();
        assert_eq!((c.rope_theta, c.rope_scaling), (10000.0, RopeScaling::Default));
        // Unsupported values name the key.
        let e = parse(&format!(r#"{{{BASE},"rope_scaling":{{"rope_type":"dynamic","factor":2.0}}}}"#)).unwrap_err().to_string();
        assert!(e.contains("dynamic") && e.contains("config.json"), "{e}");
        let e = parse(&format!(r#"{{{BASE},"num_key_value_heads":3}}"#)).unwrap_err().to_string();
        assert!(e.contains("num_key_value_heads"), "{e}");
    }

    #[test]
    fn llama2_7b_parameter_count() {
        assert_eq!(LlamaConfig::llama2_7b().num_params(), 6_738_415_616);
    }
}
