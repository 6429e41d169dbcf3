//! Layer operations with a hand-written backward pass, each one autodiff node instead of many.
//!
//! A GPU training step of LLaMA-2-7B at 128 tokens is bound by the host's cost per tensor
//! operation: autodiff bookkeeping on the stepping thread and burn-fusion's registration on its
//! device thread, both busy for the whole step (H200, session 11: ~15 µs of host time per
//! operation, ~10,000 operations per step). Each operation here replaces a composite:
//! - [`rms_norm`]: ~18 tracked operations forward and ~30 backward → one node (~12 untracked
//!   operations forward, ~15 backward);
//! - [`attention`]: scores, scaling, f32 softmax, mask and the product with `v` (nine nodes, ~25
//!   backward operations) → one node whose backward is the softmax gradient in closed form;
//!   [`rope_attention`] also takes LLaMA's head split, RoPE and head merge into that node;
//! - [`add_update`]: a half-precision base output joined by an f32 adapter update (three casts
//!   and an addition) → one node;
//! - [`layer_norm`] (BERT, RoBERTa, ESM) as RMSNorm; [`swiglu`], LLaMA's `silu(gate)·up`;
//! - [`stacked_block`]: one block of a stacked tensor (LoRTA's per-site factors) whose backward
//!   is one broadcast product instead of a zero fill, a slice assignment and an addition;
//! - [`linear`]: `x·wᵀ` whose backward forms `w`'s gradient in `w`'s own layout (LoRA's factors).
//!
//! Generic model code reaches them through a registry keyed by backend type (as products reach
//! `cube_matmul`): [`register`] adds a backend and its autodiff wrapper; on any other backend the
//! composite runs. `LORTA_FUSED_OPS` switches them for A/B measurements: unset or `all`, `none`,
//! or a comma list of `rms_norm`, `layer_norm`, `attention` (both attentions), `add_update`,
//! `swiglu`, `stacked_block`, `linear`.
use crate::shapes::mean_last_dim_primitive;
use burn::tensor::{backend::Backend, ops::{BoolTensor, FloatTensor}, Bool, DType, FloatDType, Shape, Tensor, TensorMetadata, TensorPrimitive};
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{binary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use crate::backend_registry::BackendRegistry;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

type RmsNormFn<B> = fn(FloatTensor<B>, FloatTensor<B>, f64) -> FloatTensor<B>;
type AttentionFn<B> = fn(FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, Option<BoolTensor<B>>, Masking) -> FloatTensor<B>;

type AddUpdateFn<B> = fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>;
type LayerNormFn<B> = fn(FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, f64) -> FloatTensor<B>;
type SwigluFn<B> = fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>;
type RopeAttentionFn<B> = fn([FloatTensor<B>; 3], [FloatTensor<B>; 2], Option<BoolTensor<B>>, Masking, HeadLayout) -> FloatTensor<B>;
type StackedBlockFn<B> = fn(FloatTensor<B>, FloatTensor<B>, Block) -> FloatTensor<B>;
type LinearFn<B> = fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>;

/// A backend's fused operations.
struct FusedOps<B: Backend> {
    rms_norm: RmsNormFn<B>,
    attention: AttentionFn<B>,
    rope_attention: RopeAttentionFn<B>,
    add_update: AddUpdateFn<B>,
    layer_norm: LayerNormFn<B>,
    swiglu: SwigluFn<B>,
    stacked_block: StackedBlockFn<B>,
    linear: LinearFn<B>,
}

impl<B: Backend> Clone for FusedOps<B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for FusedOps<B> {}

/// Scale of the scores and the value masked positions get (before the softmax).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Masking {
    pub scale: f64,
    pub mask_value: f64,
}

static REGISTRY: BackendRegistry = BackendRegistry::new();

/// The operations `LORTA_FUSED_OPS` leaves on: unset or `all`: every one; `0` or `none`: none;
/// otherwise a comma list of `rms_norm`, `attention`, `add_update` (A/B measurements).
fn enabled(op: &str) -> bool {
    static SPEC: OnceLock<Option<String>> = OnceLock::new();
    op_enabled(SPEC.get_or_init(|| std::env::var("LORTA_FUSED_OPS").ok()).as_deref(), op)
}

fn op_enabled(spec: Option<&str>, op: &str) -> bool {
    match spec.map(str::trim) {
        None | Some("all") | Some("") => true,
        Some("0") | Some("none") => false,
        Some(list) => list.split(',').any(|w| w.trim() == op),
    }
}

fn add<B: Backend>(ops: FusedOps<B>) {
    REGISTRY.insert::<B, _>(ops);
}

/// Gives backend `B` (inference: the fused forwards) and `Autodiff<B>` (training: forwards and
/// hand-written backwards) the fused operations.
pub fn register<B: Backend>() {
    add::<B>(FusedOps {
        rms_norm: |x, w, eps| rms_norm_forward::<B>(x, w, eps).0,
        attention: |q, k, v, m, s| attention_forward::<B>(q, k, v, m, s).0,
        rope_attention: |qkv, tables, m, s, layout| rope_attention_forward::<B>(qkv, tables, m, s, layout).0,
        add_update: add_update_forward::<B>,
        layer_norm: |x, w, b, eps| layer_norm_forward::<B>(x, w, b, eps).0,
        swiglu: swiglu_forward::<B>,
        stacked_block: |stacked, _, block| stacked_block_forward::<B>(stacked, block),
        linear: linear_forward::<B>,
    });
    add::<Autodiff<B>>(FusedOps {
        rms_norm: rms_norm_autodiff::<B, burn_autodiff::checkpoint::strategy::NoCheckpointing>,
        attention: attention_autodiff::<B, burn_autodiff::checkpoint::strategy::NoCheckpointing>,
        rope_attention: rope_attention_autodiff::<B, burn_autodiff::checkpoint::strategy::NoCheckpointing>,
        add_update: add_update_autodiff::<B, burn_autodiff::checkpoint::strategy::NoCheckpointing>,
        layer_norm: layer_norm_autodiff::<B, burn_autodiff::checkpoint::strategy::NoCheckpointing>,
        swiglu: swiglu_autodiff::<B, burn_autodiff::checkpoint::strategy::NoCheckpointing>,
        stacked_block: stacked_block_autodiff::<B, burn_autodiff::checkpoint::strategy::NoCheckpointing>,
        linear: linear_autodiff::<B, burn_autodiff::checkpoint::strategy::NoCheckpointing>,
    });
}

fn registered<B: Backend>(op: &str) -> Option<FusedOps<B>> {
    if !enabled(op) {
        return None;
    }
    REGISTRY.get::<B, FusedOps<B>>()
}

/// The `[n, n]` identity that [`stacked_block`] and [`stacked_columns`] pick blocks with (in
/// `dtype`, on `device`), or `None` where `B` runs them as plain narrow / slice (callers then
/// take that path without forming it).
/// Made once per backend type, device, size and dtype and kept: formed from host data it is an
/// upload per call (one per LLaMA layer and step through LoRA's stacked sites; ~11 % of the
/// stepping thread's samples in a LoRA step on lavapipe, no change in the step on an H200).
pub fn block_selectors<B: Backend>(n: usize, device: &B::Device, dtype: DType) -> Option<Tensor<B, 2>> {
    registered::<B>("stacked_block")?;
    type Cache = Mutex<HashMap<(TypeId, String, usize), Box<dyn Any + Send + Sync>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (TypeId::of::<B>(), format!("{device:?} {dtype:?}"), n);
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(eye) = cache.get(&key).and_then(|t| t.downcast_ref::<Tensor<B, 2>>()) {
        return Some(eye.clone());
    }
    let eye: Vec<f32> = (0..n * n).map(|i| if i % (n + 1) == 0 { 1.0 } else { 0.0 }).collect();
    let eye = Tensor::<B, 2>::from_data(burn::tensor::TensorData::new(eye, [n, n]), (device, dtype));
    cache.insert(key, Box::new(eye.clone()));
    Some(eye)
}

/// Whether `B` runs the fused operations (registered, not switched off).
pub fn is_registered<B: Backend>() -> bool {
    ["rms_norm", "layer_norm", "attention", "add_update", "swiglu", "stacked_block", "linear"].iter().any(|op| registered::<B>(op).is_some())
}

/// LLaMA's RMSNorm, `weight ⊙ to_dtype(x·rsqrt(mean(x²) + eps))` with the statistics in f32 (as
/// Hugging Face computes it), over the last dim; `weight: [len]`.
pub fn rms_norm<B: Backend, const D: usize>(x: Tensor<B, D>, weight: Tensor<B, 1>, eps: f64) -> Tensor<B, D> {
    match registered::<B>("rms_norm") {
        Some(ops) => {
            let y = (ops.rms_norm)(x.into_primitive().tensor(), weight.into_primitive().tensor(), eps);
            Tensor::from_primitive(TensorPrimitive::Float(y))
        }
        None => rms_norm_composite(x, weight, eps),
    }
}

/// [`rms_norm`] from tensor operations (autodiff differentiates it step by step).
pub fn rms_norm_composite<B: Backend, const D: usize>(x: Tensor<B, D>, weight: Tensor<B, 1>, eps: f64) -> Tensor<B, D> {
    use crate::shapes::{mean_last_dim, row_broadcast, RowOp};
    let dtype = x.dtype();
    // The upcast is written twice on purpose: one f32 copy feeding both the reduction and the
    // scaling makes burn-cubecl-fusion 0.21 pick that copy as the fused reduction's reference
    // layout and index it among the inputs (panic "index out of bounds" in the first
    // half-precision training step, CUDA and wgpu; lorta-models' `tests/wgpu_half_precision.rs`).
    let xf = upcast(x.clone());
    let var = mean_last_dim(xf.clone() * xf);
    let y = row_broadcast(upcast(x), (var + eps).sqrt().recip(), RowOp::Mul);
    weight.unsqueeze() * downcast(y, dtype)
}

/// To f32 for numerically sensitive reductions (no-op in f32 and f64).
pub fn upcast<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if matches!(x.dtype(), DType::F32 | DType::F64) {
        x
    } else {
        x.cast(FloatDType::F32)
    }
}

/// To `dtype` when it differs (no operation otherwise).
pub fn downcast<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype {
        x
    } else {
        x.cast(dtype)
    }
}

fn upcast_primitive<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    if matches!(x.dtype(), DType::F32 | DType::F64) {
        x
    } else {
        B::float_cast(x, FloatDType::F32)
    }
}

fn downcast_primitive<B: Backend>(x: FloatTensor<B>, dtype: DType) -> FloatTensor<B> {
    if x.dtype() == dtype {
        x
    } else {
        B::float_cast(x, dtype.into())
    }
}

/// `weight: [len]` as `[1, …, 1, len]` of `rank` dims, to broadcast over rows.
fn weight_row<B: Backend>(weight: FloatTensor<B>, rank: usize) -> FloatTensor<B> {
    let len = weight.shape()[0];
    let mut dims = vec![1; rank];
    dims[rank - 1] = len;
    B::float_reshape(weight, Shape::from(dims))
}

/// `(y, rstd)`: the output and `1/√(mean(x²) + eps)` per row (f32, last dim 1).
fn rms_norm_forward<B: Backend>(x: FloatTensor<B>, weight: FloatTensor<B>, eps: f64) -> (FloatTensor<B>, FloatTensor<B>) {
    let (dtype, rank) = (x.dtype(), x.shape().num_dims());
    // two casts, not one shared copy: see `rms_norm_composite`
    let for_mean = upcast_primitive::<B>(x.clone());
    let mean_sq = mean_last_dim_primitive::<B>(B::float_mul(for_mean.clone(), for_mean));
    let rstd = B::float_recip(B::float_sqrt(B::float_add_scalar(mean_sq, eps.into())));
    let normed = downcast_primitive::<B>(B::float_mul(upcast_primitive::<B>(x), rstd.clone()), dtype);
    (B::float_mul(normed, weight_row::<B>(weight, rank)), rstd)
}

/// The gradient of `x` from the output's `grad`: with ĝ = grad ⊙ weight (in the input dtype, as
/// the forward's last product), `dx = rstd·ĝ − x·rstd³·mean(ĝ ⊙ x)`.
fn rms_norm_grad_x<B: Backend>(grad: FloatTensor<B>, x: FloatTensor<B>, weight: FloatTensor<B>, rstd: FloatTensor<B>) -> FloatTensor<B> {
    let (dtype, rank) = (x.dtype(), x.shape().num_dims());
    let g_w = B::float_mul(grad, weight_row::<B>(weight, rank));
    // separate casts for the reduction and the elementwise part (see `rms_norm_composite`)
    let dot = mean_last_dim_primitive::<B>(B::float_mul(upcast_primitive::<B>(g_w.clone()), upcast_primitive::<B>(x.clone())));
    let rstd3_dot = B::float_mul(B::float_mul(B::float_mul(rstd.clone(), rstd.clone()), rstd.clone()), dot);
    let dx = B::float_sub(B::float_mul(upcast_primitive::<B>(g_w), rstd), B::float_mul(upcast_primitive::<B>(x), rstd3_dot));
    downcast_primitive::<B>(dx, dtype)
}

/// The gradient of `weight`: grad ⊙ normalised x, summed over all rows.
fn rms_norm_grad_weight<B: Backend>(grad: FloatTensor<B>, x: FloatTensor<B>, rstd: FloatTensor<B>, len: usize) -> FloatTensor<B> {
    let dtype = x.dtype();
    let normed = downcast_primitive::<B>(B::float_mul(upcast_primitive::<B>(x), rstd), dtype);
    let rows = grad.shape().num_elements() / len;
    let per_row = B::float_reshape(B::float_mul(grad, normed), Shape::new([rows, len]));
    B::float_reshape(B::float_sum_dim(per_row, 0), Shape::new([len]))
}

#[derive(Debug)]
struct RmsNormBackward;

impl<B: Backend> Backward<B, 2> for RmsNormBackward {
    /// x, weight, rstd.
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (x, weight, rstd) = ops.state;
        let len = weight.shape()[0];
        let (x2, rstd2) = (x.clone(), rstd.clone());
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            |grad| rms_norm_grad_x::<B>(grad, x, weight, rstd),
            |grad| rms_norm_grad_weight::<B>(grad, x2, rstd2, len),
        );
    }
}

fn rms_norm_autodiff<B: Backend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    eps: f64,
) -> FloatTensor<Autodiff<B, C>> {
    match RmsNormBackward.prepare::<C>([x.node.clone(), weight.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (y, rstd) = rms_norm_forward::<B>(x.primitive.clone(), weight.primitive.clone(), eps);
            prep.finish((x.primitive, weight.primitive, rstd), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(rms_norm_forward::<B>(x.primitive, weight.primitive, eps).0),
    }
}

/// Attention `softmax(mask(q·kᵀ·scale))·v` over `[b, h, s, dh]` heads (`k`, `v` already repeated
/// to `h` heads), with the scores and the softmax in f32 and the probabilities in the input
/// dtype (Hugging Face's eager attention); `mask` (true = masked) broadcasts to `[b, h, sq, sk]`.
/// `None` where `B` has no fused operations: the caller runs its composite.
pub fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
    masking: Masking,
) -> Option<Tensor<B, 4>> {
    // f32 products on CUDA take the exact split form (`crate::matmul`): only where the backend
    // has it as one kernel can this op's forward products take it too
    if q.dtype() == DType::F32 && !crate::matmul::primitive_products_exact::<B>() {
        return None;
    }
    let ops = registered::<B>("attention")?;
    let [b, h, sq, _] = q.dims();
    let sk = k.dims()[2];
    let mask = mask.map(|m| m.expand([b, h, sq, sk]).into_primitive());
    let out = (ops.attention)(q.into_primitive().tensor(), k.into_primitive().tensor(), v.into_primitive().tensor(), mask, masking);
    Some(Tensor::from_primitive(TensorPrimitive::Float(out)))
}

/// `(out, probabilities in f32, probabilities in the input dtype)`.
fn attention_forward<B: Backend>(
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    mask: Option<BoolTensor<B>>,
    masking: Masking,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let dtype = q.dtype();
    // the forward's products exact in f32 where the switch asks for it; the backward's take the
    // backend's product, as every product's backward does (`crate::matmul`)
    let scores = B::float_mul_scalar(crate::matmul::product_primitive::<B>(q, B::float_swap_dims(k, 2, 3)), masking.scale.into());
    let scores = upcast_primitive::<B>(scores);
    let scores = match mask {
        Some(m) => B::float_mask_fill(scores, m, masking.mask_value.into()),
        None => scores,
    };
    let max = B::float_max_dim(scores.clone(), 3);
    let exp = B::float_exp(B::float_sub(scores, max));
    let probs = B::float_div(exp.clone(), B::float_sum_dim(exp, 3));
    let probs_low = downcast_primitive::<B>(probs.clone(), dtype);
    (crate::matmul::product_primitive::<B>(probs_low.clone(), v), probs, probs_low)
}

#[derive(Debug)]
struct AttentionBackward;

impl<B: Backend> Backward<B, 3> for AttentionBackward {
    /// q, k, v, probabilities (f32 and input dtype), scale.
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (q, k, v, probs, probs_low, scale) = ops.state;
        // the gradient arrives through the callers' head merge (a strided view): written out
        // once for the two products that read it
        let grad = materialize::<B>(grads.consume::<B>(&ops.node));
        let [node_q, node_k, node_v] = ops.parents;
        let need = [node_q.is_some(), node_k.is_some(), node_v.is_some()];
        let [dq, dk, dv] = attention_backward::<B>(grad, [q, k, v], probs, probs_low, scale, need);
        for (node, d) in [(node_q, dq), (node_k, dk), (node_v, dv)] {
            if let (Some(node), Some(d)) = (node, d) {
                grads.register::<B>(node.id, d);
            }
        }
    }
}

/// The gradients of q, k and v (`[b, h, s, dh]`) that `need` asks for, from the output's.
fn attention_backward<B: Backend>(
    grad: FloatTensor<B>,
    [q, k, v]: [FloatTensor<B>; 3],
    probs: FloatTensor<B>,
    probs_low: FloatTensor<B>,
    scale: f64,
    need: [bool; 3],
) -> [Option<FloatTensor<B>>; 3] {
    let dtype = grad.dtype();
    let dv = need[2].then(|| B::float_matmul(B::float_swap_dims(probs_low, 2, 3), grad.clone()));
    if !need[0] && !need[1] {
        return [None, None, dv];
    }
    // softmax backward in f32: ds = p ⊙ (dp − Σ dp ⊙ p); masked positions have p = 0.
    // Separate casts for the reduction and the elementwise part (see `rms_norm_composite`).
    let dp = B::float_matmul(grad, B::float_swap_dims(v, 2, 3));
    let dot = B::float_sum_dim(B::float_mul(upcast_primitive::<B>(dp.clone()), probs.clone()), 3);
    let ds = B::float_mul(probs, B::float_sub(upcast_primitive::<B>(dp), dot));
    let ds = downcast_primitive::<B>(B::float_mul_scalar(ds, scale.into()), dtype);
    let dq = need[0].then(|| B::float_matmul(ds.clone(), k));
    let dk = need[1].then(|| B::float_matmul(B::float_swap_dims(ds, 2, 3), q));
    [dq, dk, dv]
}

fn attention_autodiff<B: Backend, C: CheckpointStrategy>(
    q: FloatTensor<Autodiff<B, C>>,
    k: FloatTensor<Autodiff<B, C>>,
    v: FloatTensor<Autodiff<B, C>>,
    mask: Option<BoolTensor<B>>,
    masking: Masking,
) -> FloatTensor<Autodiff<B, C>> {
    match AttentionBackward.prepare::<C>([q.node.clone(), k.node.clone(), v.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            // `v` (split heads, strided) is read by a product forward and one backward
            let v = materialize::<B>(v.primitive);
            let (out, probs, probs_low) = attention_forward::<B>(q.primitive.clone(), k.primitive.clone(), v.clone(), mask, masking);
            prep.finish((q.primitive, k.primitive, v, probs, probs_low, masking.scale), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(attention_forward::<B>(q.primitive, k.primitive, v.primitive, mask, masking).0),
    }
}

/// LLaMA's self-attention from the projections' rows to the context's rows: `q`, `k`, `v` as
/// `[b·s, h·dh]` (every head its own key/value head), split into heads, RoPE on `q` and `k`
/// (`cos` and the signed `sin` of `[1, 1, s, dh]`, the rotate-half convention as one flip of the
/// halves), [`attention`], heads merged back to `[b·s, h·dh]`. One node: the head reshapes and
/// the rotation (~20 tracked operations forward) are done on primitives, and the backward
/// applies the rotation's transpose. The tables must have RoPE's structure (both halves the
/// same angles, the sine's first half negated: `lorta_models::nn::rotary_tables`); the backward
/// relies on it. `None` where `B` has no fused operations.
#[allow(clippy::too_many_arguments)]
pub fn rope_attention<B: Backend>(
    q: Tensor<B, 2>,
    k: Tensor<B, 2>,
    v: Tensor<B, 2>,
    batch: usize,
    heads: usize,
    cos: Tensor<B, 4>,
    signed_sin: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
    masking: Masking,
) -> Option<Tensor<B, 2>> {
    if q.dtype() == DType::F32 && !crate::matmul::primitive_products_exact::<B>() {
        return None;
    }
    let ops = registered::<B>("attention")?;
    let [rows, width] = q.dims();
    let (s, dh) = (rows / batch, width / heads);
    let mask = mask.map(|m| m.expand([batch, heads, s, s]).into_primitive());
    let layout = HeadLayout { batch, seq: s, heads, head_dim: dh };
    let out = (ops.rope_attention)(
        [q.into_primitive().tensor(), k.into_primitive().tensor(), v.into_primitive().tensor()],
        [cos.into_primitive().tensor(), signed_sin.into_primitive().tensor()],
        mask,
        masking,
        layout,
    );
    Some(Tensor::from_primitive(TensorPrimitive::Float(out)))
}

/// `x` written out in contiguous memory by one elementwise kernel (burn has no explicit
/// contiguous operation), for split heads that two products read: each product would
/// otherwise copy the strided view itself.
fn materialize<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::float_mul_scalar(x, 1.0.into())
}

/// How `[b·s, h·dh]` rows split into `[b, h, s, dh]` heads.
#[derive(Clone, Copy, Debug)]
pub struct HeadLayout {
    batch: usize,
    seq: usize,
    heads: usize,
    head_dim: usize,
}

impl HeadLayout {
    fn split<B: Backend>(&self, rows: FloatTensor<B>) -> FloatTensor<B> {
        let HeadLayout { batch, seq, heads, head_dim } = *self;
        B::float_swap_dims(B::float_reshape(rows, Shape::new([batch, seq, heads, head_dim])), 1, 2)
    }
    fn merge<B: Backend>(&self, heads4: FloatTensor<B>) -> FloatTensor<B> {
        let HeadLayout { batch, seq, heads, head_dim } = *self;
        B::float_reshape(B::float_swap_dims(heads4, 1, 2), Shape::new([batch * seq, heads * head_dim]))
    }
    /// The two halves of every head swapped (`[x₂, x₁]`), one flip; its own transpose.
    fn swap_halves<B: Backend>(&self, x: FloatTensor<B>) -> FloatTensor<B> {
        let HeadLayout { batch, seq, heads, head_dim } = *self;
        let shape = x.shape();
        let halves = B::float_reshape(x, Shape::new([batch, heads, seq, 2, head_dim / 2]));
        B::float_reshape(B::float_flip(halves, &[3]), shape)
    }
    /// RoPE of `[b·s, h·dh]` rows into `[b, h, s, dh]` heads: `x·cos + swap_halves(x)·signed_sin`.
    /// The halves are swapped while the rows are still contiguous and the head split is left to
    /// the elementwise kernel's reads: a flip and one fused kernel, where rotating the split
    /// heads first copies them into contiguous memory.
    fn rotate_rows<B: Backend>(&self, rows: FloatTensor<B>, cos: FloatTensor<B>, sin: FloatTensor<B>) -> FloatTensor<B> {
        let HeadLayout { batch, seq, heads, head_dim } = *self;
        let x4 = B::float_reshape(rows, Shape::new([batch, seq, heads, head_dim]));
        let halves = B::float_reshape(x4.clone(), Shape::new([batch, seq, heads, 2, head_dim / 2]));
        let swapped = B::float_reshape(B::float_flip(halves, &[3]), Shape::new([batch, seq, heads, head_dim]));
        let (x, swapped) = (B::float_swap_dims(x4, 1, 2), B::float_swap_dims(swapped, 1, 2));
        B::float_add(B::float_mul(x, cos), B::float_mul(swapped, sin))
    }
    /// The transpose of [`Self::rotate_rows`], from contiguous `[b, h, s, dh]` heads back to
    /// rows: `g·cos + swap_halves(g·signed_sin) = g·cos − swap_halves(g)·signed_sin` (both halves
    /// of the tables hold the same angles, so `swap_halves(signed_sin) = −signed_sin`). A flip and
    /// one fused kernel that also reads the head merge, instead of a product, a flip, an addition
    /// and the merge's copy.
    fn unrotate_rows<B: Backend>(&self, g: FloatTensor<B>, cos: FloatTensor<B>, sin: FloatTensor<B>) -> FloatTensor<B> {
        let HeadLayout { batch, seq, heads, head_dim } = *self;
        let swapped = self.swap_halves::<B>(g.clone());
        let by_position = |t: FloatTensor<B>| B::float_reshape(t, Shape::new([1, seq, 1, head_dim]));
        let (g, swapped) = (B::float_swap_dims(g, 1, 2), B::float_swap_dims(swapped, 1, 2));
        let rows = B::float_sub(B::float_mul(g, by_position(cos)), B::float_mul(swapped, by_position(sin)));
        B::float_reshape(rows, Shape::new([batch * seq, heads * head_dim]))
    }
}

/// `(context rows, rotated q, rotated k, v heads, probabilities f32, in the input dtype)`.
#[allow(clippy::type_complexity)]
fn rope_attention_forward<B: Backend>(
    [q, k, v]: [FloatTensor<B>; 3],
    [cos, sin]: [FloatTensor<B>; 2],
    mask: Option<BoolTensor<B>>,
    masking: Masking,
    layout: HeadLayout,
) -> (FloatTensor<B>, [FloatTensor<B>; 3], FloatTensor<B>, FloatTensor<B>) {
    let q = layout.rotate_rows::<B>(q, cos.clone(), sin.clone());
    let k = layout.rotate_rows::<B>(k, cos, sin);
    let v = materialize::<B>(layout.split::<B>(v));
    let (out, probs, probs_low) = attention_forward::<B>(q.clone(), k.clone(), v.clone(), mask, masking);
    (layout.merge::<B>(out), [q, k, v], probs, probs_low)
}

#[derive(Debug)]
struct RopeAttentionBackward;

impl<B: Backend> Backward<B, 3> for RopeAttentionBackward {
    /// rotated q, k, v heads; probabilities (f32, input dtype); cos, signed sin; scale; layout.
    #[allow(clippy::type_complexity)]
    type State = ([FloatTensor<B>; 3], FloatTensor<B>, FloatTensor<B>, [FloatTensor<B>; 2], f64, HeadLayout);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (qkv, probs, probs_low, [cos, sin], scale, layout) = ops.state;
        let grad = materialize::<B>(layout.split::<B>(grads.consume::<B>(&ops.node)));
        let [node_q, node_k, node_v] = ops.parents;
        let need = [node_q.is_some(), node_k.is_some(), node_v.is_some()];
        let [dq, dk, dv] = attention_backward::<B>(grad, qkv, probs, probs_low, scale, need);
        let unrotate = |d: FloatTensor<B>| layout.unrotate_rows::<B>(d, cos.clone(), sin.clone());
        for (node, d) in [(node_q, dq.map(unrotate)), (node_k, dk.map(unrotate)), (node_v, dv.map(|d| layout.merge::<B>(d)))] {
            if let (Some(node), Some(d)) = (node, d) {
                grads.register::<B>(node.id, d);
            }
        }
    }
}

fn rope_attention_autodiff<B: Backend, C: CheckpointStrategy>(
    [q, k, v]: [FloatTensor<Autodiff<B, C>>; 3],
    [cos, sin]: [FloatTensor<Autodiff<B, C>>; 2],
    mask: Option<BoolTensor<B>>,
    masking: Masking,
    layout: HeadLayout,
) -> FloatTensor<Autodiff<B, C>> {
    // the tables are constants (no gradient)
    let tables = [cos.primitive, sin.primitive];
    match RopeAttentionBackward.prepare::<C>([q.node.clone(), k.node.clone(), v.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (out, qkv, probs, probs_low) = rope_attention_forward::<B>([q.primitive, k.primitive, v.primitive], tables.clone(), mask, masking, layout);
            prep.finish((qkv, probs, probs_low, tables, masking.scale, layout), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(rope_attention_forward::<B>([q.primitive, k.primitive, v.primitive], tables, mask, masking, layout).0),
    }
}

/// `base + update` computed in the update's dtype and rounded once to the base's: a frozen
/// half-precision base output joined by an f32 adapter update (PEFT's `autocast_adapter_dtype`).
/// Its backward passes the gradient to `base` unchanged (rounding an already half-precision
/// gradient is the identity) and widens it for `update`: one operation instead of three casts
/// and an addition, forward and back.
pub fn add_update<B: Backend, const D: usize>(base: Tensor<B, D>, update: Tensor<B, D>) -> Tensor<B, D> {
    let out = base.dtype();
    if update.dtype() == out {
        return base + update;
    }
    match registered::<B>("add_update") {
        Some(ops) => Tensor::from_primitive(TensorPrimitive::Float((ops.add_update)(base.into_primitive().tensor(), update.into_primitive().tensor()))),
        None => downcast(base.cast(update.dtype()) + update, out),
    }
}

fn add_update_forward<B: Backend>(base: FloatTensor<B>, update: FloatTensor<B>) -> FloatTensor<B> {
    let out = base.dtype();
    let wide = B::float_cast(base, update.dtype().into());
    downcast_primitive::<B>(B::float_add(wide, update), out)
}

#[derive(Debug)]
struct AddUpdateBackward;

impl<B: Backend> Backward<B, 2> for AddUpdateBackward {
    /// The update's dtype.
    type State = DType;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let wide = ops.state;
        binary::<B, _, _>(ops.parents, ops.node, grads, |grad| grad, |grad| B::float_cast(grad, wide.into()));
    }
}

fn add_update_autodiff<B: Backend, C: CheckpointStrategy>(base: FloatTensor<Autodiff<B, C>>, update: FloatTensor<Autodiff<B, C>>) -> FloatTensor<Autodiff<B, C>> {
    let wide = update.primitive.dtype();
    match AddUpdateBackward.prepare::<C>([base.node.clone(), update.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(wide, add_update_forward::<B>(base.primitive, update.primitive)),
        OpsKind::UnTracked(prep) => prep.finish(add_update_forward::<B>(base.primitive, update.primitive)),
    }
}

/// LayerNorm over the last dim, `weight ⊙ to_dtype((x − mean)·rsqrt(var + eps)) + bias` with the
/// statistics in f32; `weight`, `bias: [len]`.
pub fn layer_norm<B: Backend, const D: usize>(x: Tensor<B, D>, weight: Tensor<B, 1>, bias: Tensor<B, 1>, eps: f64) -> Tensor<B, D> {
    match registered::<B>("layer_norm") {
        Some(ops) => {
            let y = (ops.layer_norm)(x.into_primitive().tensor(), weight.into_primitive().tensor(), bias.into_primitive().tensor(), eps);
            Tensor::from_primitive(TensorPrimitive::Float(y))
        }
        None => layer_norm_composite(x, weight, bias, eps),
    }
}

/// [`layer_norm`] from tensor operations.
pub fn layer_norm_composite<B: Backend, const D: usize>(x: Tensor<B, D>, weight: Tensor<B, 1>, bias: Tensor<B, 1>, eps: f64) -> Tensor<B, D> {
    use crate::shapes::{mean_last_dim, row_broadcast, RowOp};
    let dtype = x.dtype();
    // one cast per use (see `rms_norm_composite`)
    let mean = mean_last_dim(upcast(x.clone()));
    // per-row broadcasts through `row_broadcast`: their backward sums over each row
    let xc = row_broadcast(upcast(x), mean, RowOp::Sub);
    let var = mean_last_dim(xc.clone() * xc.clone());
    let y = row_broadcast(xc, (var + eps).sqrt(), RowOp::Div);
    downcast(y, dtype) * weight.unsqueeze() + bias.unsqueeze()
}

/// `(y, mean, rstd)`, the statistics per row in f32 (last dim 1).
fn layer_norm_forward<B: Backend>(x: FloatTensor<B>, weight: FloatTensor<B>, bias: FloatTensor<B>, eps: f64) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let (dtype, rank) = (x.dtype(), x.shape().num_dims());
    let mean = mean_last_dim_primitive::<B>(upcast_primitive::<B>(x.clone()));
    let centred = B::float_sub(upcast_primitive::<B>(x), mean.clone());
    let var = mean_last_dim_primitive::<B>(B::float_mul(centred.clone(), centred.clone()));
    let rstd = B::float_recip(B::float_sqrt(B::float_add_scalar(var, eps.into())));
    let normed = downcast_primitive::<B>(B::float_mul(centred, rstd.clone()), dtype);
    let y = B::float_add(B::float_mul(normed, weight_row::<B>(weight, rank)), weight_row::<B>(bias, rank));
    (y, mean, rstd)
}

#[derive(Debug)]
struct LayerNormBackward;

impl<B: Backend> Backward<B, 3> for LayerNormBackward {
    /// x, weight, mean, rstd.
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (x, weight, mean, rstd) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let [node_x, node_w, node_b] = ops.parents;
        let (dtype, rank, len) = (x.dtype(), x.shape().num_dims(), weight.shape()[0]);
        let rows = grad.shape().num_elements() / len;
        let sum_rows = |t: FloatTensor<B>| B::float_reshape(B::float_sum_dim(B::float_reshape(t, Shape::new([rows, len])), 0), Shape::new([len]));
        // x̂ = (x − mean)·rstd, recomputed (one cast per use, see `rms_norm_composite`)
        let normed = |x: FloatTensor<B>| B::float_mul(B::float_sub(upcast_primitive::<B>(x), mean.clone()), rstd.clone());
        if let Some(node) = node_b {
            grads.register::<B>(node.id, sum_rows(grad.clone()));
        }
        if let Some(node) = node_w {
            let normed_low = downcast_primitive::<B>(normed(x.clone()), dtype);
            grads.register::<B>(node.id, sum_rows(B::float_mul(grad.clone(), normed_low)));
        }
        if let Some(node) = node_x {
            // dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂)), ĝ = grad ⊙ weight
            let g_w = B::float_mul(grad, weight_row::<B>(weight, rank));
            let mean_g = mean_last_dim_primitive::<B>(upcast_primitive::<B>(g_w.clone()));
            let mean_gx = mean_last_dim_primitive::<B>(B::float_mul(upcast_primitive::<B>(g_w.clone()), normed(x.clone())));
            let inner = B::float_sub(B::float_sub(upcast_primitive::<B>(g_w), mean_g), B::float_mul(normed(x), mean_gx));
            grads.register::<B>(node.id, downcast_primitive::<B>(B::float_mul(inner, rstd), dtype));
        }
    }
}

fn layer_norm_autodiff<B: Backend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: FloatTensor<Autodiff<B, C>>,
    eps: f64,
) -> FloatTensor<Autodiff<B, C>> {
    match LayerNormBackward.prepare::<C>([x.node.clone(), weight.node.clone(), bias.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (y, mean, rstd) = layer_norm_forward::<B>(x.primitive.clone(), weight.primitive.clone(), bias.primitive, eps);
            prep.finish((x.primitive, weight.primitive, mean, rstd), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(layer_norm_forward::<B>(x.primitive, weight.primitive, bias.primitive, eps).0),
    }
}

/// LLaMA's gated MLP activation `silu(gate) ⊙ up` (`silu(g) = g·sigmoid(g)`), in the inputs' dtype.
pub fn swiglu<B: Backend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    match registered::<B>("swiglu") {
        Some(ops) => Tensor::from_primitive(TensorPrimitive::Float((ops.swiglu)(gate.into_primitive().tensor(), up.into_primitive().tensor()))),
        None => burn::tensor::activation::silu(gate) * up,
    }
}

fn swiglu_forward<B: Backend>(gate: FloatTensor<B>, up: FloatTensor<B>) -> FloatTensor<B> {
    B::float_mul(B::float_mul(gate.clone(), B::sigmoid(gate)), up)
}

#[derive(Debug)]
struct SwigluBackward;

impl<B: Backend> Backward<B, 2> for SwigluBackward {
    /// gate, up.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (gate, up) = ops.state;
        let gate2 = gate.clone();
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            // d/dg = grad·up·(s + g·s·(1 − s)), s = sigmoid(g)
            |grad| {
                let s = B::sigmoid(gate.clone());
                let one_minus_s = B::float_add_scalar(B::float_neg(s.clone()), 1.0.into());
                let ds = B::float_add(s.clone(), B::float_mul(B::float_mul(gate, s), one_minus_s));
                B::float_mul(B::float_mul(grad, up), ds)
            },
            |grad| B::float_mul(grad, B::float_mul(gate2.clone(), B::sigmoid(gate2))),
        );
    }
}

fn swiglu_autodiff<B: Backend, C: CheckpointStrategy>(gate: FloatTensor<Autodiff<B, C>>, up: FloatTensor<Autodiff<B, C>>) -> FloatTensor<Autodiff<B, C>> {
    match SwigluBackward.prepare::<C>([gate.node.clone(), up.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((gate.primitive.clone(), up.primitive.clone()), swiglu_forward::<B>(gate.primitive, up.primitive)),
        OpsKind::UnTracked(prep) => prep.finish(swiglu_forward::<B>(gate.primitive, up.primitive)),
    }
}

/// Block `index` of `stacked: [N, a, b]` as `[a, b]` (a view, no copy). `selectors` is the
/// constant `[N, N]` identity (one per step, shared by every block). On backends with fused
/// operations the backward places the block's gradient as one broadcast product
/// `selectors[index] ⊙ grad` in the stack's shape, which burn-fusion joins with the addition
/// that accumulates the other blocks' gradients: one kernel per block where narrow's backward
/// takes three (zero fill, slice assignment, addition; 384 of a LLaMA-2-7B LoRTA step's ~4,200
/// kernels). Elsewhere it is `narrow` + `reshape`.
pub fn stacked_block<B: Backend>(stacked: Tensor<B, 3>, selectors: &Tensor<B, 2>, index: usize) -> Tensor<B, 2> {
    let [n, a, b] = stacked.dims();
    assert!(index < n && selectors.dims() == [n, n], "stacked_block: block {index} of {n}, selectors {:?}", selectors.dims());
    match registered::<B>("stacked_block") {
        Some(ops) => {
            let onehot = selectors.clone().narrow(0, index, 1).reshape([n, 1, 1]).into_primitive().tensor();
            let block = Block { axis: 0, index };
            Tensor::from_primitive(TensorPrimitive::Float((ops.stacked_block)(stacked.into_primitive().tensor(), onehot, block)))
        }
        None => stacked.narrow(0, index, 1).reshape([a, b]),
    }
}

/// Block `index` of the middle axis of `stacked: [n, k, w]` as `[n, w]` (columns
/// `index·w .. (index+1)·w` of the `[n, k·w]` rows, a strided view): LoRA's per-site slice of
/// its stacked projection, with [`stacked_block`]'s one-kernel backward (`selectors`: the
/// `[k, k]` identity). Elsewhere it is `slice`.
pub fn stacked_columns<B: Backend>(stacked: Tensor<B, 3>, selectors: &Tensor<B, 2>, index: usize) -> Tensor<B, 2> {
    let [n, k, w] = stacked.dims();
    assert!(index < k && selectors.dims() == [k, k], "stacked_columns: block {index} of {k}, selectors {:?}", selectors.dims());
    match registered::<B>("stacked_block") {
        Some(ops) => {
            let onehot = selectors.clone().narrow(0, index, 1).reshape([1, k, 1]).into_primitive().tensor();
            let block = Block { axis: 1, index };
            Tensor::from_primitive(TensorPrimitive::Float((ops.stacked_block)(stacked.into_primitive().tensor(), onehot, block)))
        }
        None => stacked.reshape([n, k * w]).slice([0..n, index * w..(index + 1) * w]),
    }
}

/// Which block of a stacked `[d0, d1, d2]` tensor: along axis 0 (`[d1, d2]`) or 1 (`[d0, d2]`).
#[derive(Clone, Copy, Debug)]
pub struct Block {
    axis: usize,
    index: usize,
}

fn stacked_block_forward<B: Backend>(stacked: FloatTensor<B>, block: Block) -> FloatTensor<B> {
    let stacked = Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(stacked));
    let [d0, d1, d2] = stacked.dims();
    let i = block.index;
    let out = match block.axis {
        0 => stacked.narrow(0, i, 1).reshape([d1, d2]),
        _ => stacked.reshape([d0, d1 * d2]).slice([0..d0, i * d2..(i + 1) * d2]),
    };
    out.into_primitive().tensor()
}

#[derive(Debug)]
struct StackedBlockBackward;

impl<B: Backend> Backward<B, 1> for StackedBlockBackward {
    /// The one-hot (the stack's shape with 1 on every axis but the block axis), the axis.
    type State = (FloatTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (onehot, axis) = ops.state;
        burn_autodiff::ops::unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            let [p, q] = [grad.shape()[0], grad.shape()[1]];
            let unit = if axis == 0 { [1, p, q] } else { [p, 1, q] };
            // broadcast straight into the stack's shape: no reshape between this product and
            // the accumulating addition, so the two fuse
            B::float_mul(onehot, B::float_reshape(grad, Shape::new(unit)))
        });
    }
}

fn stacked_block_autodiff<B: Backend, C: CheckpointStrategy>(
    stacked: FloatTensor<Autodiff<B, C>>,
    onehot: FloatTensor<Autodiff<B, C>>,
    block: Block,
) -> FloatTensor<Autodiff<B, C>> {
    match StackedBlockBackward.prepare::<C>([stacked.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((onehot.primitive, block.axis), stacked_block_forward::<B>(stacked.primitive, block)),
        OpsKind::UnTracked(prep) => prep.finish(stacked_block_forward::<B>(stacked.primitive, block)),
    }
}

/// `x·wᵀ` for `x: [n, in]` and `w: [out, in]` (PyTorch's `F.linear` without bias), the product
/// of [`crate::matmul::matmul`]. On backends with fused operations one autodiff node whose
/// backward forms `w`'s gradient as `gᵀ·x`, row-major like `w` itself: through the plain product
/// it is the transpose of `xᵀ·g`, a column-major view, and then LoRA's per-site rows of its
/// stacked `A` gradient are unaligned slices (a copy kernel each, 96 per LLaMA-2-7B LoRA step on
/// CUDA) and each `B` gradient needs a copy to be flattened by the optimizer. The forward is
/// [`crate::matmul::matmul`] (exact f32 where asked); the backward products are plain ones
/// ([`crate::shapes::product`]), as for every exact product (README, `--tf32`): exact ones there
/// cost RoBERTa-base's f32 LoRA step 3 ms (57.4 vs 54.7 ms, H200, measurements h200-2026-12-01-s18).
pub fn linear<B: Backend>(x: Tensor<B, 2>, w: Tensor<B, 2>) -> Tensor<B, 2> {
    match registered::<B>("linear") {
        Some(ops) => Tensor::from_primitive(TensorPrimitive::Float((ops.linear)(x.into_primitive().tensor(), w.into_primitive().tensor()))),
        None => crate::matmul::matmul(x, w.transpose()),
    }
}

fn float2<B: Backend>(x: FloatTensor<B>) -> Tensor<B, 2> {
    Tensor::from_primitive(TensorPrimitive::Float(x))
}

fn linear_forward<B: Backend>(x: FloatTensor<B>, w: FloatTensor<B>) -> FloatTensor<B> {
    crate::matmul::matmul(float2::<B>(x), float2::<B>(w).transpose()).into_primitive().tensor()
}

#[derive(Debug)]
struct LinearBackward;

impl<B: Backend> Backward<B, 2> for LinearBackward {
    /// `x` (kept where `w` needs a gradient) and `w` (kept where `x` needs one).
    type State = (Option<FloatTensor<B>>, Option<FloatTensor<B>>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (x, w) = ops.state;
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            |g| crate::shapes::product(float2::<B>(g), float2::<B>(w.expect("w kept for the gradient of x"))).into_primitive().tensor(),
            |g| crate::shapes::product(float2::<B>(g).transpose(), float2::<B>(x.expect("x kept for the gradient of w"))).into_primitive().tensor(),
        );
    }
}

fn linear_autodiff<B: Backend, C: CheckpointStrategy>(x: FloatTensor<Autodiff<B, C>>, w: FloatTensor<Autodiff<B, C>>) -> FloatTensor<Autodiff<B, C>> {
    let (x_tracked, w_tracked) = (x.is_tracked(), w.is_tracked());
    match LinearBackward.prepare::<C>([x.node.clone(), w.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let state = (w_tracked.then(|| x.primitive.clone()), x_tracked.then(|| w.primitive.clone()));
            prep.finish(state, linear_forward::<B>(x.primitive, w.primitive))
        }
        OpsKind::UnTracked(prep) => prep.finish(linear_forward::<B>(x.primitive, w.primitive)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, to_f64, TestAutodiff, TestBackend};
    use burn::tensor::Distribution;

    fn fused<const D: usize>(x: Tensor<TestAutodiff, D>, w: Tensor<TestAutodiff, 1>, eps: f64) -> Tensor<TestAutodiff, D> {
        let y = rms_norm_autodiff::<TestBackend, burn_autodiff::checkpoint::strategy::NoCheckpointing>(x.into_primitive().tensor(), w.into_primitive().tensor(), eps);
        Tensor::from_primitive(TensorPrimitive::Float(y))
    }

    /// Values and the gradients of x and of the weight (trainable under full fine-tuning) equal
    /// autodiff's through the composite; also with the weight frozen (no weight gradient asked).
    #[test]
    fn fused_rms_norm_equals_the_composite_in_value_and_gradients() {
        let dev = Default::default();
        for (dims, train_weight) in [([3, 5, 96], true), ([2, 4, 1024], true), ([2, 4, 1024], false)] {
            let x = Tensor::<TestAutodiff, 3>::random(dims, Distribution::Normal(0.5, 2.0), &dev).require_grad();
            let w = Tensor::<TestAutodiff, 1>::random([dims[2]], Distribution::Normal(1.0, 0.3), &dev);
            let w = if train_weight { w.require_grad() } else { w };
            let weights = Tensor::<TestAutodiff, 3>::random(dims, Distribution::Normal(0.0, 1.0), &dev);
            let a = fused(x.clone(), w.clone(), 1e-5);
            let b = rms_norm_composite(x.clone(), w.clone(), 1e-5);
            let what = format!("{dims:?} weight trained {train_weight}");
            assert_close(&to_f64(a.clone().inner()), &to_f64(b.clone().inner()), 1e-5, &format!("{what}: value"));
            let ga = (a * weights.clone()).sum().backward();
            let gb = (b * weights).sum().backward();
            assert_close(&to_f64(x.grad(&ga).unwrap()), &to_f64(x.grad(&gb).unwrap()), 1e-4, &format!("{what}: x gradient"));
            match (w.grad(&ga), w.grad(&gb)) {
                (Some(p), Some(q)) => assert_close(&to_f64(p), &to_f64(q), 1e-4, &format!("{what}: weight gradient")),
                (None, None) => assert!(!train_weight, "{what}: no weight gradient"),
                (p, q) => panic!("{what}: weight gradient fused {} vs composite {}", p.is_some(), q.is_some()),
            }
        }
    }

    /// Registration routes `rms_norm` of that backend (and its autodiff wrapper) to the fused op.
    /// (NdArray<f64>: no other test registers it.)
    #[test]
    fn registration_routes_the_backend_and_its_autodiff_wrapper() {
        type F64 = burn_ndarray::NdArray<f64>;
        assert!(!is_registered::<F64>() && !is_registered::<Autodiff<F64>>());
        register::<F64>();
        assert!(is_registered::<F64>() && is_registered::<Autodiff<F64>>());
        let dev = Default::default();
        let x = Tensor::<Autodiff<F64>, 2>::random([4, 8], Distribution::Normal(0.0, 1.0), &dev);
        let w = Tensor::<Autodiff<F64>, 1>::ones([8], &dev);
        let y = rms_norm(x.clone(), w.clone(), 1e-6);
        assert_close(&to_f64(y.inner()), &to_f64(rms_norm_composite(x, w, 1e-6).inner()), 1e-10, "routed value");
    }

    fn fused_attention(q: Tensor<TestAutodiff, 4>, k: Tensor<TestAutodiff, 4>, v: Tensor<TestAutodiff, 4>, mask: Option<Tensor<TestAutodiff, 4, Bool>>, masking: Masking) -> Tensor<TestAutodiff, 4> {
        let [b, h, sq, _] = q.dims();
        let sk = k.dims()[2];
        let mask = mask.map(|m| m.expand([b, h, sq, sk]).into_primitive());
        let out = attention_autodiff::<TestBackend, burn_autodiff::checkpoint::strategy::NoCheckpointing>(
            q.into_primitive().tensor(),
            k.into_primitive().tensor(),
            v.into_primitive().tensor(),
            mask,
            masking,
        );
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    /// Attention as one node equals autodiff through softmax(mask(q·kᵀ·s))·v: values and the
    /// gradients of q, k and v, with a causal mask and without; and only the asked gradients.
    #[test]
    fn fused_attention_equals_the_composite_in_value_and_gradients() {
        let dev = Default::default();
        let (b, h, sq, sk, dh) = (2, 3, 5, 5, 8);
        let masking = Masking { scale: 1.0 / (dh as f64).sqrt(), mask_value: -65504.0 };
        let causal: Vec<bool> = (0..sq * sk).map(|i| i % sk > i / sk).collect();
        let causal = Tensor::<TestAutodiff, 4, Bool>::from_data(burn::tensor::TensorData::new(causal, [1, 1, sq, sk]), &dev);
        for mask in [None, Some(causal)] {
            let q = Tensor::<TestAutodiff, 4>::random([b, h, sq, dh], Distribution::Normal(0.0, 1.0), &dev).require_grad();
            let k = Tensor::<TestAutodiff, 4>::random([b, h, sk, dh], Distribution::Normal(0.0, 1.0), &dev).require_grad();
            let v = Tensor::<TestAutodiff, 4>::random([b, h, sk, dh], Distribution::Normal(0.0, 1.0), &dev).require_grad();
            let weights = Tensor::<TestAutodiff, 4>::random([b, h, sq, dh], Distribution::Normal(0.0, 1.0), &dev);
            let scores = q.clone().matmul(k.clone().swap_dims(2, 3)) * masking.scale;
            let scores = match &mask {
                Some(m) => scores.mask_fill(m.clone().expand([b, h, sq, sk]), masking.mask_value),
                None => scores,
            };
            let reference = burn::tensor::activation::softmax(scores, 3).matmul(v.clone());
            let fused = fused_attention(q.clone(), k.clone(), v.clone(), mask.clone(), masking);
            let what = if mask.is_some() { "causal" } else { "unmasked" };
            assert_close(&to_f64(fused.clone().inner()), &to_f64(reference.clone().inner()), 1e-5, &format!("{what}: value"));
            let ga = (fused * weights.clone()).sum().backward();
            let gb = (reference * weights.clone()).sum().backward();
            for (name, t) in [("q", &q), ("k", &k), ("v", &v)] {
                assert_close(&to_f64(t.grad(&ga).unwrap()), &to_f64(t.grad(&gb).unwrap()), 1e-4, &format!("{what}: {name} gradient"));
            }
            // v untracked: its gradient is not formed, q's and k's still are
            let v_const = v.clone().detach().set_require_grad(false);
            let g = (fused_attention(q.clone(), k.clone(), v_const.clone(), mask.clone(), masking) * weights).sum().backward();
            let got = (v_const.grad(&g).is_some(), q.grad(&g).is_some(), k.grad(&g).is_some());
            assert_eq!(got, (false, true, true), "{what}: gradients of (v, q, k)");
        }
    }

    /// The update join as one node equals the casts and addition it replaces, in value and in
    /// both gradients (f32 base, f64 update: the dtype pair ndarray has).
    #[test]
    fn fused_add_update_equals_the_composite() {
        let dev = Default::default();
        let base = Tensor::<TestAutodiff, 2>::random([4, 6], Distribution::Normal(0.0, 1.0), &dev).require_grad();
        let update = Tensor::<TestAutodiff, 2>::random([4, 6], Distribution::Normal(0.0, 1.0), &dev).cast(FloatDType::F64).require_grad();
        let weights = Tensor::<TestAutodiff, 2>::random([4, 6], Distribution::Normal(0.0, 1.0), &dev);
        let fused = add_update_autodiff::<TestBackend, burn_autodiff::checkpoint::strategy::NoCheckpointing>(
            base.clone().into_primitive().tensor(),
            update.clone().into_primitive().tensor(),
        );
        let fused: Tensor<TestAutodiff, 2> = Tensor::from_primitive(TensorPrimitive::Float(fused));
        let composite = downcast(base.clone().cast(FloatDType::F64) + update.clone(), DType::F32);
        assert_eq!((fused.dtype(), composite.dtype()), (DType::F32, DType::F32));
        assert_close(&to_f64(fused.clone().inner()), &to_f64(composite.clone().inner()), 1e-7, "value");
        let ga = (fused * weights.clone()).sum().backward();
        let gb = (composite * weights).sum().backward();
        assert_close(&to_f64(base.grad(&ga).unwrap()), &to_f64(base.grad(&gb).unwrap()), 1e-7, "base gradient");
        let (ua, ub) = (update.grad(&ga).unwrap(), update.grad(&gb).unwrap());
        assert_eq!((ua.dtype(), ub.dtype()), (DType::F64, DType::F64), "update gradient dtype");
        assert_close(&to_f64(ua), &to_f64(ub), 1e-7, "update gradient");
    }

    /// A block of a stacked tensor through the node equals narrow + reshape, in value and in the
    /// gradient of the stack when several blocks (one twice) feed the loss.
    #[test]
    fn stacked_block_equals_narrow_in_value_and_gradient() {
        register::<TestBackend>();
        let dev = Default::default();
        let stacked = Tensor::<TestAutodiff, 3>::random([5, 3, 4], Distribution::Normal(0.0, 1.0), &dev).require_grad();
        let selectors = block_selectors::<TestAutodiff>(5, &dev, DType::F32).expect("registered");
        assert_close(&to_f64(selectors.clone()), &to_f64(Tensor::<TestAutodiff, 2>::eye(5, &dev)), 0.0, "selectors");
        // kept once made: the same identity again, another size its own
        let again = block_selectors::<TestAutodiff>(5, &dev, DType::F32).expect("registered");
        assert_close(&to_f64(again), &to_f64(Tensor::<TestAutodiff, 2>::eye(5, &dev)), 0.0, "selectors again");
        let three = block_selectors::<TestAutodiff>(3, &dev, DType::F32).expect("registered");
        assert_close(&to_f64(three), &to_f64(Tensor::<TestAutodiff, 2>::eye(3, &dev)), 0.0, "3x3 selectors");
        let weights: Vec<_> = (0..4).map(|_| Tensor::<TestAutodiff, 2>::random([3, 4], Distribution::Normal(0.0, 1.0), &dev)).collect();
        let picks = [4usize, 1, 4, 0];
        let fused = picks.iter().zip(&weights).map(|(&i, w)| (stacked_block(stacked.clone(), &selectors, i) * w.clone()).sum()).reduce(|a, b| a + b).unwrap();
        let plain = picks.iter().zip(&weights).map(|(&i, w)| (stacked.clone().narrow(0, i, 1).reshape([3, 4]) * w.clone()).sum()).reduce(|a, b| a + b).unwrap();
        assert_close(&to_f64(stacked_block(stacked.clone(), &selectors, 2).inner()), &to_f64(stacked.clone().narrow(0, 2, 1).reshape([3, 4]).inner()), 0.0, "value");
        let (ga, gb) = (fused.backward(), plain.backward());
        let (ga, gb) = (stacked.grad(&ga).unwrap(), stacked.grad(&gb).unwrap());
        assert_close(&to_f64(ga.clone()), &to_f64(gb), 1e-12, "gradient");
        // blocks 2 and 3 feed nothing: their gradient is exactly zero
        assert!(to_f64(ga.narrow(0, 2, 2)).iter().all(|v| *v == 0.0));

        // columns of a [rows, k·w] projection (LoRA's stacked sites)
        let z = Tensor::<TestAutodiff, 2>::random([6, 3 * 2], Distribution::Normal(0.0, 1.0), &dev).require_grad();
        let selectors = Tensor::<TestAutodiff, 2>::eye(3, &dev);
        let weights: Vec<_> = (0..3).map(|_| Tensor::<TestAutodiff, 2>::random([6, 2], Distribution::Normal(0.0, 1.0), &dev)).collect();
        let picks = [2usize, 0, 2];
        let z3 = || z.clone().reshape([6, 3, 2]);
        let fused = picks.iter().zip(&weights).map(|(&i, w)| (stacked_columns(z3(), &selectors, i) * w.clone()).sum()).reduce(|a, b| a + b).unwrap();
        let plain = picks.iter().zip(&weights).map(|(&i, w)| (z.clone().slice([0..6, 2 * i..2 * i + 2]) * w.clone()).sum()).reduce(|a, b| a + b).unwrap();
        assert_close(&to_f64(stacked_columns(z3(), &selectors, 1).inner()), &to_f64(z.clone().slice([0..6, 2..4]).inner()), 0.0, "column value");
        let (ga, gb) = (fused.backward(), plain.backward());
        let (ga, gb) = (z.grad(&ga).unwrap(), z.grad(&gb).unwrap());
        assert_close(&to_f64(ga.clone()), &to_f64(gb), 1e-12, "column gradient");
        assert!(to_f64(ga.slice([0..6, 2..4])).iter().all(|v| *v == 0.0));
    }

    #[test]
    fn switch_spec_picks_operations() {
        assert!(op_enabled(None, "attention") && op_enabled(Some("all"), "rms_norm"));
        assert!(!op_enabled(Some("0"), "rms_norm") && !op_enabled(Some("none"), "attention"));
        assert!(op_enabled(Some("rms_norm, add_update"), "add_update") && !op_enabled(Some("rms_norm,add_update"), "attention"));
    }

    /// LLaMA's attention block as one node (heads split from rows, RoPE, attention, heads
    /// merged) equals autodiff through the composite, values and the gradients of q, k, v.
    #[test]
    fn fused_rope_attention_equals_the_composite() {
        let dev = Default::default();
        let (b, h, s, dh) = (2, 3, 5, 8);
        let masking = Masking { scale: 1.0 / (dh as f64).sqrt(), mask_value: -65504.0 };
        let rows = || Tensor::<TestAutodiff, 2>::random([b * s, h * dh], Distribution::Normal(0.0, 1.0), &dev).require_grad();
        let (q, k, v) = (rows(), rows(), rows());
        // RoPE tables: both halves the same angles, the sine's first half negated
        let angles = Tensor::<TestAutodiff, 4>::random([1, 1, s, dh / 2], Distribution::Uniform(-3.0, 3.0), &dev);
        let cos = Tensor::cat(vec![angles.clone().cos(), angles.clone().cos()], 3);
        let sin = Tensor::cat(vec![-angles.clone().sin(), angles.sin()], 3);
        let causal: Vec<bool> = (0..s * s).map(|i| i % s > i / s).collect();
        let mask = Tensor::<TestAutodiff, 4, Bool>::from_data(burn::tensor::TensorData::new(causal, [1, 1, s, s]), &dev);
        let weights = Tensor::<TestAutodiff, 2>::random([b * s, h * dh], Distribution::Normal(0.0, 1.0), &dev);
        // composite: split heads, rotate (swap of halves as a flip), softmax attention, merge
        let split = |t: Tensor<TestAutodiff, 2>| t.reshape([b, s, h, dh]).swap_dims(1, 2);
        let rotate = |x: Tensor<TestAutodiff, 4>| {
            let swapped = x.clone().reshape([b, h, s, 2, dh / 2]).flip([3]).reshape([b, h, s, dh]);
            x * cos.clone() + swapped * sin.clone()
        };
        let scores = rotate(split(q.clone())).matmul(rotate(split(k.clone())).swap_dims(2, 3)) * masking.scale;
        let scores = scores.mask_fill(mask.clone().expand([b, h, s, s]), masking.mask_value);
        let reference = burn::tensor::activation::softmax(scores, 3).matmul(split(v.clone())).swap_dims(1, 2).reshape([b * s, h * dh]);
        let layout = HeadLayout { batch: b, seq: s, heads: h, head_dim: dh };
        let mask_heads = Some(mask.expand([b, h, s, s]).into_primitive());
        let prim = |t: Tensor<TestAutodiff, 2>| t.into_primitive().tensor();
        let fused = rope_attention_autodiff::<TestBackend, burn_autodiff::checkpoint::strategy::NoCheckpointing>(
            [prim(q.clone()), prim(k.clone()), prim(v.clone())],
            [cos.clone().into_primitive().tensor(), sin.clone().into_primitive().tensor()],
            mask_heads,
            masking,
            layout,
        );
        let fused: Tensor<TestAutodiff, 2> = Tensor::from_primitive(TensorPrimitive::Float(fused));
        assert_close(&to_f64(fused.clone().inner()), &to_f64(reference.clone().inner()), 1e-5, "value");
        let ga = (fused * weights.clone()).sum().backward();
        let gb = (reference * weights).sum().backward();
        for (name, t) in [("q", &q), ("k", &k), ("v", &v)] {
            assert_close(&to_f64(t.grad(&ga).unwrap()), &to_f64(t.grad(&gb).unwrap()), 1e-4, &format!("{name} gradient"));
        }
    }

    /// LayerNorm as one node equals the composite: value and the gradients of x, weight, bias.
    #[test]
    fn fused_layer_norm_equals_the_composite() {
        let dev = Default::default();
        for dims in [[3, 5, 96], [2, 4, 1024]] {
            let x = Tensor::<TestAutodiff, 3>::random(dims, Distribution::Normal(0.5, 2.0), &dev).require_grad();
            let w = Tensor::<TestAutodiff, 1>::random([dims[2]], Distribution::Normal(1.0, 0.3), &dev).require_grad();
            let b = Tensor::<TestAutodiff, 1>::random([dims[2]], Distribution::Normal(0.0, 0.3), &dev).require_grad();
            let weights = Tensor::<TestAutodiff, 3>::random(dims, Distribution::Normal(0.0, 1.0), &dev);
            let fused = layer_norm_autodiff::<TestBackend, burn_autodiff::checkpoint::strategy::NoCheckpointing>(
                x.clone().into_primitive().tensor(),
                w.clone().into_primitive().tensor(),
                b.clone().into_primitive().tensor(),
                1e-5,
            );
            let fused: Tensor<TestAutodiff, 3> = Tensor::from_primitive(TensorPrimitive::Float(fused));
            let composite = layer_norm_composite(x.clone(), w.clone(), b.clone(), 1e-5);
            assert_close(&to_f64(fused.clone().inner()), &to_f64(composite.clone().inner()), 1e-5, &format!("{dims:?} value"));
            let ga = (fused * weights.clone()).sum().backward();
            let gb = (composite * weights).sum().backward();
            for (name, a, c) in [("x", x.grad(&ga), x.grad(&gb))] {
                assert_close(&to_f64(a.unwrap()), &to_f64(c.unwrap()), 1e-4, &format!("{dims:?} {name} gradient"));
            }
            for (name, t) in [("weight", &w), ("bias", &b)] {
                assert_close(&to_f64(t.grad(&ga).unwrap()), &to_f64(t.grad(&gb).unwrap()), 1e-4, &format!("{dims:?} {name} gradient"));
            }
        }
    }

    /// silu(gate)·up as one node equals the composite, value and both gradients.
    #[test]
    fn fused_swiglu_equals_the_composite() {
        let dev = Default::default();
        let gate = Tensor::<TestAutodiff, 2>::random([6, 10], Distribution::Normal(0.0, 3.0), &dev).require_grad();
        let up = Tensor::<TestAutodiff, 2>::random([6, 10], Distribution::Normal(0.0, 1.0), &dev).require_grad();
        let weights = Tensor::<TestAutodiff, 2>::random([6, 10], Distribution::Normal(0.0, 1.0), &dev);
        let fused = swiglu_autodiff::<TestBackend, burn_autodiff::checkpoint::strategy::NoCheckpointing>(gate.clone().into_primitive().tensor(), up.clone().into_primitive().tensor());
        let fused: Tensor<TestAutodiff, 2> = Tensor::from_primitive(TensorPrimitive::Float(fused));
        let composite = burn::tensor::activation::silu(gate.clone()) * up.clone();
        assert_close(&to_f64(fused.clone().inner()), &to_f64(composite.clone().inner()), 1e-6, "value");
        let ga = (fused * weights.clone()).sum().backward();
        let gb = (composite * weights).sum().backward();
        for (name, t) in [("gate", &gate), ("up", &up)] {
            assert_close(&to_f64(t.grad(&ga).unwrap()), &to_f64(t.grad(&gb).unwrap()), 1e-5, &format!("{name} gradient"));
        }
    }

    fn fused_linear(x: Tensor<TestAutodiff, 2>, w: Tensor<TestAutodiff, 2>) -> Tensor<TestAutodiff, 2> {
        let y = linear_autodiff::<TestBackend, burn_autodiff::checkpoint::strategy::NoCheckpointing>(x.into_primitive().tensor(), w.into_primitive().tensor());
        Tensor::from_primitive(TensorPrimitive::Float(y))
    }

    /// `x·wᵀ` as one node equals autodiff through `x.matmul(w.transpose())`: value and the
    /// gradients of `x` and `w`, each asked alone and both together (LoRA's `A` takes a tracked
    /// input, the first layer's an untracked one; a frozen `w` asks none).
    #[test]
    fn fused_linear_equals_the_plain_product_in_value_and_gradients() {
        let dev = Default::default();
        for (x_grad, w_grad) in [(true, true), (false, true), (true, false)] {
            let x = Tensor::<TestAutodiff, 2>::random([6, 5], Distribution::Normal(0.0, 1.0), &dev);
            let w = Tensor::<TestAutodiff, 2>::random([3, 5], Distribution::Normal(0.0, 1.0), &dev);
            let x = if x_grad { x.require_grad() } else { x };
            let w = if w_grad { w.require_grad() } else { w };
            let weights = Tensor::<TestAutodiff, 2>::random([6, 3], Distribution::Normal(0.0, 1.0), &dev);
            let a = fused_linear(x.clone(), w.clone());
            let b = x.clone().matmul(w.clone().transpose());
            let what = format!("x grad {x_grad}, w grad {w_grad}");
            assert_close(&to_f64(a.clone().inner()), &to_f64(b.clone().inner()), 1e-6, &format!("{what}: value"));
            let ga = (a * weights.clone()).sum().backward();
            let gb = (b * weights).sum().backward();
            for (name, t, asked) in [("x", &x, x_grad), ("w", &w, w_grad)] {
                match (t.grad(&ga), t.grad(&gb)) {
                    (Some(p), Some(q)) => assert_close(&to_f64(p), &to_f64(q), 1e-6, &format!("{what}: {name} gradient")),
                    (None, None) => assert!(!asked, "{what}: no {name} gradient"),
                    (p, q) => panic!("{what}: {name} gradient fused {} vs plain {}", p.is_some(), q.is_some()),
                }
            }
        }
    }
}
