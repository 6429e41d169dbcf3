//! ESMFold's structure module (HF `EsmFoldStructureModule`, AlphaFold 2 Alg. 20 with OpenFold's
//! conventions), HF names kept under `trunk.structure_module.`: `layer_norm_s`, `layer_norm_z`,
//! `linear_in`, `ipa.{linear_q, linear_kv, linear_q_points, linear_kv_points, linear_b,
//! head_weights, linear_out}`, `layer_norm_ipa`, `transition.{layers.{i}.linear_{1,2,3},
//! layer_norm}`, `bb_update.linear`, `angle_resnet.{linear_in, linear_initial,
//! layers.{i}.linear_{1,2}, linear_out}`.
//!
//! Frames are kept as rotation matrices `[n, 3, 3]` and translations `[n, 3]` (n = batch ×
//! residues) plus the unit quaternion the backbone update composes with (`(1, x, y, z)`
//! updates, normalised, as OpenFold's `compose_q_update_vec`). Torsion angles become the 8 rigid
//! groups of each residue and the atom14 positions through AlphaFold's residue constants
//! (`residue_constants.json`, generated from transformers' `openfold_utils` by
//! `scripts/make_esmfold_fixtures.py`). Everything runs in the compute dtype; HF forces f32
//! for rotations, so use f32 for parity.
use std::sync::OnceLock;

use burn::module::{Module, Param};
use burn::tensor::activation::{relu, softmax, softplus};
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::nn::{matmul, Builder, HfLinear, Init, LayerNorm};

/// HF `StructureModuleConfig` (the fields inference uses).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StructureModuleConfig {
    pub sequence_dim: usize,
    pub pairwise_dim: usize,
    pub ipa_dim: usize,
    pub resnet_dim: usize,
    pub num_heads_ipa: usize,
    pub num_qk_points: usize,
    pub num_v_points: usize,
    pub num_blocks: usize,
    pub num_transition_layers: usize,
    pub num_resnet_blocks: usize,
    pub num_angles: usize,
    pub trans_scale_factor: f64,
    pub epsilon: f64,
    pub inf: f64,
}

impl Default for StructureModuleConfig {
    /// ESMFold's values.
    fn default() -> Self {
        StructureModuleConfig {
            sequence_dim: 384,
            pairwise_dim: 128,
            ipa_dim: 16,
            resnet_dim: 128,
            num_heads_ipa: 12,
            num_qk_points: 4,
            num_v_points: 8,
            num_blocks: 8,
            num_transition_layers: 1,
            num_resnet_blocks: 2,
            num_angles: 7,
            trans_scale_factor: 10.0,
            epsilon: 1e-8,
            inf: 1e5,
        }
    }
}

/// AlphaFold's per-residue-type tables (21 types: 20 amino acids + X).
#[derive(Debug, Deserialize)]
pub struct ResidueConstants {
    pub restypes_with_x: Vec<String>,
    /// `[21][8][4][4]` default frame of each rigid group relative to its parent.
    pub restype_rigid_group_default_frame: Vec<Vec<Vec<Vec<f32>>>>,
    /// `[21][14]` rigid group of each atom14 slot.
    pub restype_atom14_to_rigid_group: Vec<Vec<i64>>,
    /// `[21][14]` 1 where the atom exists.
    pub restype_atom14_mask: Vec<Vec<f32>>,
    /// `[21][14][3]` literature position of each atom in its group's frame.
    pub restype_atom14_rigid_group_positions: Vec<Vec<Vec<f32>>>,
}

/// The tables, parsed once.
pub fn residue_constants() -> &'static ResidueConstants {
    static RC: OnceLock<ResidueConstants> = OnceLock::new();
    RC.get_or_init(|| serde_json::from_str(include_str!("residue_constants.json")).expect("bundled residue_constants.json is valid"))
}

/// AlphaFold `aatype` indices of a one-letter sequence (`ARNDCQEGHILKMFPSTWYV`, anything else → X = 20).
pub fn aatype_of(sequence: &str) -> Vec<u32> {
    let rc = residue_constants();
    sequence
        .chars()
        .map(|c| rc.restypes_with_x.iter().take(20).position(|t| t.starts_with(c.to_ascii_uppercase())).unwrap_or(20) as u32)
        .collect()
}

/// Rigid transforms `x ↦ R·x + t` for `n` residues (or residue × group), `rot: [n, 3, 3]`, `trans: [n, 3]`.
#[derive(Clone, Debug)]
pub struct Rigid<B: Backend> {
    pub rot: Tensor<B, 3>,
    pub trans: Tensor<B, 2>,
}

impl<B: Backend> Rigid<B> {
    /// `R·p + t` for points `p: [n, k, 3]`.
    pub fn apply(&self, p: Tensor<B, 3>) -> Tensor<B, 3> {
        let n = p.dims()[0];
        matmul(p, self.rot.clone().swap_dims(1, 2)) + self.trans.clone().reshape([n, 1, 3])
    }
    /// `Rᵀ·(p − t)` for points `p: [n, k, 3]`.
    pub fn invert_apply(&self, p: Tensor<B, 3>) -> Tensor<B, 3> {
        let n = p.dims()[0];
        matmul(p - self.trans.clone().reshape([n, 1, 3]), self.rot.clone())
    }
    /// `self ∘ other` (apply `other` first): `(R₁R₂, R₁t₂ + t₁)`.
    pub fn compose(&self, other: &Rigid<B>) -> Rigid<B> {
        let n = other.trans.dims()[0];
        let rot = matmul(self.rot.clone(), other.rot.clone());
        let trans = matmul(self.rot.clone(), other.trans.clone().reshape([n, 3, 1])).reshape([n, 3]) + self.trans.clone();
        Rigid { rot, trans }
    }
    pub fn scale_translation(&self, f: f64) -> Rigid<B> {
        Rigid { rot: self.rot.clone(), trans: self.trans.clone() * f }
    }
}

/// Rotation matrix `[n, 3, 3]` of quaternions `[n, 4]` (w, x, y, z), OpenFold's `quat_to_rot`.
pub fn quat_to_rot<B: Backend>(q: Tensor<B, 2>) -> Tensor<B, 3> {
    let n = q.dims()[0];
    let c = |i: usize| q.clone().slice([0..n, i..i + 1]);
    let (a, b, cc, d) = (c(0), c(1), c(2), c(3));
    let m = |t: Tensor<B, 2>, s: f64| t * s;
    let entries = vec![
        a.clone() * a.clone() + b.clone() * b.clone() - cc.clone() * cc.clone() - d.clone() * d.clone(),
        m(b.clone() * cc.clone(), 2.0) - m(a.clone() * d.clone(), 2.0),
        m(b.clone() * d.clone(), 2.0) + m(a.clone() * cc.clone(), 2.0),
        m(b.clone() * cc.clone(), 2.0) + m(a.clone() * d.clone(), 2.0),
        a.clone() * a.clone() - b.clone() * b.clone() + cc.clone() * cc.clone() - d.clone() * d.clone(),
        m(cc.clone() * d.clone(), 2.0) - m(a.clone() * b.clone(), 2.0),
        m(b.clone() * d.clone(), 2.0) - m(a.clone() * cc.clone(), 2.0),
        m(cc.clone() * d.clone(), 2.0) + m(a.clone() * b.clone(), 2.0),
        a.clone() * a - b.clone() * b - cc.clone() * cc + d.clone() * d,
    ];
    Tensor::cat(entries, 1).reshape([n, 3, 3])
}

/// `q + q ⊗ (0, v)`, normalised (OpenFold's `compose_q_update_vec` for the rotation part).
pub fn quat_update<B: Backend>(q: Tensor<B, 2>, v: Tensor<B, 2>) -> Tensor<B, 2> {
    let n = q.dims()[0];
    let c = |t: &Tensor<B, 2>, i: usize| t.clone().slice([0..n, i..i + 1]);
    let (a, b, cc, d) = (c(&q, 0), c(&q, 1), c(&q, 2), c(&q, 3));
    let (x, y, z) = (c(&v, 0), c(&v, 1), c(&v, 2));
    let prod = Tensor::cat(
        vec![
            (b.clone() * x.clone() + cc.clone() * y.clone() + d.clone() * z.clone()).neg(),
            a.clone() * x.clone() + cc.clone() * z.clone() - d.clone() * y.clone(),
            a.clone() * y.clone() - b.clone() * z.clone() + d.clone() * x.clone(),
            a * z + b * y - cc * x,
        ],
        1,
    );
    let new = q + prod;
    let norm = new.clone().powi_scalar(2).sum_dim(1).sqrt();
    new / norm
}

/// `EsmFoldInvariantPointAttention` (Alg. 22).
#[derive(Module, Debug)]
pub struct InvariantPointAttention<B: Backend> {
    pub linear_q: HfLinear<B>,
    pub linear_kv: HfLinear<B>,
    pub linear_q_points: HfLinear<B>,
    pub linear_kv_points: HfLinear<B>,
    pub linear_b: HfLinear<B>,
    pub head_weights: Param<Tensor<B, 1>>,
    pub linear_out: HfLinear<B>,
    #[module(skip)]
    pub config: StructureModuleConfig,
}

impl<B: Backend> InvariantPointAttention<B> {
    /// `s: [b, N, c_s]`, `z: [b, N, N, c_z]`, `r`: b·N frames, `mask: [b, N]`.
    pub fn forward(&self, s: Tensor<B, 3>, z: Tensor<B, 4>, r: &Rigid<B>, mask: Tensor<B, 2>) -> Tensor<B, 3> {
        let cfg = &self.config;
        let [b, n, _] = s.dims();
        let (h, c, pq, pv) = (cfg.num_heads_ipa, cfg.ipa_dim, cfg.num_qk_points, cfg.num_v_points);
        let cz = z.dims()[3];
        let q = self.linear_q.forward(s.clone()).reshape([b, n, h, c]).swap_dims(1, 2); // [b, h, N, c]
        let kv = self.linear_kv.forward(s.clone()).reshape([b, n, h, 2 * c]);
        let k = kv.clone().slice([0..b, 0..n, 0..h, 0..c]).swap_dims(1, 2);
        let v = kv.slice([0..b, 0..n, 0..h, c..2 * c]).swap_dims(1, 2);
        // points: the last dim holds all x, then all y, then all z
        let points = |lin: &HfLinear<B>, count: usize| -> Tensor<B, 3> {
            let p = lin.forward(s.clone()).reshape([b * n, 3, count]).swap_dims(1, 2); // [bN, count, 3]
            r.apply(p)
        };
        let q_pts = points(&self.linear_q_points, h * pq).reshape([b, n, h, pq, 3]);
        let kv_pts = points(&self.linear_kv_points, h * (pq + pv)).reshape([b, n, h, pq + pv, 3]);
        let k_pts = kv_pts.clone().slice([0..b, 0..n, 0..h, 0..pq, 0..3]);
        let v_pts = kv_pts.slice([0..b, 0..n, 0..h, pq..pq + pv, 0..3]);
        let bias = crate::evoformer::lin4(&self.linear_b, z.clone()).permute([0, 3, 1, 2]); // [b, h, N, N]
        let mut a = matmul(q, k.swap_dims(2, 3)) * (1.0 / (3.0 * c as f64)).sqrt() + bias * (1.0f64 / 3.0).sqrt();
        // Σ_p w_h ‖q_ip − k_jp‖² = w_h (‖q_i‖² + ‖k_j‖² − 2 q_i·k_j), over the flattened (p, xyz)
        let qf = q_pts.swap_dims(1, 2).reshape([b, h, n, pq * 3]);
        let kf = k_pts.swap_dims(1, 2).reshape([b, h, n, pq * 3]);
        let qn = qf.clone().powi_scalar(2).sum_dim(3); // [b, h, N, 1]
        let kn = kf.clone().powi_scalar(2).sum_dim(3).swap_dims(2, 3); // [b, h, 1, N]
        let d2 = qn + kn - matmul(qf, kf.swap_dims(2, 3)) * 2.0;
        let hw = softplus(self.head_weights.val(), 1.0) * (1.0 / (3.0 * (pq as f64 * 9.0 / 2.0))).sqrt();
        a = a + d2 * hw.reshape([1, h, 1, 1]) * (-0.5);
        let inf = crate::nn::mask_bias_magnitude(mask.dtype(), cfg.inf);
        let sq = (mask.clone().reshape([b, n, 1]) * mask.reshape([b, 1, n])).sub_scalar(1.0) * inf;
        a = a + sq.reshape([b, 1, n, n]);
        let a = softmax(a, 3);
        let o = matmul(a.clone(), v).swap_dims(1, 2).reshape([b, n, h * c]);
        // o_pt[i, h, p] = Σ_j a[h, i, j] v_pts[j, h, p], back into residue i's frame
        let vf = v_pts.swap_dims(1, 2).reshape([b, h, n, pv * 3]);
        let o_pt = matmul(a.clone(), vf).reshape([b, h, n, pv, 3]).swap_dims(1, 2).reshape([b * n, h * pv, 3]);
        let o_pt = r.invert_apply(o_pt); // [bN, h·pv, 3]
        let o_pt_norm = (o_pt.clone().powi_scalar(2).sum_dim(2).add_scalar(cfg.epsilon)).sqrt().reshape([b, n, h * pv]);
        let coord = |i: usize| o_pt.clone().slice([0..b * n, 0..h * pv, i..i + 1]).reshape([b, n, h * pv]);
        let o_pair = matmul(a.swap_dims(1, 2), z).reshape([b, n, h * cz]); // [b, N, h, N]·[b, N, N, cz]
        let cat = Tensor::cat(vec![o, coord(0), coord(1), coord(2), o_pt_norm, o_pair], 2);
        self.linear_out.forward(cat)
    }
}

/// `EsmFoldAngleResnet` (Alg. 20 lines 11–14).
#[derive(Module, Debug)]
pub struct AngleResnet<B: Backend> {
    pub linear_in: HfLinear<B>,
    pub linear_initial: HfLinear<B>,
    pub layers: Vec<(HfLinear<B>, HfLinear<B>)>,
    pub linear_out: HfLinear<B>,
    #[module(skip)]
    pub epsilon: f64,
}

impl<B: Backend> AngleResnet<B> {
    /// (unnormalised, normalised) angles `[b, N, A, 2]`.
    pub fn forward(&self, s: Tensor<B, 3>, s_initial: Tensor<B, 3>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [b, n, _] = s.dims();
        let mut a = self.linear_in.forward(relu(s)) + self.linear_initial.forward(relu(s_initial));
        for (l1, l2) in &self.layers {
            a = a.clone() + l2.forward(relu(l1.forward(relu(a))));
        }
        let out = self.linear_out.forward(relu(a));
        let angles = out.dims()[2] / 2;
        let u = out.reshape([b, n, angles, 2]);
        let denom = u.clone().powi_scalar(2).sum_dim(3).clamp_min(self.epsilon).sqrt();
        (u.clone(), u / denom)
    }
}

/// One structure-module iteration's outputs (HF `EsmFoldStructureModule` per-block dict).
#[derive(Clone, Debug)]
pub struct StructureBlockOutput<B: Backend> {
    /// `[b, N, 7]`: unit quaternion and translation (Å) of the backbone frames.
    pub frames: Tensor<B, 3>,
    pub unnormalized_angles: Tensor<B, 4>,
    pub angles: Tensor<B, 4>,
    /// `[b, N, 14, 3]` atom14 coordinates (Å).
    pub positions: Tensor<B, 4>,
    pub states: Tensor<B, 3>,
}

/// All iterations, stacked on a leading axis as HF returns them.
#[derive(Clone, Debug)]
pub struct StructureOutput<B: Backend> {
    pub frames: Tensor<B, 4>,
    pub unnormalized_angles: Tensor<B, 5>,
    pub angles: Tensor<B, 5>,
    pub positions: Tensor<B, 5>,
    pub states: Tensor<B, 4>,
    /// Final single representation.
    pub single: Tensor<B, 3>,
}

impl<B: Backend> StructureOutput<B> {
    /// Atom14 positions of the last iteration `[b, N, 14, 3]`.
    pub fn final_positions(&self) -> Tensor<B, 4> {
        let [k, b, n, a, c] = self.positions.dims();
        self.positions.clone().slice([k - 1..k, 0..b, 0..n, 0..a, 0..c]).reshape([b, n, a, c])
    }
}

#[derive(Module, Debug)]
pub struct StructureModule<B: Backend> {
    pub layer_norm_s: LayerNorm<B>,
    pub layer_norm_z: LayerNorm<B>,
    pub linear_in: HfLinear<B>,
    pub ipa: InvariantPointAttention<B>,
    pub layer_norm_ipa: LayerNorm<B>,
    pub transition: Vec<(HfLinear<B>, HfLinear<B>, HfLinear<B>)>,
    pub transition_norm: LayerNorm<B>,
    pub bb_update: HfLinear<B>,
    pub angle_resnet: AngleResnet<B>,
    #[module(skip)]
    pub config: StructureModuleConfig,
}

impl<B: Backend> StructureModule<B> {
    pub fn build(config: &StructureModuleConfig, prefix: &str, b: &mut Builder<'_, B>, train: bool) -> Result<Self> {
        let c = config;
        let p = |n: &str| format!("{prefix}.{n}");
        let (cs, cz) = (c.sequence_dim, c.pairwise_dim);
        let hc = c.num_heads_ipa * c.ipa_dim;
        let eps = crate::evoformer::TRUNK_LN_EPS;
        let concat = c.num_heads_ipa * (cz + c.ipa_dim + c.num_v_points * 4);
        let ipa = InvariantPointAttention {
            linear_q: b.linear(&p("ipa.linear_q"), cs, hc, true, train)?,
            linear_kv: b.linear(&p("ipa.linear_kv"), cs, 2 * hc, true, train)?,
            linear_q_points: b.linear(&p("ipa.linear_q_points"), cs, c.num_heads_ipa * c.num_qk_points * 3, true, train)?,
            linear_kv_points: b.linear(&p("ipa.linear_kv_points"), cs, c.num_heads_ipa * (c.num_qk_points + c.num_v_points) * 3, true, train)?,
            linear_b: b.linear(&p("ipa.linear_b"), cz, c.num_heads_ipa, true, train)?,
            // zeros, as HF's fresh model (OpenFold would use softplus⁻¹(1))
            head_weights: b.param(&p("ipa.head_weights"), [c.num_heads_ipa], Init::Zeros, train)?,
            linear_out: b.linear(&p("ipa.linear_out"), concat, cs, true, train)?,
            config: c.clone(),
        };
        let transition = (0..c.num_transition_layers)
            .map(|i| {
                Ok((
                    b.linear(&p(&format!("transition.layers.{i}.linear_1")), cs, cs, true, train)?,
                    b.linear(&p(&format!("transition.layers.{i}.linear_2")), cs, cs, true, train)?,
                    b.linear(&p(&format!("transition.layers.{i}.linear_3")), cs, cs, true, train)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let resnet_layers = (0..c.num_resnet_blocks)
            .map(|i| {
                Ok((
                    b.linear(&p(&format!("angle_resnet.layers.{i}.linear_1")), c.resnet_dim, c.resnet_dim, true, train)?,
                    b.linear(&p(&format!("angle_resnet.layers.{i}.linear_2")), c.resnet_dim, c.resnet_dim, true, train)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StructureModule {
            layer_norm_s: b.layer_norm(&p("layer_norm_s"), cs, eps, train)?,
            layer_norm_z: b.layer_norm(&p("layer_norm_z"), cz, eps, train)?,
            linear_in: b.linear(&p("linear_in"), cs, cs, true, train)?,
            ipa,
            layer_norm_ipa: b.layer_norm(&p("layer_norm_ipa"), cs, eps, train)?,
            transition,
            transition_norm: b.layer_norm(&p("transition.layer_norm"), cs, eps, train)?,
            bb_update: b.linear(&p("bb_update.linear"), cs, 6, true, train)?,
            angle_resnet: AngleResnet {
                linear_in: b.linear(&p("angle_resnet.linear_in"), cs, c.resnet_dim, true, train)?,
                linear_initial: b.linear(&p("angle_resnet.linear_initial"), cs, c.resnet_dim, true, train)?,
                layers: resnet_layers,
                linear_out: b.linear(&p("angle_resnet.linear_out"), c.resnet_dim, c.num_angles * 2, true, train)?,
                epsilon: c.epsilon,
            },
            config: c.clone(),
        })
    }

    /// `single: [b, N, c_s]`, `pair: [b, N, N, c_z]` (already projected by `trunk2sm_*`),
    /// `aatype: [b, N]` AlphaFold indices, `mask: [b, N]` (1 = residue).
    pub fn forward(&self, single: Tensor<B, 3>, pair: Tensor<B, 4>, aatype: Tensor<B, 2, Int>, mask: Tensor<B, 2>) -> StructureOutput<B> {
        let [b, n, _] = single.dims();
        let device = single.device();
        let dtype = single.dtype();
        let s_initial = self.layer_norm_s.forward(single);
        let z = self.layer_norm_z.forward(pair);
        let mut s = self.linear_in.forward(s_initial.clone());
        let mut quat = Tensor::<B, 2>::zeros([b * n, 4], (&device, dtype)).slice_assign([0..b * n, 0..1], Tensor::ones([b * n, 1], (&device, dtype)));
        let mut rigid = Rigid { rot: quat_to_rot(quat.clone()), trans: Tensor::zeros([b * n, 3], (&device, dtype)) };
        let tables = ResidueTables::new(&device, dtype);
        let mut outs = Vec::with_capacity(self.config.num_blocks);
        for _ in 0..self.config.num_blocks {
            s = s.clone() + self.ipa.forward(s, z.clone(), &rigid, mask.clone());
            s = self.layer_norm_ipa.forward(s);
            let mut t = s.clone();
            for (l1, l2, l3) in &self.transition {
                t = t.clone() + l3.forward(relu(l2.forward(relu(l1.forward(t)))));
            }
            s = self.transition_norm.forward(t);
            // backbone update: rotation composed as a quaternion, translation rotated by the old frame
            let upd = self.bb_update.forward(s.clone()).reshape([b * n, 6]);
            let qv = upd.clone().slice([0..b * n, 0..3]);
            let tv = upd.slice([0..b * n, 3..6]);
            let trans = rigid.trans.clone() + matmul(rigid.rot.clone(), tv.reshape([b * n, 3, 1])).reshape([b * n, 3]);
            quat = quat_update(quat, qv);
            rigid = Rigid { rot: quat_to_rot(quat.clone()), trans };
            let backbone = rigid.scale_translation(self.config.trans_scale_factor);
            let (unnormalized_angles, angles) = self.angle_resnet.forward(s.clone(), s_initial.clone());
            let groups = torsion_angles_to_frames(&backbone, angles.clone(), aatype.clone(), &tables);
            let positions = atom14_positions(&groups, aatype.clone(), &tables).reshape([b, n, 14, 3]);
            let frames = Tensor::cat(vec![quat.clone(), backbone.trans.clone()], 1).reshape([b, n, 7]);
            outs.push(StructureBlockOutput { frames, unnormalized_angles, angles, positions, states: s.clone() });
            // OpenFold stops the rotation gradient between iterations
            quat = quat.detach();
            rigid = Rigid { rot: rigid.rot.detach(), trans: rigid.trans };
        }
        StructureOutput {
            frames: Tensor::stack(outs.iter().map(|o| o.frames.clone()).collect(), 0),
            unnormalized_angles: Tensor::stack(outs.iter().map(|o| o.unnormalized_angles.clone()).collect(), 0),
            angles: Tensor::stack(outs.iter().map(|o| o.angles.clone()).collect(), 0),
            positions: Tensor::stack(outs.iter().map(|o| o.positions.clone()).collect(), 0),
            states: Tensor::stack(outs.into_iter().map(|o| o.states).collect(), 0),
            single: s,
        }
    }
}

/// The residue-constant tables as device tensors.
struct ResidueTables<B: Backend> {
    /// `[21, 8·16]` default frames (4×4, row-major).
    default_frames: Tensor<B, 2>,
    /// `[21, 14]` group of each atom.
    group_idx: Tensor<B, 2, Int>,
    /// `[21, 14]`.
    atom_mask: Tensor<B, 2>,
    /// `[21, 14·3]`.
    lit_positions: Tensor<B, 2>,
}

impl<B: Backend> ResidueTables<B> {
    fn new(device: &B::Device, dtype: burn::tensor::DType) -> Self {
        let rc = residue_constants();
        let flat4: Vec<f32> = rc.restype_rigid_group_default_frame.iter().flatten().flatten().flatten().copied().collect();
        let groups: Vec<i64> = rc.restype_atom14_to_rigid_group.iter().flatten().copied().collect();
        let mask: Vec<f32> = rc.restype_atom14_mask.iter().flatten().copied().collect();
        let lit: Vec<f32> = rc.restype_atom14_rigid_group_positions.iter().flatten().flatten().copied().collect();
        ResidueTables {
            default_frames: Tensor::from_data(TensorData::new(flat4, [21, 8 * 16]), (device, dtype)),
            group_idx: Tensor::from_data(TensorData::new(groups, [21, 14]), device),
            atom_mask: Tensor::from_data(TensorData::new(mask, [21, 14]), (device, dtype)),
            lit_positions: Tensor::from_data(TensorData::new(lit, [21, 14 * 3]), (device, dtype)),
        }
    }
}

/// Rows of a `[21, k]` table for `aatype: [b, N]` → `[b·N, k]`.
fn gather_rows<B: Backend>(table: Tensor<B, 2>, aatype: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let [b, n] = aatype.dims();
    table.select(0, aatype.reshape([b * n]))
}

/// The 8 rigid groups of every residue in global coordinates (`[b·N·8]` frames), OpenFold's
/// `torsion_angles_to_frames`: group g = default frame ∘ rotation by its torsion angle about x,
/// χ₂…χ₄ chained onto χ₁, all composed with the backbone frame.
fn torsion_angles_to_frames<B: Backend>(backbone: &Rigid<B>, angles: Tensor<B, 4>, aatype: Tensor<B, 2, Int>, t: &ResidueTables<B>) -> Rigid<B> {
    let [b, n, a, _] = angles.dims();
    let m = b * n;
    let device = angles.device();
    let dtype = angles.dtype();
    let def = gather_rows(t.default_frames.clone(), aatype).reshape([m * 8, 4, 4]);
    let def = Rigid { rot: def.clone().slice([0..m * 8, 0..3, 0..3]), trans: def.slice([0..m * 8, 0..3, 3..4]).reshape([m * 8, 3]) };
    // backbone "angle" (sin, cos) = (0, 1), then the predicted ones
    let bb = Tensor::<B, 2>::zeros([m, 2], (&device, dtype)).slice_assign([0..m, 1..2], Tensor::ones([m, 1], (&device, dtype))).reshape([m, 1, 2]);
    let alpha = Tensor::cat(vec![bb, angles.reshape([m, a, 2])], 1).reshape([m * 8, 2]);
    let sin = alpha.clone().slice([0..m * 8, 0..1]);
    let cos = alpha.slice([0..m * 8, 1..2]);
    let one = Tensor::<B, 2>::ones([m * 8, 1], (&device, dtype));
    let zero = Tensor::<B, 2>::zeros([m * 8, 1], (&device, dtype));
    let rot = Tensor::cat(vec![one, zero.clone(), zero.clone(), zero.clone(), cos.clone(), sin.clone().neg(), zero, sin, cos], 1).reshape([m * 8, 3, 3]);
    let local = Rigid { rot: matmul(def.rot.clone(), rot), trans: def.trans };
    let group = |g: usize| Rigid {
        rot: local.rot.clone().reshape([m, 8, 3, 3]).slice([0..m, g..g + 1, 0..3, 0..3]).reshape([m, 3, 3]),
        trans: local.trans.clone().reshape([m, 8, 3]).slice([0..m, g..g + 1, 0..3]).reshape([m, 3]),
    };
    let chi2 = group(4).compose(&group(5));
    let chi3 = chi2.compose(&group(6));
    let chi4 = chi3.compose(&group(7));
    let to_bb: Vec<Rigid<B>> = (0..5).map(group).chain([chi2, chi3, chi4]).collect();
    let rot = Tensor::stack::<4>(to_bb.iter().map(|r| r.rot.clone()).collect(), 1).reshape([m * 8, 3, 3]);
    let trans = Tensor::stack::<3>(to_bb.iter().map(|r| r.trans.clone()).collect(), 1).reshape([m * 8, 3]);
    let expand = |x: Tensor<B, 3>| x.reshape([m, 1, 3, 3]).expand([m, 8, 3, 3]).reshape([m * 8, 3, 3]);
    let bb_rigid = Rigid { rot: expand(backbone.rot.clone()), trans: backbone.trans.clone().reshape([m, 1, 3]).expand([m, 8, 3]).reshape([m * 8, 3]) };
    bb_rigid.compose(&Rigid { rot, trans })
}

/// Atom14 coordinates `[b·N, 14, 3]`: each atom's literature position mapped by its group's frame.
fn atom14_positions<B: Backend>(groups: &Rigid<B>, aatype: Tensor<B, 2, Int>, t: &ResidueTables<B>) -> Tensor<B, 3> {
    let m = groups.trans.dims()[0] / 8;
    let [b, n] = aatype.dims();
    let gidx = t.group_idx.clone().select(0, aatype.clone().reshape([b * n])); // [m, 14]
    let flat = (Tensor::<B, 1, Int>::arange(0..m as i64, &gidx.device()).reshape([m, 1]) * 8 + gidx).reshape([m * 14]);
    let rot = groups.rot.clone().select(0, flat.clone()); // [m·14, 3, 3]
    let trans = groups.trans.clone().select(0, flat); // [m·14, 3]
    let lit = gather_rows(t.lit_positions.clone(), aatype.clone()).reshape([m * 14, 3, 1]);
    let pos = matmul(rot, lit).reshape([m * 14, 3]) + trans;
    let mask = gather_rows(t.atom_mask.clone(), aatype).reshape([m * 14, 1]);
    (pos * mask).reshape([m, 14, 3])
}
