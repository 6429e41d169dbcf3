//! What is trained: an adapter method at the Q/K/V/O (and IA3 feed-forward) sites, prefix
//! tuning, Houlsby bottleneck adapters, full fine-tuning, and the task head.
//!
//! Base weights are frozen (plain tensors without autodiff tracking: no gradient, no optimizer
//! state) unless [`Tuning::full`] is set. The trainable parameters are exactly the adapter set,
//! the prefixes, the Houlsby adapters and the head's trainable part (everything for full
//! fine-tuning); `trainable_params()` of each model counts them.
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, DType, Tensor};
use lorta_core::init::{seeded, Init as HostInit};
use lorta_core::{AdapterConfig, AdapterSet, ModelShape};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::nn::{make_param, matmul, HfLinear};

/// How the task head is trained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeadTuning {
    /// Head weights frozen (inference, or probing a fixed head).
    Frozen,
    /// Every head weight trainable (the usual GLUE recipe).
    #[default]
    Full,
    /// "LoRTA+LoRA" (the paper's Table 1): the head's output projection is trainable, its
    /// dense layer (RoBERTa `classifier.dense`, BERT `pooler.dense`) stays frozen and is adapted
    /// by a LoRA update of rank `r` (`ΔW = B·A`, `A: [r, d]` kaiming-uniform, `B: [d, r]` zero,
    /// scaling α/r = 1).
    Lora { r: usize },
}

/// Which parameters a model trains. `Tuning::default()` freezes everything except a full head.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// Adapter method at the attention (and IA3 feed-forward) sites, initialised fresh.
    pub adapter: Option<AdapterConfig>,
    /// Prefix tuning: `ℓ` trainable key and value vectors per layer (2·L·ℓ·d_kv parameters).
    pub prefix_len: Option<usize>,
    /// Houlsby adapters of bottleneck width `m` after attention and after the feed-forward block.
    pub houlsby: Option<usize>,
    /// Full fine-tuning: every base weight trainable.
    pub full: bool,
    pub head: HeadTuning,
    /// Seed of the host-side initialisers of adapters, prefixes, Houlsby adapters and new heads.
    pub seed: u64,
    /// Dropout probability replacing every one of the checkpoint's (`None`: the checkpoint's
    /// config.json values). Active only in training, see [`crate::dropout`].
    #[serde(default)]
    pub dropout: Option<f64>,
    /// Token positions under prefix tuning (PEFT's convention by default).
    #[serde(default)]
    pub prefix_positions: PrefixPositions,
    /// Mixed precision: the dtype of the fresh adapter set and of the task head when it differs
    /// from the compute dtype (f32 adapters and head on a bf16/f16 base, as PEFT's
    /// `autocast_adapter_dtype` does). `None`: everything in the compute dtype.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trainable_dtype: Option<DType>,
}

/// Where the tokens' positions start when `prefix_len = ℓ` key/value prefixes are prepended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrefixPositions {
    /// As PEFT: the prefix acts as ℓ cached past tokens, so the first real token is at position
    /// ℓ (RoPE angle ℓ in LLaMA, absolute position embedding ℓ in BERT; RoBERTa's padding-aware
    /// ids shift by ℓ too).
    #[default]
    AfterPrefix,
    /// Positions start at 0 as without a prefix.
    FromZero,
}

impl Tuning {
    /// Everything frozen (inference).
    pub fn frozen() -> Self {
        Tuning { head: HeadTuning::Frozen, ..Default::default() }
    }
    /// A fresh adapter and a trainable head.
    pub fn adapter(config: AdapterConfig) -> Self {
        Tuning { adapter: Some(config), ..Default::default() }
    }
    pub fn full_finetuning() -> Self {
        Tuning { full: true, ..Default::default() }
    }
    pub fn with_head(mut self, head: HeadTuning) -> Self {
        self.head = head;
        self
    }
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// The fresh adapter set, cast to the compute dtype (or to [`Self::trainable_dtype`]).
    pub fn init_adapter<B: Backend>(&self, shape: &ModelShape, dtype: DType, device: &B::Device) -> Result<Option<AdapterSet<B>>> {
        match &self.adapter {
            None => Ok(None),
            Some(c) => Ok(Some(cast_module(c.init::<B>(shape, self.seed, device)?, self.trainable_dtype.unwrap_or(dtype)))),
        }
    }
    pub fn with_trainable_dtype(mut self, dtype: Option<DType>) -> Self {
        self.trainable_dtype = dtype;
        self
    }
}

/// Casts every float parameter of a module (keeping ids and autodiff flags).
pub fn cast_module<B: Backend, M: Module<B>>(module: M, dtype: DType) -> M {
    struct Caster(DType);
    impl<B: Backend> burn::module::ModuleMapper<B> for Caster {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            let tensor = if tensor.dtype() == self.0 {
                tensor
            } else {
                // a fresh leaf through the host: on an autodiff backend a cast of a tracked tensor
                // is not a leaf, and only leaves can be marked as requiring gradients (burn
                // panics otherwise). Adapters are small; this runs once at load time.
                let grad = tensor.is_require_grad();
                let device = tensor.device();
                let data = tensor.into_data().convert_dtype(self.0);
                Tensor::from_data(data, (&device, self.0)).set_require_grad(grad)
            };
            Param::from_mapped_value(id, tensor, mapper)
        }
    }
    if dtype == DType::F32 {
        return module;
    }
    module.map(&mut Caster(dtype))
}

/// Host-seeded trainable tensor (small modules only: prefixes, Houlsby, head LoRA).
pub(crate) fn host_param<B: Backend, const D: usize>(
    init: HostInit,
    shape: [usize; D],
    rng: &mut StdRng,
    dtype: DType,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    let t: Tensor<B, D> = init.tensor(shape, rng, device);
    make_param(crate::nn::downcast(t, dtype), true)
}

/// Per-layer learned key and value prefixes, `[ℓ, d_kv]` each, prepended to the attention's
/// (post-RoPE) keys and values and never masked. Initialised N(0, 0.02²).
#[derive(Module, Debug)]
pub struct Prefix<B: Backend> {
    pub keys: Param<Tensor<B, 2>>,
    pub values: Param<Tensor<B, 2>>,
}

impl<B: Backend> Prefix<B> {
    pub fn init(len: usize, d_kv: usize, rng: &mut StdRng, dtype: DType, device: &B::Device) -> Self {
        Prefix {
            keys: host_param(HostInit::Normal { std: 0.02 }, [len, d_kv], rng, dtype, device),
            values: host_param(HostInit::Normal { std: 0.02 }, [len, d_kv], rng, dtype, device),
        }
    }
    pub fn len(&self) -> usize {
        self.keys.val().dims()[0]
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `(keys, values)` as `[batch, kv_heads, ℓ, head_dim]`.
    pub fn heads(&self, batch: usize, kv_heads: usize) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let split = |t: Tensor<B, 2>| {
            let [l, d] = t.dims();
            t.reshape([1, l, kv_heads, d / kv_heads]).swap_dims(1, 2).expand([batch, kv_heads, l, d / kv_heads])
        };
        (split(self.keys.val()), split(self.values.val()))
    }
}

/// Houlsby bottleneck adapter: `x + W_up·gelu(W_down·x + b_down) + b_up`; `W_down`
/// kaiming-uniform, up-projection zero-initialised (the block starts as the identity).
#[derive(Module, Debug)]
pub struct Houlsby<B: Backend> {
    pub down: HfLinear<B>,
    pub up: HfLinear<B>,
}

impl<B: Backend> Houlsby<B> {
    pub fn init(d: usize, m: usize, rng: &mut StdRng, dtype: DType, device: &B::Device) -> Self {
        let down = HfLinear {
            weight: host_param(HostInit::kaiming_sqrt5(d), [m, d], rng, dtype, device),
            bias: Some(host_param(HostInit::Zeros, [m], rng, dtype, device)),
        };
        let up = HfLinear {
            weight: host_param(HostInit::Zeros, [d, m], rng, dtype, device),
            bias: Some(host_param(HostInit::Zeros, [d], rng, dtype, device)),
        };
        Houlsby { down, up }
    }
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = crate::nn::gelu_erf(self.down.forward(x.clone()));
        x + self.up.forward(h)
    }
}

/// A dense layer of the task head: frozen weight plus an optional trainable LoRA update
/// (see [`HeadTuning::Lora`]), or fully trainable / fully frozen.
#[derive(Module, Debug)]
pub struct HeadDense<B: Backend> {
    pub base: HfLinear<B>,
    pub lora_a: Option<Param<Tensor<B, 2>>>,
    pub lora_b: Option<Param<Tensor<B, 2>>>,
}

impl<B: Backend> HeadDense<B> {
    pub fn new(base: HfLinear<B>, head: HeadTuning, rng: &mut StdRng, dtype: DType, device: &B::Device) -> Self {
        match head {
            HeadTuning::Lora { r } => {
                let (d_in, d_out) = (base.d_in(), base.d_out());
                HeadDense {
                    base,
                    lora_a: Some(host_param(HostInit::kaiming_sqrt5(d_in), [r, d_in], rng, dtype, device)),
                    lora_b: Some(host_param(HostInit::Zeros, [d_out, r], rng, dtype, device)),
                }
            }
            _ => HeadDense { base, lora_a: None, lora_b: None },
        }
    }
    pub fn forward2(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let y = self.base.forward2(x.clone());
        match (&self.lora_a, &self.lora_b) {
            (Some(a), Some(b)) => y + matmul(matmul(x, a.val().transpose()), b.val().transpose()),
            _ => y,
        }
    }
    /// The dense weight with the LoRA update merged.
    pub fn merged_weight(&self) -> Tensor<B, 2> {
        let w = self.base.weight.val();
        match (&self.lora_a, &self.lora_b) {
            (Some(a), Some(b)) => w + matmul(b.val(), a.val()),
            _ => w,
        }
    }
    pub fn trainable(&self, head: HeadTuning) -> usize {
        match head {
            HeadTuning::Frozen => 0,
            HeadTuning::Full => self.base.num_params(),
            HeadTuning::Lora { .. } => self.lora_a.num_params() + self.lora_b.num_params(),
        }
    }
}

/// Seeded host RNG for the small trainable modules of a model (offset from the adapter seed).
pub(crate) fn module_rng(tuning: &Tuning) -> StdRng {
    seeded(tuning.seed.wrapping_add(0x5eed_0001))
}

#[cfg(test)]
mod cast_tests {
    use super::*;

    type AB = burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>;

    /// Casting a trainable module on an autodiff backend keeps its parameters trainable leaves
    /// (this panicked before: casts of tracked tensors are not leaves).
    #[test]
    fn cast_module_keeps_trainable_leaves() {
        let cfg = lorta_core::AdapterConfig::default_for(lorta_core::Method::Lorta, 2, &lorta_core::MatrixKind::ATTENTION);
        let set = cfg.init::<AB>(&ModelShape::new(8, 2, 1, 8), 0, &Default::default()).unwrap();
        let set = cast_module(set, DType::F64);
        let lorta_core::AdapterSet::Lorta(l) = &set else { panic!() };
        let f = l.groups[0].factors[0].val();
        assert_eq!(f.dtype(), DType::F64);
        let grads = (f.clone() * 2.0).sum().backward();
        assert!(f.grad(&grads).is_some(), "cast parameter must still receive gradients");
    }
}
