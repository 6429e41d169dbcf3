//! BERT-family encoders (`model_type` `bert`, `roberta`), driven by `config.json`, with HF
//! module names kept: a bare encoder ([`BertModel`], last hidden state) and a sequence
//! classification / regression model ([`BertForSequenceClassification`]: BERT's pooler
//! dense+tanh then `classifier`, RoBERTa's `classifier.dense`→tanh→`classifier.out_proj`, both on
//! the first token). Differences between the flavours: RoBERTa position ids start after the
//! padding index (`pad + cumsum(ids != pad)`, `pad` for pads), BERT's are `0..s`.
use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, DType, Int, Tensor, TensorData};
use lorta_core::init::Init as HostInit;
use lorta_core::{AdapterSet, AdapterStep, ArchNaming, MatrixKind, ModelShape, Site};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::hub::ModelDir;
use crate::json::JsonFile;
use crate::load::LoadOptions;
use crate::dropout::{dropout, DropoutConfig};
use crate::nn::{attention_dropout, merge_heads, padding_mask, split_heads, Activation, persistent_weights, Builder, HfLinear, Init, LayerNorm};
use crate::tuning::{cast_module, host_param, module_rng, HeadDense, HeadTuning, Houlsby, Prefix, PrefixPositions, Tuning};
use crate::weights::Weights;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncoderFlavor {
    Bert,
    Roberta,
}

impl EncoderFlavor {
    /// Module prefix of the encoder inside HF's task models.
    pub fn prefix(&self) -> &'static str {
        match self {
            EncoderFlavor::Bert => "bert.",
            EncoderFlavor::Roberta => "roberta.",
        }
    }
}

/// The fields of a BERT/RoBERTa `config.json` this implementation uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub flavor: EncoderFlavor,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: usize,
    pub num_labels: usize,
    pub architecture: Option<String>,
}

impl BertConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_json(&JsonFile::read(path)?)
    }

    pub fn from_json(j: &JsonFile) -> Result<Self> {
        let model_type = j.opt_str("model_type")?.ok_or_else(|| j.err("missing string field `model_type`"))?;
        let flavor = match model_type.as_str() {
            "bert" => EncoderFlavor::Bert,
            "roberta" | "xlm-roberta" => EncoderFlavor::Roberta,
            other => return Err(j.err(format!("model_type `{other}` is not a BERT-family encoder (supported: bert, roberta)"))),
        };
        let act = j.opt_str("hidden_act")?.unwrap_or_else(|| "gelu".into());
        let hidden_act = Activation::parse(&act)
            .ok_or_else(|| j.err(format!("unsupported hidden_act `{act}` (supported: {})", Activation::SUPPORTED)))?;
        if let Some(p) = j.opt_str("position_embedding_type")? {
            if p != "absolute" {
                return Err(j.err(format!("unsupported position_embedding_type `{p}` (only `absolute`)")));
            }
        }
        if j.opt_bool("is_decoder")? == Some(true) || j.opt_bool("add_cross_attention")? == Some(true) {
            return Err(j.err("decoder / cross-attention BERT configs are not supported"));
        }
        let num_labels = match j.opt_usize("num_labels")? {
            Some(n) => n,
            None => j.get("id2label").and_then(|m| m.as_object()).map(|m| m.len()).unwrap_or(2),
        };
        let c = BertConfig {
            flavor,
            vocab_size: j.usize("vocab_size")?,
            hidden_size: j.usize("hidden_size")?,
            num_hidden_layers: j.usize("num_hidden_layers")?,
            num_attention_heads: j.usize("num_attention_heads")?,
            intermediate_size: j.usize("intermediate_size")?,
            hidden_act,
            max_position_embeddings: j.usize("max_position_embeddings")?,
            type_vocab_size: j.opt_usize("type_vocab_size")?.unwrap_or(2),
            layer_norm_eps: j.opt_f64("layer_norm_eps")?.unwrap_or(1e-12),
            pad_token_id: j.opt_usize("pad_token_id")?.unwrap_or(match flavor {
                EncoderFlavor::Bert => 0,
                EncoderFlavor::Roberta => 1,
            }),
            num_labels,
            architecture: j.architecture(),
        };
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(j.err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                c.hidden_size, c.num_attention_heads
            )));
        }
        Ok(c)
    }

    /// RoBERTa-base (for random-weight instantiation and parameter counts).
    pub fn roberta_base() -> Self {
        BertConfig {
            flavor: EncoderFlavor::Roberta,
            vocab_size: 50265,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            max_position_embeddings: 514,
            type_vocab_size: 1,
            layer_norm_eps: 1e-5,
            pad_token_id: 1,
            num_labels: 2,
            architecture: Some("RobertaForSequenceClassification".into()),
        }
    }

    pub fn shape(&self) -> ModelShape {
        ModelShape::new(self.hidden_size, self.num_attention_heads, self.num_hidden_layers, self.intermediate_size)
    }

    pub fn is_classifier(&self) -> bool {
        self.architecture.as_deref().is_some_and(|a| a.ends_with("ForSequenceClassification"))
    }
}

/// Word + position (+ token type) embeddings, then LayerNorm.
#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    pub word_embeddings: Param<Tensor<B, 2>>,
    pub position_embeddings: Param<Tensor<B, 2>>,
    pub token_type_embeddings: Param<Tensor<B, 2>>,
    pub layer_norm: LayerNorm<B>,
    #[module(skip)]
    pub flavor: EncoderFlavor,
    #[module(skip)]
    pub pad_token_id: usize,
    /// Dropout after the LayerNorm (`hidden_dropout_prob`; training only).
    #[module(skip)]
    pub dropout: f64,
}

impl<B: Backend> BertEmbeddings<B> {
    /// HF position ids for `input_ids: [b, s]` following `past` cached (or prefix) positions.
    pub fn position_ids(&self, input_ids: Tensor<B, 2, Int>, past: usize) -> Tensor<B, 2, Int> {
        let [b, s] = input_ids.dims();
        let past = past as i64;
        match self.flavor {
            EncoderFlavor::Bert => {
                Tensor::<B, 1, Int>::arange(past..past + s as i64, &input_ids.device()).reshape([1, s]).expand([b, s])
            }
            EncoderFlavor::Roberta => {
                // HF `create_position_ids_from_input_ids(ids, pad, past_key_values_length)`.
                let pad = self.pad_token_id as i64;
                let mask = input_ids.not_equal_elem(pad).int();
                (mask.clone().cumsum(1) + past) * mask + pad
            }
        }
    }

    /// Embeddings of `input_ids` whose positions follow `past` cached (or prefix) positions.
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>, token_type_ids: Option<Tensor<B, 2, Int>>, past: usize) -> Tensor<B, 3> {
        use burn::tensor::module::embedding;
        let pos = self.position_ids(input_ids.clone(), past);
        // one token type (RoBERTa): segment ids of a BERT-style pair encoding have no row to read
        let single_type = self.token_type_embeddings.val().dims()[0] == 1;
        let tt = token_type_ids.filter(|_| !single_type).unwrap_or_else(|| input_ids.zeros_like());
        let x = embedding(self.word_embeddings.val(), input_ids)
            + embedding(self.position_embeddings.val(), pos)
            + embedding(self.token_type_embeddings.val(), tt);
        dropout(self.layer_norm.forward(x), self.dropout)
    }
}

/// One transformer block (post-LayerNorm), HF names: `attention.self.{query,key,value}`,
/// `attention.output.{dense,LayerNorm}`, `intermediate.dense`, `output.{dense,LayerNorm}`.
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    pub query: HfLinear<B>,
    pub key: HfLinear<B>,
    pub value: HfLinear<B>,
    pub attention_output: HfLinear<B>,
    pub attention_norm: LayerNorm<B>,
    pub intermediate: HfLinear<B>,
    pub output: HfLinear<B>,
    pub output_norm: LayerNorm<B>,
    pub prefix: Option<Prefix<B>>,
    pub houlsby_attention: Option<Houlsby<B>>,
    pub houlsby_ffn: Option<Houlsby<B>>,
    #[module(skip)]
    pub index: usize,
    #[module(skip)]
    pub heads: usize,
    #[module(skip)]
    pub act: Activation,
    /// Hidden (after each output projection) and attention-probability dropout; training only.
    #[module(skip)]
    pub dropout: DropoutConfig,
}

impl<B: Backend> BertLayer<B> {
    pub fn forward(&self, x: Tensor<B, 3>, mask: Option<Tensor<B, 4, burn::tensor::Bool>>, adapters: Option<&AdapterStep<'_, B>>) -> Tensor<B, 3> {
        let site = |kind| Site::new(self.index, kind);
        let b = x.dims()[0];
        let [q, k, v] = HfLinear::forward_adapted_shared(
            [&self.query, &self.key, &self.value],
            x.clone(),
            adapters,
            [site(MatrixKind::Query), site(MatrixKind::Key), site(MatrixKind::Value)],
        );
        let (q, mut k, mut v) = (split_heads(q, self.heads), split_heads(k, self.heads), split_heads(v, self.heads));
        if let Some(p) = &self.prefix {
            let (pk, pv) = p.heads(b, self.heads);
            k = Tensor::cat(vec![pk, k], 2);
            v = Tensor::cat(vec![pv, v], 2);
        }
        let ctx = merge_heads(attention_dropout(q, k, v, mask, self.dropout.attention));
        let mut o = dropout(self.attention_output.forward_adapted(ctx, adapters, site(MatrixKind::Output)), self.dropout.hidden);
        if let Some(h) = &self.houlsby_attention {
            o = h.forward(o);
        }
        let h1 = self.attention_norm.forward(o + x);
        let i = self.act.forward(self.intermediate.forward(h1.clone()));
        let mut o2 = dropout(self.output.forward_adapted(i, adapters, site(MatrixKind::FfnDown)), self.dropout.hidden);
        if let Some(h) = &self.houlsby_ffn {
            o2 = h.forward(o2);
        }
        self.output_norm.forward(o2 + h1)
    }
}

/// The encoder: embeddings, layers, the adapter set, and (bare BERT checkpoints only) the
/// pooler.
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    pub embeddings: BertEmbeddings<B>,
    pub layers: Vec<BertLayer<B>>,
    /// `pooler.dense` when the checkpoint has one and the model is not a classifier (whose head
    /// owns it).
    pub pooler: Option<HfLinear<B>>,
    pub adapters: Option<AdapterSet<B>>,
    #[module(skip)]
    pub config: BertConfig,
    #[module(skip)]
    pub tuning: Tuning,
    #[module(skip)]
    pub naming: ArchNaming,
}

/// Keys an encoder checkpoint may hold that no model here uses.
fn ignorable(key: &str) -> bool {
    key.ends_with("embeddings.position_ids")
        || key.starts_with("lm_head.")
        || key.starts_with("cls.")
}

fn detect_prefix(w: &Weights, flavor: EncoderFlavor) -> String {
    let p = flavor.prefix();
    if w.keys().any(|k| k.starts_with(p)) {
        p.to_string()
    } else {
        String::new()
    }
}

/// PEFT naming of the encoder's sites for a checkpoint (the prefix its weights use; task models
/// always live under `bert.` / `roberta.`).
pub fn bert_naming(weights: Option<&Weights>, config: &BertConfig, classifier: bool) -> ArchNaming {
    let detected = weights.map(|w| detect_prefix(w, config.flavor)).unwrap_or_default();
    let prefix = if detected.is_empty() && classifier { config.flavor.prefix().to_string() } else { detected };
    ArchNaming::Bert { prefix }
}

impl<B: Backend> BertModel<B> {
    /// Builds the encoder from a checkpoint or at random (`builder`), with the tuning's
    /// trainable extras. `with_pooler`: load `pooler.dense` if present.
    pub fn build(config: &BertConfig, tuning: &Tuning, naming: ArchNaming, b: &mut Builder<'_, B>, with_pooler: bool) -> Result<Self> {
        let c = config;
        let d = c.hidden_size;
        let train = tuning.full;
        let embeddings = BertEmbeddings {
            word_embeddings: b.param("embeddings.word_embeddings.weight", [c.vocab_size, d], Init::Normal(b.init_std), train)?,
            position_embeddings: b.param("embeddings.position_embeddings.weight", [c.max_position_embeddings, d], Init::Normal(b.init_std), train)?,
            token_type_embeddings: b.param("embeddings.token_type_embeddings.weight", [c.type_vocab_size.max(1), d], Init::Normal(b.init_std), train)?,
            layer_norm: b.layer_norm("embeddings.LayerNorm", d, c.layer_norm_eps, train)?,
            flavor: c.flavor,
            pad_token_id: c.pad_token_id,
            dropout: 0.0,
        };
        let mut rng = module_rng(tuning);
        let dtype = b.dtype;
        let device = b.device.clone();
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            layers.push(BertLayer {
                query: b.linear(&format!("{p}.attention.self.query"), d, d, true, train)?,
                key: b.linear(&format!("{p}.attention.self.key"), d, d, true, train)?,
                value: b.linear(&format!("{p}.attention.self.value"), d, d, true, train)?,
                attention_output: b.linear(&format!("{p}.attention.output.dense"), d, d, true, train)?,
                attention_norm: b.layer_norm(&format!("{p}.attention.output.LayerNorm"), d, c.layer_norm_eps, train)?,
                intermediate: b.linear(&format!("{p}.intermediate.dense"), d, c.intermediate_size, true, train)?,
                output: b.linear(&format!("{p}.output.dense"), c.intermediate_size, d, true, train)?,
                output_norm: b.layer_norm(&format!("{p}.output.LayerNorm"), d, c.layer_norm_eps, train)?,
                prefix: tuning.prefix_len.map(|len| Prefix::init(len, d, &mut rng, dtype, &device)),
                houlsby_attention: tuning.houlsby.map(|m| Houlsby::init(d, m, &mut rng, dtype, &device)),
                houlsby_ffn: tuning.houlsby.map(|m| Houlsby::init(d, m, &mut rng, dtype, &device)),
                index: l,
                heads: c.num_attention_heads,
                act: c.hidden_act,
                dropout: DropoutConfig::default(),
            });
        }
        let pooler = if with_pooler && b.has("pooler.dense.weight") {
            Some(b.linear("pooler.dense", d, d, true, train)?)
        } else {
            None
        };
        let adapters = tuning.init_adapter::<B>(&config.shape(), dtype, &device)?;
        let model = BertModel { embeddings, layers, pooler, adapters, config: config.clone(), tuning: tuning.clone(), naming };
        // Random weights: no config.json, so no dropout unless `tuning.dropout` asks for it.
        Ok(model.with_dropout(DropoutConfig::default().with_override(tuning.dropout)?))
    }

    /// Sets the hidden and attention dropout of the embeddings and every layer.
    pub fn with_dropout(mut self, d: DropoutConfig) -> Self {
        self.embeddings.dropout = d.hidden;
        for l in &mut self.layers {
            l.dropout = d;
        }
        self
    }

    /// The dropout in effect (of the first layer; all layers share it).
    pub fn dropout(&self) -> DropoutConfig {
        self.layers.first().map(|l| l.dropout).unwrap_or_default()
    }

    /// Loads a bare encoder (`BertModel`, `RobertaModel`, or the encoder of any BERT-family
    /// checkpoint; task heads of the checkpoint are ignored).
    pub fn load(dir: &Path, opts: &LoadOptions, device: &B::Device) -> Result<Self> {
        let md = ModelDir::new(dir)?;
        let json = md.config()?;
        let config = BertConfig::from_json(&json)?;
        let dropout = DropoutConfig::from_bert_json(&json)?.with_override(opts.tuning.dropout)?;
        let mut w = Weights::open(&md.weight_files()?)?;
        let naming = bert_naming(Some(&w), &config, false);
        w.set_prefix(detect_prefix(&w, config.flavor));
        let model = persistent_weights::<B, _, _>(device, Builder::checkpoint(&mut w, opts.dtype, device), |mut b| {
            Self::build(&config, &opts.tuning, naming.clone(), &mut b, true)
        })?
        .with_dropout(dropout);
        let prefix = w.prefix().to_string();
        w.ignore(|k| ignorable(k) || k.starts_with("classifier.") || k.starts_with(&format!("{prefix}pooler.")));
        w.finish("BERT-family encoder")?;
        model.with_adapter_opt(opts.adapter.as_deref(), opts.dtype)
    }

    /// Random weights (on device) in `dtype`.
    pub fn random(config: &BertConfig, tuning: &Tuning, dtype: DType, device: &B::Device) -> Result<Self> {
        persistent_weights::<B, _, _>(device, Builder::random(dtype, device), |mut b| {
            Self::build(config, tuning, bert_naming(None, config, false), &mut b, false)
        })
    }

    fn with_adapter_opt(self, dir: Option<&Path>, dtype: DType) -> Result<Self> {
        match dir {
            Some(d) => self.with_adapter_dir(d, dtype),
            None => Ok(self),
        }
    }

    /// Replaces the adapter set by an adapter folder (PEFT LoRA/IA3/VeRA, the paper's LoRTA, or
    /// ours), keyed with this model's naming.
    pub fn with_adapter_dir(mut self, dir: &Path, dtype: DType) -> Result<Self> {
        let device = self.embeddings.word_embeddings.val().device();
        let set = lorta_core::io::load_adapter::<B>(dir, &self.config.shape(), &self.naming, &device)?;
        self.adapters = Some(cast_module(set, dtype));
        Ok(self)
    }

    /// Last hidden state `[b, s, d]`. `attention_mask` 1 = token, 0 = padding.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2, Int>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 3> {
        let extra = self.layers.first().and_then(|l| l.prefix.as_ref()).map(|p| p.len()).unwrap_or(0);
        let mask = attention_mask.map(|m| padding_mask(m, extra));
        let past = match self.tuning.prefix_positions {
            PrefixPositions::AfterPrefix => extra,
            PrefixPositions::FromZero => 0,
        };
        let mut x = self.embeddings.forward(input_ids, token_type_ids, past);
        // shared adapter factors (LoRTA) are combined once per forward, not once per site
        let step = self.adapters.as_ref().map(|a| a.step());
        for layer in &self.layers {
            x = layer.forward(x, mask.clone(), step.as_ref());
        }
        x
    }

    /// BERT's pooled output (tanh(dense(h₀))), when the checkpoint has a pooler.
    pub fn pooled(&self, hidden: Tensor<B, 3>) -> Option<Tensor<B, 2>> {
        self.pooler.as_ref().map(|p| burn::tensor::activation::tanh(p.forward2(first_token(hidden))))
    }

    /// Trainable parameters: adapter + prefixes + Houlsby adapters (everything under full
    /// fine-tuning).
    pub fn trainable_params(&self) -> usize {
        if self.tuning.full {
            return self.num_params();
        }
        self.adapters.num_params()
            + self
                .layers
                .iter()
                .map(|l| l.prefix.num_params() + l.houlsby_attention.num_params() + l.houlsby_ffn.num_params())
                .sum::<usize>()
    }
}

/// `h[:, 0, :]`.
pub fn first_token<B: Backend>(h: Tensor<B, 3>) -> Tensor<B, 2> {
    let [b, _, d] = h.dims();
    h.slice([0..b, 0..1, 0..d]).reshape([b, d])
}

/// Sequence classification (`num_labels` ≥ 2) or regression (`num_labels` = 1) on the first
/// token: `out(tanh(dense(h₀)))`, with `dense` = BERT's `pooler.dense` / RoBERTa's
/// `classifier.dense` and `out` = `classifier` / `classifier.out_proj`. In training, dropout
/// (`classifier_dropout`, else `hidden_dropout_prob`) as HF: RoBERTa before `dense` and before
/// `out`, BERT before `out` only.
#[derive(Module, Debug)]
pub struct BertForSequenceClassification<B: Backend> {
    pub encoder: BertModel<B>,
    pub dense: HeadDense<B>,
    pub out: HfLinear<B>,
    #[module(skip)]
    pub num_labels: usize,
    #[module(skip)]
    pub classifier_dropout: f64,
}

impl<B: Backend> BertForSequenceClassification<B> {
    fn head_names(flavor: EncoderFlavor) -> (&'static str, &'static str) {
        match flavor {
            EncoderFlavor::Bert => ("pooler.dense", "classifier"),
            EncoderFlavor::Roberta => ("classifier.dense", "classifier.out_proj"),
        }
    }

    fn build(config: &BertConfig, opts: &LoadOptions, naming: ArchNaming, b: &mut Builder<'_, B>) -> Result<Self> {
        let tuning = &opts.tuning;
        let encoder = BertModel::build(config, tuning, naming, b, false)?;
        let num_labels = opts.num_labels.unwrap_or(config.num_labels);
        let d = config.hidden_size;
        let (dense_name, out_name) = Self::head_names(config.flavor);
        let mut rng = lorta_core::init::seeded(tuning.seed.wrapping_add(0x4ead));
        let (dtype, device) = (b.dtype, b.device.clone());
        let dense_train = tuning.full || tuning.head == HeadTuning::Full;
        let out_train = tuning.full || tuning.head != HeadTuning::Frozen;
        // Missing head (a pre-trained-only checkpoint) or a new label count: fresh head,
        // N(0, 0.02²) weights and zero biases as HF initialises it, seeded.
        let fresh = |shape_out: usize, train: bool, rng: &mut rand::rngs::StdRng| HfLinear {
            weight: host_param_frozen(HostInit::Normal { std: 0.02 }, [shape_out, d], rng, dtype, &device, train),
            bias: Some(host_param_frozen(HostInit::Zeros, [shape_out], rng, dtype, &device, train)),
        };
        let dense = if b.has(&format!("{dense_name}.weight")) {
            b.linear(dense_name, d, d, true, dense_train)?
        } else {
            fresh(d, dense_train, &mut rng)
        };
        let out_key = format!("{out_name}.weight");
        let stored_labels = b.weights.as_ref().and_then(|w| w.resolve(&out_key).and_then(|k| w.info(&k))).map(|(_, s)| s[0]);
        let out = match stored_labels {
            Some(n) if n == num_labels => b.linear(out_name, d, num_labels, true, out_train)?,
            Some(_) => {
                // Re-initialised for the requested label count: drop the stored tensors.
                if let Some(w) = b.weights.as_mut() {
                    let (kw, kb) = (w.resolve(&out_key), w.resolve(&format!("{out_name}.bias")));
                    w.ignore(|k| Some(k) == kw.as_deref() || Some(k) == kb.as_deref());
                }
                fresh(num_labels, out_train, &mut rng)
            }
            None => fresh(num_labels, out_train, &mut rng),
        };
        let mut dense = HeadDense::new(dense, if tuning.full { HeadTuning::Full } else { tuning.head }, &mut rng, dtype, &device);
        let mut out = out;
        if let Some(t) = tuning.trainable_dtype.filter(|&t| t != dtype) {
            // mixed precision: the whole head (frozen parts too) computes in the trainable dtype
            dense = crate::tuning::cast_module(dense, t);
            out = crate::tuning::cast_module(out, t);
        }
        let classifier_dropout = DropoutConfig::default().with_override(tuning.dropout)?.classifier;
        Ok(BertForSequenceClassification { encoder, dense, out, num_labels, classifier_dropout })
    }

    /// Loads `*ForSequenceClassification` checkpoints, or a bare/pre-training checkpoint with a
    /// fresh head (`opts.num_labels`, default the config's).
    pub fn load(dir: &Path, opts: &LoadOptions, device: &B::Device) -> Result<Self> {
        let md = ModelDir::new(dir)?;
        let json = md.config()?;
        let config = BertConfig::from_json(&json)?;
        let dropout = DropoutConfig::from_bert_json(&json)?.with_override(opts.tuning.dropout)?;
        let mut w = Weights::open(&md.weight_files()?)?;
        let naming = bert_naming(Some(&w), &config, true);
        w.set_prefix(detect_prefix(&w, config.flavor));
        let model = persistent_weights::<B, _, _>(device, Builder::checkpoint(&mut w, opts.dtype, device), |mut b| {
            Self::build(&config, opts, naming.clone(), &mut b)
        })?
        .with_dropout(dropout);
        let prefix = w.prefix().to_string();
        w.ignore(|k| ignorable(k) || k.starts_with(&format!("{prefix}pooler.")));
        w.finish(config.architecture.as_deref().unwrap_or("sequence classification"))?;
        match opts.adapter.as_deref() {
            Some(d) => model.with_adapter_dir(d, opts.dtype),
            None => Ok(model),
        }
    }

    pub fn random(config: &BertConfig, opts: &LoadOptions, device: &B::Device) -> Result<Self> {
        persistent_weights::<B, _, _>(device, Builder::random(opts.dtype, device), |mut b| {
            Self::build(config, opts, bert_naming(None, config, true), &mut b)
        })
    }

    pub fn with_adapter_dir(mut self, dir: &Path, dtype: DType) -> Result<Self> {
        self.encoder = self.encoder.with_adapter_dir(dir, dtype)?;
        Ok(self)
    }

    /// Sets every dropout probability of the encoder and the head.
    pub fn with_dropout(mut self, d: DropoutConfig) -> Self {
        self.encoder = self.encoder.with_dropout(d);
        self.classifier_dropout = d.classifier;
        self
    }

    /// The dropout in effect (encoder and head).
    pub fn dropout(&self) -> DropoutConfig {
        DropoutConfig { classifier: self.classifier_dropout, ..self.encoder.dropout() }
    }

    /// Logits `[b, num_labels]` (`[b, 1]` for regression).
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2, Int>>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 2> {
        let h = self.encoder.forward(input_ids, attention_mask, token_type_ids);
        self.head(h)
    }

    /// The head on a last hidden state.
    pub fn head(&self, hidden: Tensor<B, 3>) -> Tensor<B, 2> {
        let p = self.classifier_dropout;
        let mut x = crate::nn::downcast(first_token(hidden), self.out.weight.val().dtype());
        if self.encoder.config.flavor == EncoderFlavor::Roberta {
            x = dropout(x, p);
        }
        let x = burn::tensor::activation::tanh(self.dense.forward2(x));
        self.out.forward2(dropout(x, p))
    }

    /// Exactly the trainable parameters: encoder extras (adapter, prefixes, Houlsby) + the
    /// head's trainable part; everything under full fine-tuning.
    pub fn trainable_params(&self) -> usize {
        let t = &self.encoder.tuning;
        if t.full {
            return self.num_params();
        }
        let head = match t.head {
            HeadTuning::Frozen => 0,
            _ => self.out.num_params() + self.dense.trainable(t.head),
        };
        self.encoder.trainable_params() + head
    }
}

fn host_param_frozen<B: Backend, const D: usize>(
    init: HostInit,
    shape: [usize; D],
    rng: &mut rand::rngs::StdRng,
    dtype: DType,
    device: &B::Device,
    trainable: bool,
) -> Param<Tensor<B, D>> {
    let p = host_param(init, shape, rng, dtype, device);
    if trainable {
        p
    } else {
        crate::nn::make_param(p.val().detach(), false)
    }
}

/// Int tensor `[b, s]` from rows of equal length.
pub fn int_batch<B: Backend>(rows: &[Vec<u32>], device: &B::Device) -> Result<Tensor<B, 2, Int>> {
    let b = rows.len();
    let s = rows.first().map(|r| r.len()).unwrap_or(0);
    if b == 0 || s == 0 {
        return Err(ModelError::input("empty batch"));
    }
    if rows.iter().any(|r| r.len() != s) {
        return Err(ModelError::input("batch rows have different lengths (pad them first)"));
    }
    let data: Vec<i64> = rows.iter().flat_map(|r| r.iter().map(|&x| x as i64)).collect();
    Ok(Tensor::from_data(TensorData::new(data, [b, s]), device))
}
