//! LoRTA (the paper's method): the updates of all adapted attention matrices of all layers form
//! one 5th-order tensor ΔT ∈ R^{M×L×d×(d/h)×h} in CP form of rank r, with factors
//! `A: [d, r]`, `B: [r, d/h]`, `C_h: [h, r]`, `C_l: [L, r]`, `C_m: [M, r]`.
//!
//! Slice for layer l, matrix m (paper's PEFT code, head split on the *input* axis):
//! ΔW_{l,m} = cat_i A·diag(C_h[i] ⊙ C_m[m] ⊙ C_l[l])·B (along dim 1, `[d, d]`), and the layer
//! computes y = base(x) + s·x·ΔWᵀ with s = α/r (α/√r with rsLoRA).
//! With [`HeadAxis::Output`] (the paper's lit-gpt variant) Q, K and V split heads on the output
//! axis instead: ΔW = cat_i (A·diag(c_i)·B)ᵀ along dim 0; O keeps the split on its input (its
//! input is the concatenation of heads). Both have (d + d/h + h + L + M)·r parameters.
//!
//! The forward never builds a d×d matrix: x is contracted with the CP factors in rank space
//! (reshape by heads, contract with B and C_h, scale by C_l[l] ⊙ C_m[m], multiply by Aᵀ) — the
//! cost of a rank-r LoRA.
//!
//! Ablations (`joint_*` = false, as in the paper's lit-gpt flags): untying a mode removes its
//! factor and gives the tensor one independent CP per index of that mode. Untying heads instead
//! merges the head and head-dim modes into one input mode of size d (each head gets its own
//! block of B). Interpretation documented in the README.
//!
//! "LoRTA+LoRA" (seed Table 1) is LoRTA on the attention matrices plus a trainable
//! classification head whose dense layer is adapted with LoRA; the head part lives in
//! lorta-models (`HeadTuning::Lora`).
use crate::fused::{block_selectors, stacked_block};
use crate::matmul::matmul;
use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::shared::{check_rank, check_square, check_targets, default_alpha, default_targets, scaling};
use super::{Adapter, BuildAdapter, Method, MethodConfig};
use crate::decomp::CpTensor;
use crate::init::Init;
use crate::io::TensorMap;
use crate::site::{ArchNaming, MatrixKind, ModelShape, Site};
use crate::{CoreError, Result};

/// Which axis of each matrix is split by heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HeadAxis {
    /// The paper's PEFT code: every matrix's input axis (ΔW = cat along dim 1).
    #[default]
    Input,
    /// The paper's lit-gpt code: Q, K, V split their output axis; O its input axis.
    Output,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LortaConfig {
    pub r: usize,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default)]
    pub use_rslora: bool,
    /// Kaiming gain parameter of the C factors: a = √5·init_scale (0 → bound √(6/r)).
    #[serde(default)]
    pub init_scale: f64,
    #[serde(default = "default_targets")]
    pub targets: Vec<MatrixKind>,
    #[serde(default)]
    pub head_axis: HeadAxis,
    #[serde(default = "yes")]
    pub joint_heads: bool,
    #[serde(default = "yes")]
    pub joint_layers: bool,
    #[serde(default = "yes")]
    pub joint_matrices: bool,
}

impl LortaConfig {
    pub fn new(r: usize, targets: Vec<MatrixKind>) -> Self {
        LortaConfig {
            r,
            alpha: r as f64,
            use_rslora: false,
            init_scale: 0.0,
            targets,
            head_axis: HeadAxis::Input,
            joint_heads: true,
            joint_layers: true,
            joint_matrices: true,
        }
    }
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }
    pub fn with_head_axis(mut self, axis: HeadAxis) -> Self {
        self.head_axis = axis;
        self
    }
    pub fn scaling(&self) -> f64 {
        scaling(self.alpha, self.r, self.use_rslora)
    }
    pub fn is_paper_layout(&self) -> bool {
        self.joint_heads && self.joint_layers && self.joint_matrices
    }

    fn layout(&self, shape: &ModelShape) -> Layout {
        Layout::new(self, shape)
    }

    pub fn init<B: Backend>(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Lorta<B> {
        let layout = self.layout(shape);
        let r = self.r;
        let c_init = Init::KaimingUniform { a: 5f64.sqrt() * self.init_scale, fan_in: r };
        let groups = (0..layout.groups)
            .map(|_| {
                let inits: Vec<Init> = layout
                    .roles
                    .iter()
                    .map(|role| match role {
                        Role::A => Init::kaiming_sqrt5(r),
                        Role::B => Init::Zeros,
                        _ => c_init,
                    })
                    .collect();
                CpTensor::init(&layout.dims, r, &inits, rng, device)
            })
            .collect();
        Lorta { groups, config: (self.clone()), layout: (layout) }
    }
}

impl MethodConfig for LortaConfig {
    fn default_for(rank: usize, targets: &[MatrixKind]) -> Self {
        LortaConfig::new(rank, targets.to_vec())
    }
    fn method(&self) -> Method {
        Method::Lorta
    }
    fn rank(&self) -> Option<usize> {
        Some(self.r)
    }
    fn targets(&self) -> &[MatrixKind] {
        &self.targets
    }
    fn validate(&self, shape: &ModelShape) -> Result<()> {
        check_rank(self.r)?;
        check_targets(&self.targets, &MatrixKind::GATED_ATTENTION, "LoRTA")?;
        check_square(shape, &self.targets, "LoRTA")?;
        if shape.heads * shape.head_dim != shape.hidden {
            return Err(CoreError::config(format!(
                "LoRTA needs heads × head_dim = hidden ({} × {} ≠ {})",
                shape.heads, shape.head_dim, shape.hidden
            )));
        }
        Ok(())
    }
}

/// Role of a CP mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Matrix,
    Layer,
    A,
    Heads,
    /// Head dim (d/h), or the whole input d when heads are untied.
    B,
}

/// Mode layout shared by every CP group: `[C_m?, C_l?, A, C_h?, B]`.
#[derive(Clone, Debug)]
pub struct Layout {
    roles: Vec<Role>,
    dims: Vec<usize>,
    groups: usize,
    layers: usize,
    kinds: usize,
    joint_layers: bool,
    joint_matrices: bool,
}

impl Layout {
    fn new(c: &LortaConfig, shape: &ModelShape) -> Layout {
        let mut roles = Vec::new();
        let mut dims = Vec::new();
        let m = c.targets.len();
        if c.joint_matrices {
            roles.push(Role::Matrix);
            dims.push(m);
        }
        if c.joint_layers {
            roles.push(Role::Layer);
            dims.push(shape.layers);
        }
        roles.push(Role::A);
        dims.push(shape.hidden);
        if c.joint_heads {
            roles.push(Role::Heads);
            dims.push(shape.heads);
            roles.push(Role::B);
            dims.push(shape.head_dim);
        } else {
            roles.push(Role::B);
            dims.push(shape.hidden);
        }
        let groups = (if c.joint_layers { 1 } else { shape.layers }) * (if c.joint_matrices { 1 } else { m });
        Layout {
            roles,
            dims,
            groups,
            layers: shape.layers,
            kinds: m,
            joint_layers: c.joint_layers,
            joint_matrices: c.joint_matrices,
        }
    }
    fn mode(&self, role: Role) -> Option<usize> {
        self.roles.iter().position(|&r| r == role)
    }
    /// (group, fixed indices) of a site.
    fn locate(&self, layer: usize, m: usize) -> (usize, Vec<(usize, usize)>) {
        let mut fixed = Vec::new();
        let mut g = 0;
        if self.joint_layers {
            fixed.push((self.mode(Role::Layer).expect("layer mode"), layer));
        } else {
            g = layer;
        }
        if self.joint_matrices {
            fixed.push((self.mode(Role::Matrix).expect("matrix mode"), m));
        } else {
            g = g * self.kinds + m;
        }
        (g, fixed)
    }
    /// (input modes, output modes) for a matrix kind; ascending.
    fn io_modes(&self, kind: MatrixKind, axis: HeadAxis) -> (Vec<usize>, Vec<usize>) {
        let a = vec![self.mode(Role::A).expect("A mode")];
        let heads: Vec<usize> =
            [Role::Heads, Role::B].iter().filter_map(|&r| self.mode(r)).collect();
        let split_output = axis == HeadAxis::Output && kind != MatrixKind::Output;
        if split_output {
            (a, heads)
        } else {
            (heads, a)
        }
    }
}

#[derive(Module, Debug)]
pub struct Lorta<B: Backend> {
    /// One CP tensor per untied group (a single one in the paper's configuration).
    pub groups: Vec<CpTensor<B>>,
    #[module(skip)]
    pub config: LortaConfig,
    #[module(skip)]
    layout: Layout,
}

impl<B: Backend> Lorta<B> {
    fn matrix_index(&self, site: Site) -> Option<usize> {
        if site.layer >= self.layout.layers {
            return None;
        }
        self.config.targets.iter().position(|&k| k == site.kind)
    }

    /// The dense ΔW by contracting with the identity (used for merging and tests only).
    fn dense(&self, site: Site) -> Option<Tensor<B, 2>> {
        let m = self.matrix_index(site)?;
        let (g, fixed) = self.layout.locate(site.layer, m);
        let (inp, _) = self.layout.io_modes(site.kind, self.config.head_axis);
        let cp = &self.groups[g];
        let n: usize = inp.iter().map(|&i| cp.dims()[i]).product();
        let eye = Tensor::<B, 2>::eye(n, &cp.factors[0].device());
        // rows of the contraction = basis inputs, so the result is ΔWᵀ: [in, out]
        Some(cp.contract_with_fixed(eye, &inp, &fixed).expect("valid layout").transpose())
    }

    /// ΔW rebuilt the way the paper's PEFT code does on every forward (`_compute_weights_from_tensor`):
    /// h small matmuls A·diag(c_i)·B concatenated along the input axis. Paper layout and input
    /// head axis only; kept as the baseline the rank-space forward is benchmarked against.
    pub fn delta_weight_paper_style(&self, site: Site) -> Option<Tensor<B, 2>> {
        if !self.config.is_paper_layout() || self.config.head_axis != HeadAxis::Input {
            return None;
        }
        let m = self.matrix_index(site)?;
        let a = self.factor(Role::A)?;
        let b = self.factor(Role::B)?.transpose();
        let ch = self.factor(Role::Heads)?;
        let c = self.factor(Role::Matrix)?.narrow(0, m, 1) * self.factor(Role::Layer)?.narrow(0, site.layer, 1);
        let blocks: Vec<Tensor<B, 2>> = (0..ch.dims()[0])
            .map(|i| matmul(a.clone() * (ch.clone().narrow(0, i, 1) * c.clone()), b.clone()))
            .collect();
        Some(Tensor::cat(blocks, 1).mul_scalar(self.config.scaling()))
    }

    /// Named factor of the (single-group) paper layout.
    fn factor(&self, role: Role) -> Option<Tensor<B, 2>> {
        self.layout.mode(role).map(|m| self.groups[0].factor(m))
    }
}

impl<B: Backend> Adapter<B> for Lorta<B> {
    fn method(&self) -> Method {
        Method::Lorta
    }
    fn targets(&self) -> &[MatrixKind] {
        &self.config.targets
    }
    fn delta(&self, site: Site, x: Tensor<B, 2>) -> Option<Tensor<B, 2>> {
        let m = self.matrix_index(site)?;
        let (g, fixed) = self.layout.locate(site.layer, m);
        let (inp, _) = self.layout.io_modes(site.kind, self.config.head_axis);
        Some(self.groups[g].contract_scaled(x, &inp, &fixed, self.config.scaling()).expect("valid layout"))
    }
    fn delta_weight(&self, site: Site) -> Option<Tensor<B, 2>> {
        Some(self.dense(site)?.mul_scalar(self.config.scaling()))
    }
    /// Paper layout (`base_model.model.lora_{A,B,C_l,C_h,C_m}`) when all modes are joint;
    /// otherwise one set of factors per group, `lorta.groups.{g}.factors.{mode}`.
    fn save_tensors(&self, _naming: &ArchNaming) -> TensorMap {
        let mut map = TensorMap::new("adapter_model.safetensors");
        if self.config.is_paper_layout() {
            let p = "base_model.model";
            map.insert_tensor(format!("{p}.lora_A"), self.factor(Role::A).expect("A"));
            map.insert_tensor(format!("{p}.lora_B"), self.factor(Role::B).expect("B").transpose());
            map.insert_tensor(format!("{p}.lora_C_l"), self.factor(Role::Layer).expect("C_l"));
            map.insert_tensor(format!("{p}.lora_C_h"), self.factor(Role::Heads).expect("C_h"));
            map.insert_tensor(format!("{p}.lora_C_m"), self.factor(Role::Matrix).expect("C_m"));
        } else {
            for (g, cp) in self.groups.iter().enumerate() {
                for (i, f) in cp.factors.iter().enumerate() {
                    map.insert_tensor(format!("lorta.groups.{g}.factors.{i}"), f.val());
                }
            }
        }
        map
    }
    fn load_tensors(mut self, tensors: &mut TensorMap, _naming: &ArchNaming) -> Result<Self> {
        let dims = self.layout.dims.clone();
        let r = self.config.r;
        let dev = self.groups[0].factors[0].device();
        if self.config.is_paper_layout() {
            let p = "base_model.model";
            let mut factors = Vec::new();
            for (mode, role) in self.layout.roles.clone().into_iter().enumerate() {
                let d = dims[mode];
                let t = match role {
                    Role::A => tensors.take_tensor::<B, 2>(&format!("{p}.lora_A"), [d, r], &dev)?,
                    Role::B => tensors.take_tensor::<B, 2>(&format!("{p}.lora_B"), [r, d], &dev)?.transpose(),
                    Role::Layer => tensors.take_tensor::<B, 2>(&format!("{p}.lora_C_l"), [d, r], &dev)?,
                    Role::Heads => tensors.take_tensor::<B, 2>(&format!("{p}.lora_C_h"), [d, r], &dev)?,
                    Role::Matrix => tensors.take_tensor::<B, 2>(&format!("{p}.lora_C_m"), [d, r], &dev)?,
                };
                factors.push(t);
            }
            self.groups = vec![CpTensor::from_factors(factors)?];
        } else {
            let mut groups = Vec::new();
            for g in 0..self.groups.len() {
                let mut factors = Vec::new();
                for (i, &d) in dims.iter().enumerate() {
                    factors.push(tensors.take_tensor::<B, 2>(&format!("lorta.groups.{g}.factors.{i}"), [d, r], &dev)?);
                }
                groups.push(CpTensor::from_factors(factors)?);
            }
            self.groups = groups;
        }
        Ok(self)
    }
}

/// LoRTA's per-forward view: what every site shares is computed once per forward pass, so each
/// site costs two skinny matmuls, exactly like a LoRA of rank r.
/// K = KR(C_h, B) `[d, r]` (row i·d/h + j = C_h[i] ⊙ B[j]) contracts a head-split axis in one
/// matmul; s·C_l[l] ⊙ C_m[m] scales the output factor of site (l, m), and the scaled output
/// factors of all L·M sites are formed at once, `[L·M, r, out]` (diag(w)·Aᵀ, or diag(w)·Kᵀ for
/// output-axis sites): one operation per forward instead of a handful per site, which matters
/// because a GPU step of a 32-layer model is bound by the host's cost per operation (H200,
/// session 11). Input-axis sites compute (x·K)·(diag(w)·Aᵀ), output-axis sites (x·A)·(diag(w)·Kᵀ).
/// Paper layout only (untied ablations use the general path).
#[derive(Debug, Clone)]
pub struct LortaStep<B: Backend> {
    a: Tensor<B, 2>,
    k: Tensor<B, 2>,
    /// `[L·M, r, d]`: row block l·M + m is diag(w_{l,m})·Aᵀ (`None` when no site needs it).
    scaled_a_t: Option<Tensor<B, 3>>,
    /// `[L·M, r, d]`: the same with Kᵀ, for sites whose heads split the output axis.
    scaled_k_t: Option<Tensor<B, 3>>,
    /// `[L·M, L·M]` identity: the blocks' one-hot selectors for [`stacked_block`] (`None` where
    /// the backend has no fused operations: plain narrow).
    selectors: Option<Tensor<B, 2>>,
    kinds: Vec<MatrixKind>,
    layers: usize,
    head_axis: HeadAxis,
}

impl<B: Backend> Lorta<B> {
    /// The per-forward view, or `None` for untied ablations.
    pub fn step(&self) -> Option<LortaStep<B>> {
        if !self.config.is_paper_layout() {
            return None;
        }
        let r = self.config.r;
        let a = self.factor(Role::A)?;
        let (ch, b) = (self.factor(Role::Heads)?, self.factor(Role::B)?);
        let (h, dh) = (ch.dims()[0], b.dims()[0]);
        let k = (ch.unsqueeze_dim::<3>(1) * b.unsqueeze_dim::<3>(0)).reshape([h * dh, r]);
        let (cl, cm) = (self.factor(Role::Layer)?, self.factor(Role::Matrix)?);
        let (l, m) = (cl.dims()[0], cm.dims()[0]);
        let w = (cl.unsqueeze_dim::<3>(1) * cm.unsqueeze_dim::<3>(0)).reshape([l * m, r]).mul_scalar(self.config.scaling());
        let kinds = self.config.targets.clone();
        let axis = self.config.head_axis;
        let splits_output = |k: &MatrixKind| axis == HeadAxis::Output && *k != MatrixKind::Output;
        // every site's scaled output factor at once: w [L·M, r, 1] ⊙ factorᵀ [1, r, out]
        let scale = |factor: &Tensor<B, 2>| w.clone().unsqueeze_dim::<3>(2) * factor.clone().transpose().unsqueeze_dim::<3>(0);
        let selectors = block_selectors::<B>(l * m, &w.device(), w.dtype());
        Some(LortaStep {
            selectors,
            scaled_a_t: kinds.iter().any(|k| !splits_output(k)).then(|| scale(&a)),
            scaled_k_t: kinds.iter().any(splits_output).then(|| scale(&k)),
            a,
            k,
            kinds,
            layers: l,
            head_axis: axis,
        })
    }
}

impl<B: Backend> LortaStep<B> {
    /// The dtype the factors are stored (and the update computed) in.
    pub fn dtype(&self) -> burn::tensor::DType {
        self.k.dtype()
    }
    pub fn adapts(&self, site: Site) -> bool {
        site.layer < self.layers && self.kinds.contains(&site.kind)
    }
    /// Δy for `x: [n, in]`, or `None` if the site is not adapted.
    pub fn delta(&self, site: Site, x: Tensor<B, 2>) -> Option<Tensor<B, 2>> {
        self.deltas(&[site], x).pop().flatten()
    }

    /// Δy of several sites that read the same input (Q, K and V of a layer). The input-side
    /// factor (K, or A when heads split the output axis) is shared by every site, so x·K is
    /// computed once for all of them: one skinny matmul fewer per extra site than LoRA needs.
    pub fn deltas(&self, sites: &[Site], x: Tensor<B, 2>) -> Vec<Option<Tensor<B, 2>>> {
        // projections of x, by "heads split the output axis" (false: x·K, true: x·A)
        let mut projected: [Option<Tensor<B, 2>>; 2] = [None, None];
        sites
            .iter()
            .map(|&site| {
                let m = self.kinds.iter().position(|&k| k == site.kind)?;
                if site.layer >= self.layers {
                    return None;
                }
                let split_output = self.head_axis == HeadAxis::Output && site.kind != MatrixKind::Output;
                let (input_factor, scaled) = if split_output { (&self.a, &self.scaled_k_t) } else { (&self.k, &self.scaled_a_t) };
                let scaled = scaled.as_ref().expect("formed for every kind that uses it");
                let [_, r, out] = scaled.dims();
                // the site's block: a contiguous view, no copy
                let block = site.layer * self.kinds.len() + m;
                let factor = match &self.selectors {
                    Some(selectors) => stacked_block(scaled.clone(), selectors, block),
                    None => scaled.clone().narrow(0, block, 1).reshape([r, out]),
                };
                let z = projected[split_output as usize].get_or_insert_with(|| matmul(x.clone(), input_factor.clone())).clone();
                Some(matmul(z, factor))
            })
            .collect()
    }
}


impl<B: Backend> BuildAdapter<B> for LortaConfig {
    type Set = Lorta<B>;
    fn build(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Result<Lorta<B>> {
        Ok(self.init(shape, rng, device))
    }
}

#[cfg(test)]
mod tests;
