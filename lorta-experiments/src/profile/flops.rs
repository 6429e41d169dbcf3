//! Analytic FLOP / MAC counts of a LLaMA training step with adapters on Q, K, V, O.
//!
//! Conventions (documented in the table header):
//! - MACs count multiply-accumulates of matrix products; FLOPs = 2·MACs. Elementwise ops,
//!   norms, softmax and RoPE are left out (they are O(T·d), not O(T·d²)).
//! - Attention scores and the value product are counted for the full T×T square (the kernels
//!   compute it; the causal mask halves the useful part).
//! - Training step = forward + backward. Frozen base matmuls need only the input gradient in the
//!   backward (1× their forward MACs); the adapter's matmuls need input and weight gradients (2×).
//!   The optimizer's elementwise update is not counted.
use lorta_core::{AdapterConfig, MatrixKind, ModelShape};
use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StepCost {
    pub forward_macs: u64,
    pub step_macs: u64,
    pub forward_flops: u64,
    pub step_flops: u64,
}

/// MACs of the adapter's forward at one site for `tokens` rows.
pub fn adapter_site_macs(config: &AdapterConfig, shape: &ModelShape, kind: MatrixKind, tokens: u64) -> u64 {
    let (fi, fo) = shape.dims(kind);
    let (fi, fo) = (fi as u64, fo as u64);
    let r = config.rank().unwrap_or(0) as u64;
    let h = shape.heads as u64;
    match config {
        // x·Aᵀ then ·Bᵀ
        AdapterConfig::Lora(_) | AdapterConfig::Vera(_) => tokens * r * (fi + fo),
        // contract the head dim with B (T·d·r), weight heads by C_h (T·h·r), then ·Aᵀ (T·r·d)
        AdapterConfig::Lorta(_) => tokens * (fi * r + h * r + r * fo),
        AdapterConfig::FactTt(_) | AdapterConfig::FactTk(_) | AdapterConfig::Lotr(_) => tokens * (fi * r + r * r + r * fo),
        // TT contractions are small; count the equivalent dense-rank work
        AdapterConfig::LorettaRep(_) => tokens * r * (fi + fo),
        AdapterConfig::Ia3(_) => 0,
    }
}

/// Cost of one training step of a LLaMA model with `config` adapters (or none).
pub fn llama_step(
    shape: &ModelShape,
    vocab: usize,
    batch: usize,
    seq: usize,
    config: Option<&AdapterConfig>,
) -> StepCost {
    let t = (batch * seq) as u64;
    let (d, f, v) = (shape.hidden as u64, shape.intermediate as u64, vocab as u64);
    let q = (shape.heads * shape.head_dim) as u64;
    let kv = (shape.kv_heads * shape.head_dim) as u64;
    let per_layer_proj = t * (d * q + 2 * d * kv + q * d);
    let per_layer_attn = 2 * (batch as u64) * (shape.heads as u64) * (seq as u64) * (seq as u64) * (shape.head_dim as u64);
    let per_layer_mlp = 3 * t * d * f;
    let base = shape.layers as u64 * (per_layer_proj + per_layer_attn + per_layer_mlp) + t * d * v;
    let adapter: u64 = match config {
        None => 0,
        Some(c) => (0..shape.layers).map(|_| c.targets().iter().map(|&k| adapter_site_macs(c, shape, k, t)).sum::<u64>()).sum(),
    };
    let forward = base + adapter;
    // backward: base input-grads only (the attention core has two operand grads: 2×)
    let backward_base = base + shape.layers as u64 * per_layer_attn;
    let step = forward + backward_base + 2 * adapter;
    StepCost { forward_macs: forward, step_macs: step, forward_flops: 2 * forward, step_flops: 2 * step }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lorta_core::Method;

    #[test]
    fn lora_and_lorta_cost_the_same_order_and_base_dominates() {
        let s = ModelShape::llama2_7b();
        let lora = AdapterConfig::default_for(Method::Lora, 4, &MatrixKind::ATTENTION);
        let lorta = AdapterConfig::default_for(Method::Lorta, 4, &MatrixKind::ATTENTION);
        let base = llama_step(&s, 32000, 1, 128, None);
        let a = llama_step(&s, 32000, 1, 128, Some(&lora));
        let b = llama_step(&s, 32000, 1, 128, Some(&lorta));
        // hand count of the base forward: 32·(128·4·4096² + 2·32·128²·128 + 3·128·4096·11008) + 128·4096·32000
        let hand: u64 = 32 * (128 * 4 * 4096 * 4096 + 2 * 32 * 128 * 128 * 128 + 3 * 128 * 4096 * 11008) + 128 * 4096 * 32000;
        assert_eq!(base.forward_macs, hand);
        // LoRA r=4 on q,k,v,o: 32 layers · 4 sites · 128 tokens · 4 · (4096 + 4096)
        assert_eq!(a.forward_macs - base.forward_macs, 32 * 4 * 128 * 4 * 8192);
        // LoRTA adds the head weighting T·h·r per site on top of LoRA's count
        assert_eq!(b.forward_macs - a.forward_macs, 32 * 4 * 128 * 32 * 4);
        assert_eq!(a.forward_flops, 2 * a.forward_macs);
    }
}
