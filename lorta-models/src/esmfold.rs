//! ESMFold (HF `EsmForProteinFolding`), HF names kept: the ESM-2 stem under `esm.` (frozen,
//! [`crate::esm`]), `esm_s_combine` (softmax weights over the stem's hidden states),
//! `esm_s_mlp.{0,1,3}`, the residue embedding `embedding`, the folding trunk under `trunk.`
//! (`pairwise_positional_embedding.embedding`, `blocks.{l}` ([`crate::evoformer`]),
//! `recycle_s_norm`, `recycle_z_norm`, `recycle_disto`, `structure_module`
//! ([`crate::structure_module`]), `trunk2sm_s`, `trunk2sm_z`) and `distogram_head`.
//! The lDDT, pTM and LM heads of a checkpoint are not implemented (ignored on load).
//!
//! Inputs are AlphaFold `aatype` indices ([`crate::structure_module::aatype_of`]) with a
//! residue mask, as HF's `forward(input_ids, attention_mask)`. Outputs: `s_s` `[b, L, c_s]`,
//! `s_z` `[b, L, L, c_z]` (trunk states of the last recycle), `distogram_logits` `[b, L, L, 64]`
//! (symmetrised), and the structure module's outputs.
//!
//! Without a language model (`esm = None`, our extension for training without ESM-2 weights)
//! the sequence state starts from the residue embedding alone.
//!
//! Recycling (`num_recycles = N` runs the trunk N + 1 times): each pass adds
//! `recycle_s_norm(s_prev)`, `recycle_z_norm(z_prev)` and `recycle_disto(bins)` (Cβ distances of
//! the previous structure in 15 bins, 3.375–21.375 Å) to the trunk inputs; recycled tensors are
//! detached (HF runs all but the last pass under `no_grad`).
use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::module::embedding;
use burn::tensor::{backend::Backend, DType, Int, Tensor, TensorData};
use lorta_core::{AdapterConfig, AdapterSet, ArchNaming, MatrixKind, ModelShape};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ModelError, Result};
use crate::esm::{esm_ignorable, EsmConfig, EsmModel};
use crate::evoformer::{PairUpdate, TrunkAdapters, TrunkBlock, TrunkConfig, TRUNK_LN_EPS};
use crate::hub::ModelDir;
use crate::json::JsonFile;
use crate::load::LoadOptions;
use crate::nn::{make_param, matmul, persistent_weights, Builder, HfLinear, Init, LayerNorm};
use crate::structure_module::{StructureModule, StructureModuleConfig, StructureOutput};
use crate::tuning::{cast_module, HeadTuning, Tuning};
use crate::weights::Weights;

/// Distogram bins of the head (AlphaFold 2: 64 bins, 2.3125–21.6875 Å boundaries).
pub const DISTOGRAM_BINS: usize = 64;
/// Recycling distogram: 15 bins with 14 boundaries evenly spaced in [3.375, 21.375] Å.
pub const RECYCLE_BINS: usize = 15;
pub const RECYCLE_MIN_BIN: f64 = 3.375;
pub const RECYCLE_MAX_BIN: f64 = 21.375;
/// AlphaFold residue tokens of the embedding (20 amino acids, X, and HF's pad/mask extras).
pub const N_TOKENS_EMBED: usize = 23;

/// ESM-2's vocabulary (HF `get_default_vocab_list`), used when a config has no `vocab_list`.
pub const ESM2_VOCAB: [&str; 33] = [
    "<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H", "W",
    "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
];

/// `EsmForProteinFolding`'s configuration: the ESM stem (None: no language model), the
/// ESMFold fields, the trunk and the structure module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EsmFoldConfig {
    pub esm: Option<EsmConfig>,
    pub vocab_list: Vec<String>,
    pub embed_aa: bool,
    pub trunk: TrunkConfig,
    pub structure_module: StructureModuleConfig,
}

fn sub(j: &JsonFile, key: &str) -> Result<JsonFile> {
    match j.get(key) {
        Some(v @ Value::Object(_)) => Ok(JsonFile { path: j.path.clone(), value: v.clone() }),
        Some(other) => Err(j.err(format!("`{key}` must be an object, found {other}"))),
        None => Ok(JsonFile { path: j.path.clone(), value: Value::Object(Default::default()) }),
    }
}

impl EsmFoldConfig {
    pub fn from_json(j: &JsonFile) -> Result<Self> {
        let esm = EsmConfig::from_json(j)?;
        let fold = sub(j, "esmfold_config")?;
        let tj = sub(&fold, "trunk")?;
        let sj = sub(&tj, "structure_module")?;
        if fold.opt_bool("fp16_esm")? == Some(true) {
            // HF casts the stem to f16; we run it in the compute dtype (note for parity users)
        }
        for flag in ["bypass_lm", "use_esm_attn_map", "esm_ablate_pairwise", "esm_ablate_sequence"] {
            if fold.opt_bool(flag)? == Some(true) {
                return Err(fold.err(format!("esmfold_config.{flag} = true is not supported")));
            }
        }
        let vocab_list = match j.get("vocab_list") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(String::from).ok_or_else(|| j.err("`vocab_list` must hold strings")))
                .collect::<Result<Vec<_>>>()?,
            Some(other) => return Err(j.err(format!("`vocab_list` must be a list, found {other}"))),
            None => ESM2_VOCAB.iter().map(|s| s.to_string()).collect(),
        };
        let d = TrunkConfig::esmfold(48);
        let pair_update = match tj.opt_str("pair_update")?.as_deref() {
            None | Some("sequence_to_pair") => PairUpdate::SequenceToPair,
            Some("outer_product_mean") => PairUpdate::OuterProductMean { dim: tj.opt_usize("outer_product_mean_dim")?.unwrap_or(32) },
            Some(other) => return Err(tj.err(format!("trunk.pair_update `{other}` (sequence_to_pair, outer_product_mean)"))),
        };
        let trunk = TrunkConfig {
            num_blocks: tj.opt_usize("num_blocks")?.unwrap_or(d.num_blocks),
            sequence_state_dim: tj.opt_usize("sequence_state_dim")?.unwrap_or(d.sequence_state_dim),
            pairwise_state_dim: tj.opt_usize("pairwise_state_dim")?.unwrap_or(d.pairwise_state_dim),
            sequence_head_width: tj.opt_usize("sequence_head_width")?.unwrap_or(d.sequence_head_width),
            pairwise_head_width: tj.opt_usize("pairwise_head_width")?.unwrap_or(d.pairwise_head_width),
            position_bins: tj.opt_usize("position_bins")?.unwrap_or(d.position_bins),
            max_recycles: tj.opt_usize("max_recycles")?.unwrap_or(d.max_recycles),
            pair_update,
        };
        trunk.validate().map_err(|m| tj.err(format!("esmfold_config.trunk: {m}")))?;
        let sd = StructureModuleConfig::default();
        let structure_module = StructureModuleConfig {
            sequence_dim: sj.opt_usize("sequence_dim")?.unwrap_or(sd.sequence_dim),
            pairwise_dim: sj.opt_usize("pairwise_dim")?.unwrap_or(sd.pairwise_dim),
            ipa_dim: sj.opt_usize("ipa_dim")?.unwrap_or(sd.ipa_dim),
            resnet_dim: sj.opt_usize("resnet_dim")?.unwrap_or(sd.resnet_dim),
            num_heads_ipa: sj.opt_usize("num_heads_ipa")?.unwrap_or(sd.num_heads_ipa),
            num_qk_points: sj.opt_usize("num_qk_points")?.unwrap_or(sd.num_qk_points),
            num_v_points: sj.opt_usize("num_v_points")?.unwrap_or(sd.num_v_points),
            num_blocks: sj.opt_usize("num_blocks")?.unwrap_or(sd.num_blocks),
            num_transition_layers: sj.opt_usize("num_transition_layers")?.unwrap_or(sd.num_transition_layers),
            num_resnet_blocks: sj.opt_usize("num_resnet_blocks")?.unwrap_or(sd.num_resnet_blocks),
            num_angles: sj.opt_usize("num_angles")?.unwrap_or(sd.num_angles),
            trans_scale_factor: sj.opt_f64("trans_scale_factor")?.unwrap_or(sd.trans_scale_factor),
            epsilon: sj.opt_f64("epsilon")?.unwrap_or(sd.epsilon),
            inf: sj.opt_f64("inf")?.unwrap_or(sd.inf),
        };
        if structure_module.num_angles != 7 {
            return Err(sj.err(format!("structure_module.num_angles must be 7 (AlphaFold's torsions), found {}", structure_module.num_angles)));
        }
        Ok(EsmFoldConfig { esm: Some(esm), vocab_list, embed_aa: fold.opt_bool("embed_aa")?.unwrap_or(true), trunk, structure_module })
    }

    /// The paper's model: ESM-2 35M, a 12-block trunk with the outer product mean, ESMFold's
    /// structure module. `esm = None` drops the language model.
    pub fn paper(with_esm: bool) -> Self {
        EsmFoldConfig {
            esm: with_esm.then(EsmConfig::esm2_35m),
            vocab_list: ESM2_VOCAB.iter().map(|s| s.to_string()).collect(),
            embed_aa: true,
            trunk: TrunkConfig::paper(),
            structure_module: StructureModuleConfig::default(),
        }
    }

    /// Adapter shape of the trunk's sequence attentions (d = c_s, h = c_s / head width, L blocks).
    pub fn sequence_shape(&self) -> ModelShape {
        let t = &self.trunk;
        ModelShape::new(t.sequence_state_dim, t.sequence_heads(), t.num_blocks, 4 * t.sequence_state_dim)
    }

    /// Adapter shape of the triangle attentions (d = c_z, h = c_z / head width, 2L "layers":
    /// starting node at 2l, ending node at 2l + 1).
    pub fn pair_shape(&self) -> ModelShape {
        let t = &self.trunk;
        ModelShape::new(t.pairwise_state_dim, t.pairwise_heads(), 2 * t.num_blocks, 4 * t.pairwise_state_dim)
    }

    /// AlphaFold index (+1, 0 = padding) → ESM token id.
    pub fn af2_to_esm(&self) -> std::result::Result<Vec<u32>, String> {
        let find = |t: &str| self.vocab_list.iter().position(|v| v == t).map(|i| i as u32).ok_or_else(|| format!("vocab_list has no `{t}`"));
        let mut out = vec![find("<pad>")?];
        for t in crate::structure_module::residue_constants().restypes_with_x.iter() {
            out.push(find(t)?);
        }
        Ok(out)
    }
}

/// `esm_s_mlp`: LayerNorm, Linear, ReLU, Linear.
#[derive(Module, Debug)]
pub struct EsmSMlp<B: Backend> {
    pub norm: LayerNorm<B>,
    pub linear_1: HfLinear<B>,
    pub linear_2: HfLinear<B>,
}

/// The folding trunk (`trunk.`) with its adapter sets.
#[derive(Module, Debug)]
pub struct FoldingTrunk<B: Backend> {
    pub pairwise_positional_embedding: Param<Tensor<B, 2>>,
    pub blocks: Vec<TrunkBlock<B>>,
    pub recycle_s_norm: LayerNorm<B>,
    pub recycle_z_norm: LayerNorm<B>,
    pub recycle_disto: Param<Tensor<B, 2>>,
    pub structure_module: StructureModule<B>,
    pub trunk2sm_s: HfLinear<B>,
    pub trunk2sm_z: HfLinear<B>,
    /// Adapter over the sequence attentions (`Site(l, q|k|v|o|g)`, FfnDown = `mlp_seq`).
    pub sequence_adapters: Option<AdapterSet<B>>,
    /// Adapter over the triangle attentions (`Site(2l, ·)` start, `Site(2l+1, ·)` end).
    pub pair_adapters: Option<AdapterSet<B>>,
    #[module(skip)]
    pub position_bins: usize,
}

/// Options of one folding forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoldOptions {
    /// Extra trunk passes (HF's `num_recycles`; 0 = one pass).
    pub num_recycles: usize,
    /// Run the structure module on the last pass (earlier passes always run it: recycling
    /// needs their coordinates).
    pub structure: bool,
}

impl Default for FoldOptions {
    fn default() -> Self {
        FoldOptions { num_recycles: 0, structure: true }
    }
}

/// What [`EsmFold::forward`] returns.
#[derive(Clone, Debug)]
pub struct FoldOutput<B: Backend> {
    pub s_s: Tensor<B, 3>,
    pub s_z: Tensor<B, 4>,
    /// `[b, L, L, 64]`, symmetrised.
    pub distogram_logits: Tensor<B, 4>,
    pub structure: Option<StructureOutput<B>>,
}

/// ESMFold. Trainable parts under a [`Tuning`]: the trunk adapters; with a trainable head
/// (`HeadTuning::Full`/`Lora`) the input and output heads (`esm_s_combine`, `esm_s_mlp`,
/// `embedding`, `distogram_head`); with `full` every weight except the ESM stem, which
/// ESMFold always keeps frozen.
#[derive(Module, Debug)]
pub struct EsmFold<B: Backend> {
    pub esm: Option<EsmModel<B>>,
    pub esm_s_combine: Option<Param<Tensor<B, 1>>>,
    pub esm_s_mlp: Option<EsmSMlp<B>>,
    pub embedding: Option<Param<Tensor<B, 2>>>,
    pub trunk: FoldingTrunk<B>,
    pub distogram_head: HfLinear<B>,
    #[module(skip)]
    pub config: EsmFoldConfig,
    #[module(skip)]
    pub tuning: Tuning,
    #[module(skip)]
    pub af2_to_esm: Vec<u32>,
}

/// The adapter config of the triangle-attention family: the pair family has no FfnDown sites
/// (its "layers" are the two attentions of each block, the pair transition is one per block), so
/// IA3 scales only K and V there.
pub fn pair_family_config(c: &AdapterConfig) -> AdapterConfig {
    match c {
        AdapterConfig::Ia3(ia3) => {
            let mut ia3 = ia3.clone();
            ia3.targets.retain(|&k| k != MatrixKind::FfnDown);
            AdapterConfig::Ia3(ia3)
        }
        other => other.clone(),
    }
}

/// Checkpoint keys that no part here uses.
fn esmfold_ignorable(key: &str) -> bool {
    key == "af2_to_esm"
        || key.starts_with("ptm_head.")
        || key.starts_with("lm_head.")
        || key.starts_with("lddt_head.")
        || (key.starts_with("esm.") && esm_ignorable(key))
}

impl<B: Backend> EsmFold<B> {
    /// Builds everything but the ESM stem from `b` (HF names, no prefix) and takes `esm` as given.
    pub fn build(config: &EsmFoldConfig, tuning: &Tuning, esm: Option<EsmModel<B>>, b: &mut Builder<'_, B>) -> Result<Self> {
        let c = config;
        let t = &c.trunk;
        let (cs, cz) = (t.sequence_state_dim, t.pairwise_state_dim);
        let full = tuning.full;
        let head = full || tuning.head != HeadTuning::Frozen;
        let (esm_s_combine, esm_s_mlp) = match &esm {
            Some(e) => {
                let d = e.config.hidden_size;
                let n = e.config.num_hidden_layers + 1;
                (
                    Some(b.param("esm_s_combine", [n], Init::Zeros, head)?),
                    Some(EsmSMlp {
                        norm: b.layer_norm("esm_s_mlp.0", d, TRUNK_LN_EPS, head)?,
                        linear_1: b.linear("esm_s_mlp.1", d, cs, true, head)?,
                        linear_2: b.linear("esm_s_mlp.3", cs, cs, true, head)?,
                    }),
                )
            }
            None => (None, None),
        };
        let embedding = if c.embed_aa || esm.is_none() { Some(b.param("embedding.weight", [N_TOKENS_EMBED, cs], Init::Normal(b.init_std), head)?) } else { None };
        let blocks = (0..t.num_blocks).map(|l| TrunkBlock::build(t, l, b, full)).collect::<Result<Vec<_>>>()?;
        let sm = &c.structure_module;
        let trunk = FoldingTrunk {
            pairwise_positional_embedding: b.param("trunk.pairwise_positional_embedding.embedding.weight", [2 * t.position_bins + 2, cz], Init::Normal(b.init_std), full)?,
            blocks,
            recycle_s_norm: b.layer_norm("trunk.recycle_s_norm", cs, TRUNK_LN_EPS, full)?,
            recycle_z_norm: b.layer_norm("trunk.recycle_z_norm", cz, TRUNK_LN_EPS, full)?,
            recycle_disto: b.param("trunk.recycle_disto.weight", [RECYCLE_BINS, cz], Init::Normal(b.init_std), full)?,
            structure_module: {
                // f16's range (6.5e4) is too small for the structure module's backward (squared
                // point distances, norms near zero): under f16 it is kept in f32, as OpenFold keeps
                // IPA's point terms; bf16 has f32's range and stays bf16.
                let dtype = b.dtype;
                b.dtype = structure_module_dtype(dtype);
                let m = StructureModule::build(sm, "trunk.structure_module", b, full);
                b.dtype = dtype;
                m?
            },
            trunk2sm_s: b.linear("trunk.trunk2sm_s", cs, sm.sequence_dim, true, full)?,
            trunk2sm_z: b.linear("trunk.trunk2sm_z", cz, sm.pairwise_dim, true, full)?,
            sequence_adapters: tuning.init_adapter::<B>(&c.sequence_shape(), b.dtype, &b.device)?,
            pair_adapters: match &tuning.adapter {
                Some(a) => Some(cast_module(pair_family_config(a).init::<B>(&c.pair_shape(), tuning.seed.wrapping_add(0x9a1e), &b.device)?, b.dtype)),
                None => None,
            },
            position_bins: t.position_bins,
        };
        let distogram_head = b.linear("distogram_head", cz, DISTOGRAM_BINS, true, head)?;
        let af2_to_esm = c.af2_to_esm().map_err(ModelError::input)?;
        Ok(EsmFold { esm, esm_s_combine, esm_s_mlp, embedding, trunk, distogram_head, config: c.clone(), tuning: tuning.clone(), af2_to_esm })
    }

    /// Loads an `EsmForProteinFolding` checkpoint folder (HF layout).
    pub fn load(dir: &Path, opts: &LoadOptions, device: &B::Device) -> Result<Self> {
        let md = ModelDir::new(dir)?;
        let config = EsmFoldConfig::from_json(&md.config()?)?;
        let mut w = Weights::open(&md.weight_files()?)?;
        let esm_config = config.esm.clone().expect("from_json sets the stem");
        let esm = {
            w.set_prefix("esm.");
            // the stem is frozen in ESMFold: no adapters, no training
            persistent_weights::<B, _, _>(device, Builder::checkpoint(&mut w, opts.dtype, device), |mut b| {
                EsmModel::build(&esm_config, &Tuning::frozen(), ArchNaming::Bert { prefix: "esm.".into() }, &mut b)
            })?
        };
        w.set_prefix("");
        let model = persistent_weights::<B, _, _>(device, (Builder::checkpoint(&mut w, opts.dtype, device), esm), |(mut b, esm)| {
            Self::build(&config, &opts.tuning, Some(esm), &mut b)
        })?;
        w.ignore(esmfold_ignorable);
        w.finish("EsmForProteinFolding")?;
        Ok(model)
    }

    /// Random weights (on device). `esm`: a loaded (frozen) ESM stem, or None for the
    /// embedding-only variant. As HF's fresh `EsmForProteinFolding` (whose `_init_weights` is
    /// `EsmPreTrainedModel`'s): every linear and embedding N(0, 0.02²), zero biases, LayerNorms
    /// at identity, `esm_s_combine` and IPA `head_weights` zero; AlphaFold's zero / gating
    /// inits are not applied there either.
    pub fn random(config: &EsmFoldConfig, tuning: &Tuning, esm: Option<EsmModel<B>>, dtype: DType, device: &B::Device) -> Result<Self> {
        let mut c = config.clone();
        c.esm = esm.as_ref().map(|e| e.config.clone());
        persistent_weights::<B, _, _>(device, (Builder::random(dtype, device), esm), |(mut b, esm)| Self::build(&c, tuning, esm, &mut b))
    }

    /// Trainable parameters (see the type's docs).
    pub fn trainable_params(&self) -> usize {
        let heads = self.esm_s_combine.num_params() + self.esm_s_mlp.num_params() + self.embedding.num_params() + self.distogram_head.num_params();
        if self.tuning.full {
            return self.num_params() - self.esm.num_params();
        }
        let adapters = self.trunk.sequence_adapters.num_params() + self.trunk.pair_adapters.num_params();
        adapters + if self.tuning.head != HeadTuning::Frozen { heads } else { 0 }
    }

    /// The adapter configs' parameter count on this trunk without building a model.
    pub fn adapter_params(config: &EsmFoldConfig, adapter: &AdapterConfig, device: &B::Device) -> Result<usize> {
        let s = adapter.init::<B>(&config.sequence_shape(), 0, device)?.num_params();
        let p = pair_family_config(adapter).init::<B>(&config.pair_shape(), 0, device)?.num_params();
        Ok(s + p)
    }

    /// Combined ESM representation `[b, L, d_esm]`: softmax(`esm_s_combine`)-weighted sum of the
    /// stem's hidden states for `<cls> seq <eos>`, without the added tokens.
    fn language_model_states(&self, esm: &EsmModel<B>, aatype: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, l] = aatype.dims();
        let device = aatype.device();
        let pad = self.af2_to_esm[0] as i64;
        let map = Tensor::<B, 1, Int>::from_data(TensorData::new(self.af2_to_esm.iter().map(|&x| x as i64).collect::<Vec<_>>(), [self.af2_to_esm.len()]), &device);
        // (aa + 1), 0 where padded → ESM ids
        let idx = (aatype + 1) * mask.clone();
        let esm_ids = map.select(0, idx.reshape([b * l])).reshape([b, l]);
        let cls = self.config.vocab_list.iter().position(|v| v == "<cls>").unwrap_or(0) as i64;
        let eos = self.config.vocab_list.iter().position(|v| v == "<eos>").unwrap_or(2) as i64;
        let bos = Tensor::<B, 2, Int>::full([b, 1], cls, &device);
        let tail = Tensor::<B, 2, Int>::full([b, 1], pad, &device);
        let ids = Tensor::cat(vec![bos, esm_ids, tail], 1);
        // <eos> right after each sequence: position = number of residues + 1
        let lengths = mask.clone().sum_dim(1); // [b, 1]
        let pos = Tensor::<B, 1, Int>::arange(0..(l + 2) as i64, &device).reshape([1, l + 2]);
        let is_eos = pos.equal(lengths.add_scalar(1).expand([b, l + 2]));
        let ids = ids.mask_fill(is_eos, eos);
        let attn = ids.clone().not_equal_elem(pad).int();
        let states = esm.forward_hidden_states(ids, Some(attn));
        let n = states.len();
        let d = states[0].dims()[2];
        let w = softmax(self.esm_s_combine.as_ref().expect("stem present").val(), 0);
        let stacked = Tensor::stack::<4>(states, 3); // [b, L+2, d, n]
        let combined = matmul(stacked, w.reshape([1, 1, n, 1])).reshape([b, l + 2, d]);
        combined.slice([0..b, 1..l + 1, 0..d])
    }

    /// The trunk's initial sequence state `[b, L, c_s]`.
    pub fn initial_sequence_state(&self, aatype: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let mut s = match (&self.esm, &self.esm_s_mlp) {
            (Some(esm), Some(mlp)) => {
                let e = self.language_model_states(esm, aatype.clone(), mask).detach();
                mlp.linear_2.forward(relu(mlp.linear_1.forward(mlp.norm.forward(e))))
            }
            _ => {
                let [b, l] = aatype.dims();
                let cs = self.config.trunk.sequence_state_dim;
                Tensor::zeros([b, l, cs], (&aatype.device(), self.distogram_head.weight.val().dtype()))
            }
        };
        if let Some(e) = &self.embedding {
            s = s + embedding(e.val(), aatype);
        }
        s
    }

    /// Folds a batch: `aatype: [b, L]` AlphaFold indices, `mask: [b, L]` (1 = residue, right
    /// padding), residue index `0..L`.
    pub fn forward(&self, aatype: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>, opts: FoldOptions) -> FoldOutput<B> {
        let s0 = self.initial_sequence_state(aatype.clone(), mask.clone());
        self.forward_from_state(s0, aatype, mask, opts)
    }

    /// [`Self::forward`] from a given initial sequence state (e.g. cached ESM features).
    pub fn forward_from_state(&self, s0: Tensor<B, 3>, aatype: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>, opts: FoldOptions) -> FoldOutput<B> {
        let [b, l, _] = s0.dims();
        let cz = self.config.trunk.pairwise_state_dim;
        let device = s0.device();
        let dtype = s0.dtype();
        let maskf = mask.clone().float().cast(dtype);
        let z0 = Tensor::<B, 4>::zeros([b, l, l, cz], (&device, dtype));
        let t = &self.trunk;
        let seq_step = t.sequence_adapters.as_ref().map(|a| a.step());
        let pair_step = t.pair_adapters.as_ref().map(|a| a.step());
        let adapters = TrunkAdapters { sequence: seq_step.as_ref(), pair: pair_step.as_ref() };
        let relpos = self.relative_positions(&mask);
        let mut recycle_s = Tensor::<B, 3>::zeros([b, l, self.config.trunk.sequence_state_dim], (&device, dtype));
        let mut recycle_z = Tensor::<B, 4>::zeros([b, l, l, cz], (&device, dtype));
        let mut bins = Tensor::<B, 3, Int>::zeros([b, l, l], &device);
        let passes = opts.num_recycles + 1;
        let mut last = None;
        for pass in 0..passes {
            let rs = t.recycle_s_norm.forward(recycle_s.detach());
            let rz = t.recycle_z_norm.forward(recycle_z.detach()) + embed_pairs(t.recycle_disto.val(), bins.clone());
            let mut s = s0.clone() + rs;
            let mut z = z0.clone() + rz + relpos.clone();
            for block in &t.blocks {
                (s, z) = block.forward(s, z, maskf.clone(), adapters);
            }
            let final_pass = pass + 1 == passes;
            let structure = if !final_pass || opts.structure {
                let sm_dtype = structure_module_dtype(dtype);
                let sm_s = t.trunk2sm_s.forward(s.clone());
                let sm_z = crate::evoformer::lin4(&t.trunk2sm_z, z.clone());
                let sm = if sm_dtype == dtype {
                    t.structure_module.forward(sm_s, sm_z, aatype.clone(), maskf.clone())
                } else {
                    t.structure_module.forward(sm_s.cast(sm_dtype), sm_z.cast(sm_dtype), aatype.clone(), maskf.clone().cast(sm_dtype))
                };
                if !final_pass {
                    bins = recycle_bins(sm.final_positions().detach());
                }
                Some(sm)
            } else {
                None
            };
            recycle_s = s.clone();
            recycle_z = z.clone();
            last = Some((s, z, structure));
        }
        let (s_s, s_z, structure) = last.expect("at least one pass");
        let logits = crate::evoformer::lin4(&self.distogram_head, s_z.clone());
        let distogram_logits = (logits.clone() + logits.swap_dims(1, 2)) / 2.0;
        FoldOutput { s_s, s_z, distogram_logits, structure: if opts.structure { structure } else { None } }
    }

    /// `trunk.pairwise_positional_embedding`: clamp(j − i, ±bins) + bins + 1, 0 for masked pairs.
    fn relative_positions(&self, mask: &Tensor<B, 2, Int>) -> Tensor<B, 4> {
        let [b, l] = mask.dims();
        let device = mask.device();
        let bins = self.trunk.position_bins as i64;
        let idx = Tensor::<B, 1, Int>::arange(0..l as i64, &device);
        let diff = idx.clone().reshape([1, l]) - idx.reshape([l, 1]); // [i, j] = j − i
        let diff = diff.clamp(-bins, bins).add_scalar(bins + 1).reshape([1, l, l]).expand([b, l, l]);
        let pair_mask = mask.clone().reshape([b, 1, l]) * mask.clone().reshape([b, l, 1]);
        embed_pairs(self.trunk.pairwise_positional_embedding.val(), diff * pair_mask)
    }
}

/// HF `EsmFoldingTrunk.distogram`: bins of Cβ–Cβ distances (Cβ placed from N, Cα, C with
/// AlphaFold's ideal coefficients) against 14 boundaries in [3.375, 21.375] Å.
/// The structure module's dtype for a trunk computing in `dtype`: f32 under f16 (see the build).
pub fn structure_module_dtype(dtype: DType) -> DType {
    if dtype == DType::F16 {
        DType::F32
    } else {
        dtype
    }
}

pub fn recycle_bins<B: Backend>(positions: Tensor<B, 4>) -> Tensor<B, 3, Int> {
    let [b, l, _, _] = positions.dims();
    let atom = |i: usize| positions.clone().slice([0..b, 0..l, i..i + 1, 0..3]).reshape([b, l, 3]);
    let (n, ca, c) = (atom(0), atom(1), atom(2));
    let bv = ca.clone() - n;
    let cv = c - ca.clone();
    let a = cross(bv.clone(), cv.clone());
    let cb = a * -0.58273431 + bv * 0.56802827 - cv * 0.54067466 + ca;
    let d2 = (cb.clone().reshape([b, 1, l, 3]) - cb.reshape([b, l, 1, 3])).powi_scalar(2).sum_dim(3).reshape([b, l, l]);
    let mut bins = Tensor::<B, 3, Int>::zeros([b, l, l], &d2.device());
    let k = RECYCLE_BINS - 1;
    for i in 0..k {
        let boundary = linspace_f32(RECYCLE_MIN_BIN as f32, RECYCLE_MAX_BIN as f32, k, i);
        bins = bins + d2.clone().greater_elem(boundary * boundary).int();
    }
    bins
}

/// `torch.linspace(start, end, steps)[i]` in f32 (torch's symmetric evaluation).
fn linspace_f32(start: f32, end: f32, steps: usize, i: usize) -> f32 {
    let step = (end - start) / (steps - 1) as f32;
    if i < steps / 2 {
        start + step * i as f32
    } else {
        end - step * (steps - 1 - i) as f32
    }
}

/// Embedding rows for pair indices `[b, n, m]` → `[b, n, m, c]`.
fn embed_pairs<B: Backend>(weights: Tensor<B, 2>, idx: Tensor<B, 3, Int>) -> Tensor<B, 4> {
    let [b, n, m] = idx.dims();
    let c = weights.dims()[1];
    embedding(weights, idx.reshape([b, n * m])).reshape([b, n, m, c])
}

fn cross<B: Backend>(u: Tensor<B, 3>, v: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, l, _] = u.dims();
    let c = |t: &Tensor<B, 3>, i: usize| t.clone().slice([0..b, 0..l, i..i + 1]);
    Tensor::cat(
        vec![
            c(&u, 1) * c(&v, 2) - c(&u, 2) * c(&v, 1),
            c(&u, 2) * c(&v, 0) - c(&u, 0) * c(&v, 2),
            c(&u, 0) * c(&v, 1) - c(&u, 1) * c(&v, 0),
        ],
        2,
    )
}

/// Frozen parameter helper for callers building heads by hand.
pub fn frozen<B: Backend, const D: usize>(t: Tensor<B, D>) -> Param<Tensor<B, D>> {
    make_param(t, false)
}

/// Every adapter site kind of the trunk, in `C_m` order.
pub const TRUNK_TARGETS: [MatrixKind; 5] = MatrixKind::GATED_ATTENTION;

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(edit: impl FnOnce(&mut Value)) -> Result<EsmFoldConfig> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/esmfold-tiny/config.json");
        let mut j = JsonFile::read(&path).unwrap();
        edit(&mut j.value);
        EsmFoldConfig::from_json(&j)
    }

    #[test]
    fn config_reads_the_fixture_and_the_pair_update_switch() {
        let c = config_with(|_| {}).unwrap();
        assert_eq!((c.trunk.num_blocks, c.trunk.sequence_state_dim, c.trunk.pairwise_state_dim), (2, 16, 8));
        assert_eq!(c.trunk.pair_update, PairUpdate::SequenceToPair);
        assert_eq!(c.structure_module.num_v_points, 3);
        let c = config_with(|v| {
            v["esmfold_config"]["trunk"]["pair_update"] = "outer_product_mean".into();
            v["esmfold_config"]["trunk"]["outer_product_mean_dim"] = 7.into();
        })
        .unwrap();
        assert_eq!(c.trunk.pair_update, PairUpdate::OuterProductMean { dim: 7 });
    }

    #[test]
    fn config_errors_name_the_file_and_key() {
        let e = config_with(|v| v["esmfold_config"]["trunk"]["pair_update"] = "msa".into()).unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("pair_update"), "{e}");
        let e = config_with(|v| v["esmfold_config"]["trunk"]["sequence_head_width"] = 5.into()).unwrap_err().to_string();
        assert!(e.contains("sequence_head_width"), "{e}");
        let e = config_with(|v| v["esmfold_config"]["trunk"]["structure_module"]["num_angles"] = 5.into()).unwrap_err().to_string();
        assert!(e.contains("num_angles"), "{e}");
        let e = config_with(|v| v["esmfold_config"]["bypass_lm"] = true.into()).unwrap_err().to_string();
        assert!(e.contains("bypass_lm"), "{e}");
        let e = config_with(|v| v["vocab_list"] = serde_json::json!(["<pad>", "A"])).map(|c| c.af2_to_esm()).unwrap().unwrap_err();
        assert!(e.contains("vocab_list has no"), "{e}");
    }

    /// Cβ placement and 15-bin recycling distogram on a hand-made backbone: residues 4 Å apart
    /// along x with identical local geometry, so Cβ–Cβ distances are multiples of 4 Å.
    #[test]
    fn recycle_bins_count_boundaries_below_the_cb_distance() {
        type B = burn_ndarray::NdArray<f32>;
        let dev = Default::default();
        let l = 4;
        let mut data = vec![0f32; l * 14 * 3];
        for i in 0..l {
            let x = 4.0 * i as f32;
            let atoms = [[x - 1.2, 0.8, 0.0], [x, 0.0, 0.0], [x + 1.3, 0.6, 0.0]];
            for (a, p) in atoms.iter().enumerate() {
                for k in 0..3 {
                    data[(i * 14 + a) * 3 + k] = p[k];
                }
            }
        }
        let pos = Tensor::<B, 4>::from_data(TensorData::new(data, [1, l, 14, 3]), &dev);
        let bins = recycle_bins(pos).into_data().to_vec::<i64>().unwrap();
        let step = (RECYCLE_MAX_BIN - RECYCLE_MIN_BIN) / 13.0;
        for i in 0..l {
            for j in 0..l {
                let d = 4.0 * (i as f64 - j as f64).abs();
                let want = (0..14).filter(|&k| d > RECYCLE_MIN_BIN + step * k as f64).count() as i64;
                assert_eq!(bins[i * l + j], want, "pair ({i},{j}) at {d} Å");
            }
        }
    }
}
