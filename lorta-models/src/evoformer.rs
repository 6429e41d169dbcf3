//! The folding trunk of ESMFold (HF `EsmFoldingTrunk` blocks, `EsmFoldTriangularSelfAttentionBlock`),
//! HF names kept: per block `layernorm_1`, `seq_attention.{proj, o_proj, g_proj}`,
//! `pair_to_sequence.{layernorm, linear}`, `sequence_to_pair.{layernorm, proj, o_proj}`,
//! `tri_mul_out` / `tri_mul_in.{layer_norm_in, linear_a_p, linear_a_g, linear_b_p, linear_b_g,
//! linear_g, linear_z, layer_norm_out}`, `tri_att_start` / `tri_att_end.{layer_norm, linear,
//! mha.linear_{q,k,v,o,g}}`, `mlp_seq` / `mlp_pair.mlp.{0,1,3}`.
//!
//! The paper's variant replaces `sequence_to_pair` by AlphaFold 2's outer product mean (Jumper
//! et al. 2021, Alg. 10; [`PairUpdate::OuterProductMean`]), our parameter names
//! `outer_product_mean.{layer_norm, linear_a, linear_b, linear_out}` (OpenFold's).
//!
//! Inference semantics: dropouts are identities. Adapter sites (see [`TrunkAdapters`]): the
//! sequence attention's Q, K, V (the head-interleaved thirds of `proj`), O (`o_proj`) and the
//! gate (`g_proj`) are `Site(l, ·)` of the sequence family; the triangle attentions' `linear_q/k/v/o/g`
//! are `Site(2l, ·)` (around the starting node) and `Site(2l+1, ·)` (ending node) of the pair
//! family (no FfnDown sites there: IA3 scales the sequence transition `mlp_seq.mlp.3` only). The pair-bias projections (`pair_to_sequence.linear`, `tri_att_*.linear`: c_z → heads)
//! are not sites: they are not d×d head-split maps, hold c_z·h weights each, and stay frozen
//! (trained only under full fine-tuning).
use burn::module::Module;
use burn::tensor::activation::{relu, sigmoid, softmax};
use burn::tensor::{backend::Backend, Tensor};
use lorta_core::{AdapterStep, MatrixKind, Site};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::nn::{matmul, Builder, HfLinear, LayerNorm};

/// PyTorch's `nn.LayerNorm` default, used everywhere in the trunk.
pub const TRUNK_LN_EPS: f64 = 1e-5;
/// Triangle attention's mask bias magnitude (`inf` of `EsmFoldTriangleAttention`).
pub const TRIANGLE_INF: f64 = 1e9;
/// OpenFold's outer-product-mean normaliser epsilon.
pub const OPM_EPS: f64 = 1e-3;

/// How the sequence state writes into the pair state in every block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PairUpdate {
    /// ESMFold's `sequence_to_pair`: LayerNorm, `proj` to 2·(c_z/2), then `o_proj` of
    /// `[q_j ⊙ k_i, q_j − k_i]`.
    SequenceToPair,
    /// AlphaFold 2's outer product mean with one sequence: LayerNorm, `a = linear_a(s)`,
    /// `b = linear_b(s)` (c channels each, masked), `z_ij += (linear_out(vec(a_i ⊗ b_j))) /
    /// (m_i·m_j + 10⁻³)`. The paper's choice for its 12-block trunk.
    OuterProductMean { dim: usize },
}

/// HF `TrunkConfig` (the fields the trunk uses) plus the pair-update switch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrunkConfig {
    pub num_blocks: usize,
    pub sequence_state_dim: usize,
    pub pairwise_state_dim: usize,
    pub sequence_head_width: usize,
    pub pairwise_head_width: usize,
    pub position_bins: usize,
    pub max_recycles: usize,
    pub pair_update: PairUpdate,
}

impl TrunkConfig {
    /// ESMFold's trunk (48 blocks, s = 1024, z = 128, head width 32) with `num_blocks` blocks.
    pub fn esmfold(num_blocks: usize) -> Self {
        TrunkConfig {
            num_blocks,
            sequence_state_dim: 1024,
            pairwise_state_dim: 128,
            sequence_head_width: 32,
            pairwise_head_width: 32,
            position_bins: 32,
            max_recycles: 4,
            pair_update: PairUpdate::SequenceToPair,
        }
    }
    /// The paper's trunk: 12 blocks with AlphaFold 2's outer product mean (c = 32).
    pub fn paper() -> Self {
        TrunkConfig { pair_update: PairUpdate::OuterProductMean { dim: 32 }, ..Self::esmfold(12) }
    }
    pub fn sequence_heads(&self) -> usize {
        self.sequence_state_dim / self.sequence_head_width
    }
    pub fn pairwise_heads(&self) -> usize {
        self.pairwise_state_dim / self.pairwise_head_width
    }
    pub fn validate(&self) -> std::result::Result<(), String> {
        let (s, z) = (self.sequence_state_dim, self.pairwise_state_dim);
        if self.sequence_head_width == 0 || !s.is_multiple_of(self.sequence_head_width) {
            return Err(format!("sequence_state_dim {s} is not a multiple of sequence_head_width {}", self.sequence_head_width));
        }
        if self.pairwise_head_width == 0 || !z.is_multiple_of(self.pairwise_head_width) {
            return Err(format!("pairwise_state_dim {z} is not a multiple of pairwise_head_width {}", self.pairwise_head_width));
        }
        if !z.is_multiple_of(2) {
            return Err(format!("pairwise_state_dim {z} must be even"));
        }
        Ok(())
    }
}

/// `y = x·Wᵀ + b` on `[..., C]` tensors of rank 4.
pub(crate) fn lin4<B: Backend>(l: &HfLinear<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [a, b, c, d] = x.dims();
    let y = l.forward2(x.reshape([a * b * c, d]));
    let o = y.dims()[1];
    y.reshape([a, b, c, o])
}

/// The adapter views of one forward: sequence-attention family and triangle-attention family.
pub struct TrunkAdapters<'a, 'b, B: Backend> {
    pub sequence: Option<&'a AdapterStep<'b, B>>,
    pub pair: Option<&'a AdapterStep<'b, B>>,
}

impl<B: Backend> Clone for TrunkAdapters<'_, '_, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Backend> Copy for TrunkAdapters<'_, '_, B> {}
impl<B: Backend> Default for TrunkAdapters<'_, '_, B> {
    fn default() -> Self {
        TrunkAdapters { sequence: None, pair: None }
    }
}

/// Base outputs of several maps of the same 2-D input plus their adapter updates.
fn adapted_many<B: Backend>(x: Tensor<B, 2>, bases: Vec<Tensor<B, 2>>, adapters: Option<&AdapterStep<'_, B>>, sites: &[Site]) -> Vec<Tensor<B, 2>> {
    match adapters {
        Some(a) => a.adapt_outputs(sites, x, bases),
        None => bases,
    }
}

fn adapted_one<B: Backend>(l: &HfLinear<B>, x: Tensor<B, 2>, adapters: Option<&AdapterStep<'_, B>>, site: Site) -> Tensor<B, 2> {
    match adapters {
        Some(a) if a.adapts(site) => {
            let x = a.scale_input(site, x);
            let y = l.forward2(x.clone());
            a.adapt_output(site, x, y)
        }
        _ => l.forward2(x),
    }
}

/// `EsmFoldSelfAttention` with `gated=True`: fused bias-free `proj` (per head: q, k, v of width
/// `head_width`), pair bias, key padding mask, sigmoid gate `g_proj`, `o_proj`.
#[derive(Module, Debug)]
pub struct SeqAttention<B: Backend> {
    pub proj: HfLinear<B>,
    pub o_proj: HfLinear<B>,
    pub g_proj: HfLinear<B>,
    #[module(skip)]
    pub heads: usize,
}

impl<B: Backend> SeqAttention<B> {
    /// `x: [b, L, d]`, `mask: [b, L]` (1 = residue), `bias: [b, L, L, h]`.
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 2>, bias: Tensor<B, 4>, layer: usize, adapters: Option<&AdapterStep<'_, B>>) -> Tensor<B, 3> {
        let [b, l, d] = x.dims();
        let h = self.heads;
        let hw = d / h;
        let x2 = x.reshape([b * l, d]);
        let t = self.proj.forward2(x2.clone()).reshape([b * l, h, 3, hw]);
        let part = |i: usize| t.clone().slice([0..b * l, 0..h, i..i + 1, 0..hw]).reshape([b * l, d]);
        let g_base = self.g_proj.forward2(x2.clone());
        let site = |k| Site::new(layer, k);
        let sites = [site(MatrixKind::Query), site(MatrixKind::Key), site(MatrixKind::Value), site(MatrixKind::Gate)];
        let mut outs = adapted_many(x2, vec![part(0), part(1), part(2), g_base], adapters, &sites).into_iter();
        let mut next = || outs.next().expect("four outputs");
        let (q, k, v, g) = (next(), next(), next(), next());
        let heads = |t: Tensor<B, 2>| t.reshape([b, l, h, hw]).swap_dims(1, 2);
        let (q, k, v) = (heads(q) * (hw as f64).powf(-0.5), heads(k), heads(v));
        let a = matmul(q, k.swap_dims(2, 3)) + bias.permute([0, 3, 1, 2]);
        let key_pad = mask.equal_elem(0.0).reshape([b, 1, 1, l]).expand([b, h, l, l]);
        let a = softmax(a.mask_fill(key_pad, f32::NEG_INFINITY), 3);
        let y = matmul(a, v).swap_dims(1, 2).reshape([b * l, d]);
        let y = sigmoid(g) * y;
        adapted_one(&self.o_proj, y, adapters, site(MatrixKind::Output)).reshape([b, l, d])
    }
}

/// `EsmFoldTriangleAttention` (around the starting node, or the ending node on the transposed
/// pair state): LayerNorm, triangle bias `linear` (c_z → h, no bias), gated multi-head
/// attention `mha.linear_{q,k,v}` (no bias), `linear_g`, `linear_o`, mask bias −10⁹.
#[derive(Module, Debug)]
pub struct TriangleAttention<B: Backend> {
    pub layer_norm: LayerNorm<B>,
    pub linear: HfLinear<B>,
    pub linear_q: HfLinear<B>,
    pub linear_k: HfLinear<B>,
    pub linear_v: HfLinear<B>,
    pub linear_o: HfLinear<B>,
    pub linear_g: HfLinear<B>,
    #[module(skip)]
    pub heads: usize,
    #[module(skip)]
    pub starting: bool,
}

impl<B: Backend> TriangleAttention<B> {
    /// `z: [b, N, N, c]`, `mask: [b, N, N]` → update `[b, N, N, c]`.
    pub fn forward(&self, z: Tensor<B, 4>, mask: Tensor<B, 3>, layer: usize, adapters: Option<&AdapterStep<'_, B>>) -> Tensor<B, 4> {
        let (z, mask) = if self.starting { (z, mask) } else { (z.swap_dims(1, 2), mask.swap_dims(1, 2)) };
        let [b, n, _, c] = z.dims();
        let h = self.heads;
        let x = self.layer_norm.forward(z);
        let hc = self.linear_q.d_out();
        let ch = hc / h;
        // [b, N(q), N(k), h] → [b, 1, h, N, N]: shared by every row i, added by broadcasting (an
        // expanded copy per row would be b·N·h·N² elements written and summed again in backward)
        let tri = lin4(&self.linear, x.clone()).permute([0, 3, 1, 2]).reshape([b, 1, h, n, n]);
        let inf = crate::nn::mask_bias_magnitude(mask.dtype(), TRIANGLE_INF);
        let mask_bias = mask.sub_scalar(1.0).mul_scalar(inf).reshape([b, n, 1, 1, n]);
        let x2 = x.reshape([b * n * n, c]);
        let site = |k| Site::new(layer, k);
        let sites = [site(MatrixKind::Query), site(MatrixKind::Key), site(MatrixKind::Value), site(MatrixKind::Gate)];
        let bases = vec![
            self.linear_q.forward2(x2.clone()),
            self.linear_k.forward2(x2.clone()),
            self.linear_v.forward2(x2.clone()),
            self.linear_g.forward2(x2.clone()),
        ];
        let mut outs = adapted_many(x2, bases, adapters, &sites).into_iter();
        let mut next = || outs.next().expect("four outputs");
        let (q, k, v, g) = (next(), next(), next(), next());
        let heads = |t: Tensor<B, 2>| t.reshape([b * n, n, h, ch]).swap_dims(1, 2);
        let (q, k, v) = (heads(q) / (ch as f64).sqrt(), heads(k), heads(v));
        let a = matmul(q, k.swap_dims(2, 3)).reshape([b, n, h, n, n]) + mask_bias + tri;
        let a = softmax(a, 4).reshape([b * n, h, n, n]);
        let o = matmul(a, v).swap_dims(1, 2).reshape([b * n * n, hc]);
        let o = sigmoid(g) * o;
        let o = adapted_one(&self.linear_o, o, adapters, site(MatrixKind::Output)).reshape([b, n, n, c]);
        if self.starting {
            o
        } else {
            o.swap_dims(1, 2)
        }
    }
}

/// `EsmFoldTriangleMultiplicativeUpdate` (Alg. 11 outgoing, Alg. 12 incoming).
#[derive(Module, Debug)]
pub struct TriangleMultiplication<B: Backend> {
    pub layer_norm_in: LayerNorm<B>,
    pub linear_a_p: HfLinear<B>,
    pub linear_a_g: HfLinear<B>,
    pub linear_b_p: HfLinear<B>,
    pub linear_b_g: HfLinear<B>,
    pub linear_g: HfLinear<B>,
    pub linear_z: HfLinear<B>,
    pub layer_norm_out: LayerNorm<B>,
    #[module(skip)]
    pub outgoing: bool,
}

impl<B: Backend> TriangleMultiplication<B> {
    pub fn forward(&self, z: Tensor<B, 4>, mask: Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, n, _, _] = z.dims();
        let z = self.layer_norm_in.forward(z);
        let m = mask.reshape([b, n, n, 1]);
        let a = sigmoid(lin4(&self.linear_a_g, z.clone())) * lin4(&self.linear_a_p, z.clone()) * m.clone();
        let bb = sigmoid(lin4(&self.linear_b_g, z.clone())) * lin4(&self.linear_b_p, z.clone()) * m;
        // outgoing: p_ij = Σ_k a_ik b_jk; incoming: p_ij = Σ_k a_ki b_kj (per channel)
        let p = if self.outgoing {
            matmul(a.permute([0, 3, 1, 2]), bb.permute([0, 3, 2, 1]))
        } else {
            matmul(a.permute([0, 3, 2, 1]), bb.permute([0, 3, 1, 2]))
        };
        let x = self.layer_norm_out.forward(p.permute([0, 2, 3, 1]));
        lin4(&self.linear_z, x) * sigmoid(lin4(&self.linear_g, z))
    }
}

/// `EsmFoldSequenceToPair`.
#[derive(Module, Debug)]
pub struct SequenceToPair<B: Backend> {
    pub layernorm: LayerNorm<B>,
    pub proj: HfLinear<B>,
    pub o_proj: HfLinear<B>,
}

impl<B: Backend> SequenceToPair<B> {
    pub fn forward(&self, s: Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, l, _] = s.dims();
        let t = self.proj.forward(self.layernorm.forward(s));
        let inner = t.dims()[2] / 2;
        let q = t.clone().slice([0..b, 0..l, 0..inner]);
        let k = t.slice([0..b, 0..l, inner..2 * inner]);
        // q along j, k along i
        let qj = q.reshape([b, 1, l, inner]);
        let ki = k.reshape([b, l, 1, inner]);
        let prod = qj.clone() * ki.clone();
        let diff = qj - ki;
        lin4(&self.o_proj, Tensor::cat(vec![prod, diff], 3))
    }
}

/// AlphaFold 2's outer product mean (Alg. 10) on a single sequence, see [`PairUpdate`].
/// `linear_out` is applied without materialising the `[N, N, c²]` outer products.
#[derive(Module, Debug)]
pub struct OuterProductMean<B: Backend> {
    pub layer_norm: LayerNorm<B>,
    pub linear_a: HfLinear<B>,
    pub linear_b: HfLinear<B>,
    pub linear_out: HfLinear<B>,
}

impl<B: Backend> OuterProductMean<B> {
    pub fn forward(&self, s: Tensor<B, 3>, mask: Tensor<B, 2>) -> Tensor<B, 4> {
        let [b, l, _] = s.dims();
        let s = self.layer_norm.forward(s);
        let m = mask.clone().reshape([b, l, 1]);
        let a = self.linear_a.forward(s.clone()) * m.clone();
        let bb = self.linear_b.forward(s) * m;
        let c = a.dims()[2];
        let cz = self.linear_out.d_out();
        // W: [cz, c·c] as [cz, c, c]; t_j[z, c] = Σ_e W[z, c, e] b_j[e]
        let w = self.linear_out.weight.val().reshape([cz * c, c]);
        let t = matmul(bb.reshape([b * l, c]), w.transpose()).reshape([b, l * cz, c]);
        // out_ij[z] = Σ_c a_i[c] t_j[z, c]
        let out = matmul(a, t.swap_dims(1, 2)).reshape([b, l, l, cz]);
        let out = match &self.linear_out.bias {
            Some(bias) => out + bias.val().reshape([1, 1, 1, cz]),
            None => out,
        };
        let norm = (mask.clone().reshape([b, l, 1]) * mask.reshape([b, 1, l])).add_scalar(OPM_EPS);
        out / norm.reshape([b, l, l, 1])
    }
}

/// `EsmFoldResidueMLP`: `x + Linear(ReLU(Linear(LayerNorm(x))))` (`mlp.0`, `mlp.1`, `mlp.3`).
#[derive(Module, Debug)]
pub struct ResidueMlp<B: Backend> {
    pub norm: LayerNorm<B>,
    pub linear_1: HfLinear<B>,
    pub linear_2: HfLinear<B>,
}

impl<B: Backend> ResidueMlp<B> {
    fn hidden<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, 2> {
        let dims = x.dims();
        let c = dims[D - 1];
        let n = dims.iter().product::<usize>() / c;
        relu(self.linear_1.forward2(self.norm.forward(x).reshape([n, c])))
    }
    pub fn forward3(&self, x: Tensor<B, 3>, adapters: Option<&AdapterStep<'_, B>>, site: Site) -> Tensor<B, 3> {
        let [b, l, c] = x.dims();
        let h = self.hidden(x.clone());
        x + adapted_one(&self.linear_2, h, adapters, site).reshape([b, l, c])
    }
    /// The pair transition (no adapter site).
    pub fn forward4(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, n, m, c] = x.dims();
        let h = self.hidden(x.clone());
        x + self.linear_2.forward2(h).reshape([b, n, m, c])
    }
}

/// The pair update module of a block.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum PairUpdateModule<B: Backend> {
    SequenceToPair(SequenceToPair<B>),
    OuterProductMean(OuterProductMean<B>),
}

/// `EsmFoldTriangularSelfAttentionBlock`.
#[derive(Module, Debug)]
pub struct TrunkBlock<B: Backend> {
    pub layernorm_1: LayerNorm<B>,
    pub pair_to_sequence_norm: LayerNorm<B>,
    pub pair_to_sequence: HfLinear<B>,
    pub seq_attention: SeqAttention<B>,
    pub mlp_seq: ResidueMlp<B>,
    pub pair_update: PairUpdateModule<B>,
    pub tri_mul_out: TriangleMultiplication<B>,
    pub tri_mul_in: TriangleMultiplication<B>,
    pub tri_att_start: TriangleAttention<B>,
    pub tri_att_end: TriangleAttention<B>,
    pub mlp_pair: ResidueMlp<B>,
    #[module(skip)]
    pub index: usize,
}

impl<B: Backend> TrunkBlock<B> {
    /// `s: [b, L, c_s]`, `z: [b, L, L, c_z]`, `mask: [b, L]` (1 = residue).
    pub fn forward(&self, s: Tensor<B, 3>, z: Tensor<B, 4>, mask: Tensor<B, 2>, adapters: TrunkAdapters<'_, '_, B>) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let l = self.index;
        let [b, n, _] = s.dims();
        let bias = lin4(&self.pair_to_sequence, self.pair_to_sequence_norm.forward(z.clone()));
        let y = self.seq_attention.forward(self.layernorm_1.forward(s.clone()), mask.clone(), bias, l, adapters.sequence);
        let s = self.mlp_seq.forward3(s + y, adapters.sequence, Site::new(l, MatrixKind::FfnDown));
        let z = z + match &self.pair_update {
            PairUpdateModule::SequenceToPair(m) => m.forward(s.clone()),
            PairUpdateModule::OuterProductMean(m) => m.forward(s.clone(), mask.clone()),
        };
        let tri_mask = mask.clone().reshape([b, n, 1]) * mask.reshape([b, 1, n]);
        let z = z.clone() + self.tri_mul_out.forward(z, tri_mask.clone());
        let z = z.clone() + self.tri_mul_in.forward(z, tri_mask.clone());
        let z = z.clone() + self.tri_att_start.forward(z, tri_mask.clone(), 2 * l, adapters.pair);
        let z = z.clone() + self.tri_att_end.forward(z, tri_mask, 2 * l + 1, adapters.pair);
        let z = self.mlp_pair.forward4(z);
        (s, z)
    }

    /// Builds block `index` (names relative to `trunk.blocks.{index}`), frozen unless `train`.
    pub fn build(config: &TrunkConfig, index: usize, b: &mut Builder<'_, B>, train: bool) -> Result<Self> {
        let p = format!("trunk.blocks.{index}");
        let (cs, cz) = (config.sequence_state_dim, config.pairwise_state_dim);
        let (hs, hz) = (config.sequence_heads(), config.pairwise_heads());
        let eps = TRUNK_LN_EPS;
        let tri_mul = |name: &str, outgoing: bool, b: &mut Builder<'_, B>| -> Result<TriangleMultiplication<B>> {
            let q = format!("{p}.{name}");
            Ok(TriangleMultiplication {
                layer_norm_in: b.layer_norm(&format!("{q}.layer_norm_in"), cz, eps, train)?,
                linear_a_p: b.linear(&format!("{q}.linear_a_p"), cz, cz, true, train)?,
                linear_a_g: b.linear(&format!("{q}.linear_a_g"), cz, cz, true, train)?,
                linear_b_p: b.linear(&format!("{q}.linear_b_p"), cz, cz, true, train)?,
                linear_b_g: b.linear(&format!("{q}.linear_b_g"), cz, cz, true, train)?,
                linear_g: b.linear(&format!("{q}.linear_g"), cz, cz, true, train)?,
                linear_z: b.linear(&format!("{q}.linear_z"), cz, cz, true, train)?,
                layer_norm_out: b.layer_norm(&format!("{q}.layer_norm_out"), cz, eps, train)?,
                outgoing,
            })
        };
        let tri_mul_out = tri_mul("tri_mul_out", true, b)?;
        let tri_mul_in = tri_mul("tri_mul_in", false, b)?;
        let tri_att = |name: &str, starting: bool, b: &mut Builder<'_, B>| -> Result<TriangleAttention<B>> {
            let q = format!("{p}.{name}");
            Ok(TriangleAttention {
                layer_norm: b.layer_norm(&format!("{q}.layer_norm"), cz, eps, train)?,
                linear: b.linear(&format!("{q}.linear"), cz, hz, false, train)?,
                linear_q: b.linear(&format!("{q}.mha.linear_q"), cz, cz, false, train)?,
                linear_k: b.linear(&format!("{q}.mha.linear_k"), cz, cz, false, train)?,
                linear_v: b.linear(&format!("{q}.mha.linear_v"), cz, cz, false, train)?,
                linear_o: b.linear(&format!("{q}.mha.linear_o"), cz, cz, true, train)?,
                linear_g: b.linear(&format!("{q}.mha.linear_g"), cz, cz, true, train)?,
                heads: hz,
                starting,
            })
        };
        let tri_att_start = tri_att("tri_att_start", true, b)?;
        let tri_att_end = tri_att("tri_att_end", false, b)?;
        let mlp = |name: &str, c: usize, b: &mut Builder<'_, B>| -> Result<ResidueMlp<B>> {
            let q = format!("{p}.{name}.mlp");
            Ok(ResidueMlp {
                norm: b.layer_norm(&format!("{q}.0"), c, eps, train)?,
                linear_1: b.linear(&format!("{q}.1"), c, 4 * c, true, train)?,
                linear_2: b.linear(&format!("{q}.3"), 4 * c, c, true, train)?,
            })
        };
        let mlp_seq = mlp("mlp_seq", cs, b)?;
        let mlp_pair = mlp("mlp_pair", cz, b)?;
        let pair_update = match config.pair_update {
            PairUpdate::SequenceToPair => PairUpdateModule::SequenceToPair(SequenceToPair {
                layernorm: b.layer_norm(&format!("{p}.sequence_to_pair.layernorm"), cs, eps, train)?,
                proj: b.linear(&format!("{p}.sequence_to_pair.proj"), cs, cz, true, train)?,
                o_proj: b.linear(&format!("{p}.sequence_to_pair.o_proj"), cz, cz, true, train)?,
            }),
            PairUpdate::OuterProductMean { dim } => PairUpdateModule::OuterProductMean(OuterProductMean {
                layer_norm: b.layer_norm(&format!("{p}.outer_product_mean.layer_norm"), cs, eps, train)?,
                linear_a: b.linear(&format!("{p}.outer_product_mean.linear_a"), cs, dim, true, train)?,
                linear_b: b.linear(&format!("{p}.outer_product_mean.linear_b"), cs, dim, true, train)?,
                linear_out: b.linear(&format!("{p}.outer_product_mean.linear_out"), dim * dim, cz, true, train)?,
            }),
        };
        Ok(TrunkBlock {
            layernorm_1: b.layer_norm(&format!("{p}.layernorm_1"), cs, eps, train)?,
            pair_to_sequence_norm: b.layer_norm(&format!("{p}.pair_to_sequence.layernorm"), cz, eps, train)?,
            pair_to_sequence: b.linear(&format!("{p}.pair_to_sequence.linear"), cz, hs, false, train)?,
            seq_attention: SeqAttention {
                proj: b.linear(&format!("{p}.seq_attention.proj"), cs, 3 * cs, false, train)?,
                o_proj: b.linear(&format!("{p}.seq_attention.o_proj"), cs, cs, true, train)?,
                g_proj: b.linear(&format!("{p}.seq_attention.g_proj"), cs, cs, true, train)?,
                heads: hs,
            },
            mlp_seq,
            pair_update,
            tri_mul_out,
            tri_mul_in,
            tri_att_start,
            tri_att_end,
            mlp_pair,
            index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    type B = burn_ndarray::NdArray<f32>;

    /// The outer product mean without materialising `a_i ⊗ b_j` equals the dense Alg. 10 form
    /// `(linear_out(vec(a_i ⊗ b_j)) ) / (m_i·m_j + ε)` computed entry by entry, padding included.
    #[test]
    fn outer_product_mean_matches_the_dense_formula() {
        let dev = Default::default();
        let (cs, c, cz, l) = (5, 3, 4, 4);
        let mut b = Builder::<B>::random(burn::tensor::DType::F32, &dev);
        b.init_std = 0.5;
        let opm = OuterProductMean {
            layer_norm: b.layer_norm("ln", cs, TRUNK_LN_EPS, false).unwrap(),
            linear_a: b.linear("a", cs, c, true, false).unwrap(),
            linear_b: b.linear("b", cs, c, true, false).unwrap(),
            linear_out: HfLinear {
                weight: crate::nn::make_param(Tensor::random([cz, c * c], Distribution::Normal(0.0, 1.0), &dev), false),
                bias: Some(crate::nn::make_param(Tensor::random([cz], Distribution::Normal(0.0, 1.0), &dev), false)),
            },
        };
        let s = Tensor::<B, 3>::random([1, l, cs], Distribution::Normal(0.0, 1.0), &dev);
        let mask = Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 1.0, 1.0, 0.0], [1, l]), &dev);
        let got = opm.forward(s.clone(), mask.clone()).into_data().to_vec::<f32>().unwrap();
        let x = opm.layer_norm.forward(s);
        let a = opm.linear_a.forward(x.clone()).into_data().to_vec::<f32>().unwrap();
        let bb = opm.linear_b.forward(x).into_data().to_vec::<f32>().unwrap();
        let w = opm.linear_out.weight.val().into_data().to_vec::<f32>().unwrap();
        let bias = opm.linear_out.bias.as_ref().unwrap().val().into_data().to_vec::<f32>().unwrap();
        let m = [1.0f32, 1.0, 1.0, 0.0];
        for i in 0..l {
            for j in 0..l {
                for z in 0..cz {
                    let mut acc = bias[z];
                    for p in 0..c {
                        for q in 0..c {
                            acc += w[z * c * c + p * c + q] * a[i * c + p] * m[i] * bb[j * c + q] * m[j];
                        }
                    }
                    let want = acc / (m[i] * m[j] + OPM_EPS as f32);
                    let ours = got[(i * l + j) * cz + z];
                    assert!((ours - want).abs() <= 1e-4 * want.abs().max(1.0), "({i},{j},{z}): {ours} vs {want}");
                }
            }
        }
    }

    #[test]
    fn trunk_config_rejects_bad_head_widths() {
        let mut c = TrunkConfig::esmfold(2);
        c.sequence_head_width = 30;
        assert!(c.validate().unwrap_err().contains("sequence_head_width"));
        let mut c = TrunkConfig::esmfold(2);
        c.pairwise_head_width = 0;
        assert!(c.validate().unwrap_err().contains("pairwise_head_width"));
        assert!(TrunkConfig::paper().validate().is_ok());
        assert_eq!((TrunkConfig::paper().sequence_heads(), TrunkConfig::paper().pairwise_heads()), (32, 4));
    }
}
