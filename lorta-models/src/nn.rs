//! Building blocks shared by the architectures: linear maps in Hugging Face layout, norms,
//! activations, masked attention, and the [`Builder`] that creates every weight either from a
//! checkpoint or at random (on device), frozen or trainable.
//!
//! Linear weights keep PyTorch's `[out, in]` layout (`y = x·Wᵀ + b`), so checkpoints, PEFT
//! adapters (whose `merge_weight`/`delta_weight` use the same layout) and merged outputs need no
//! transposes.
use burn::module::{Module, Param, ParamId};
use burn::tensor::activation::{gelu_approximate, relu, silu, softmax};
use burn::tensor::{backend::Backend, Bool, DType, Distribution, Tensor, TensorData};
use lorta_core::{AdapterStep, Site};

use crate::error::Result;
use crate::weights::Weights;

/// Score given to masked attention positions: finite and representable in f16, so a fully
/// masked row (left padding) gives a uniform distribution instead of NaN.
pub const MASK_VALUE: f32 = -65504.0;

/// Std of the normal used for random weights (HF's `initializer_range` default).
pub const DEFAULT_INIT_STD: f64 = 0.02;

/// Wraps a tensor as a parameter; frozen ones are not tracked by autodiff, so they get no
/// gradient and no optimizer state.
pub fn make_param<B: Backend, const D: usize>(t: Tensor<B, D>, trainable: bool) -> Param<Tensor<B, D>> {
    if trainable {
        Param::initialized(ParamId::new(), t.require_grad())
    } else {
        Param::initialized(ParamId::new(), t.set_require_grad(false))
    }
}

/// Runs `build` (the creation of a model's weights) with the device allocator in persistent
/// mode. On CubeCL backends every weight then gets a buffer of its own outside the sliced pools
/// that serve activations and gradients; otherwise each of the thousands of allocations of a
/// training step walks (and coalesces) every page of those pools, pages full of frozen weights
/// included (a quarter of the CUDA device thread's time in a LLaMA-2-7B step: `perf`, H200,
/// session 13). The sync inside makes burn-fusion's lazily queued creations run before the
/// allocator switches back. Other backends just run `build`; `LORTA_PERSISTENT_WEIGHTS=0` turns
/// it off (A/B measurements).
pub fn persistent_weights<B: Backend, I: Send, T: Send>(device: &B::Device, input: I, build: impl Fn(I) -> Result<T> + Send) -> Result<T> {
    if std::env::var("LORTA_PERSISTENT_WEIGHTS").is_ok_and(|v| v.trim() == "0") {
        return build(input);
    }
    B::memory_persistent_allocations(device, input, move |input| {
        let built = build(input)?;
        B::sync(device).map_err(|e| crate::error::ModelError::device(format!("sync after building the weights failed: {e:?}")))?;
        Ok(built)
    })
}

/// How a weight is initialised when there is no checkpoint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Normal(f64),
    Ones,
    Zeros,
}

/// Creates model weights from a checkpoint ([`Weights`]) or at random, in the compute dtype.
pub struct Builder<'a, B: Backend> {
    pub weights: Option<&'a mut Weights>,
    pub dtype: DType,
    pub device: B::Device,
    pub init_std: f64,
}

impl<'a, B: Backend> Builder<'a, B> {
    pub fn checkpoint(weights: &'a mut Weights, dtype: DType, device: &B::Device) -> Self {
        Builder { weights: Some(weights), dtype, device: device.clone(), init_std: DEFAULT_INIT_STD }
    }
    pub fn random(dtype: DType, device: &B::Device) -> Self {
        Builder { weights: None, dtype, device: device.clone(), init_std: DEFAULT_INIT_STD }
    }
    pub fn is_random(&self) -> bool {
        self.weights.is_none()
    }
    /// Whether the checkpoint holds `name` (always false for random weights).
    pub fn has(&self, name: &str) -> bool {
        self.weights.as_ref().is_some_and(|w| w.contains(name))
    }

    pub fn random_tensor<const D: usize>(&self, shape: [usize; D], init: Init) -> Tensor<B, D> {
        let opts = (&self.device, self.dtype);
        match init {
            Init::Normal(std) => Tensor::random(shape, Distribution::Normal(0.0, std), opts),
            Init::Ones => Tensor::ones(shape, opts),
            Init::Zeros => Tensor::zeros(shape, opts),
        }
    }

    /// `name` from the checkpoint (shape-checked), or a fresh tensor drawn from `init`.
    pub fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D], init: Init) -> Result<Tensor<B, D>> {
        match self.weights.as_mut() {
            Some(w) => {
                let data = w.take(name, &shape)?;
                Ok(Tensor::from_data(data, (&self.device, self.dtype)))
            }
            None => Ok(self.random_tensor(shape, init)),
        }
    }

    pub fn param<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        init: Init,
        trainable: bool,
    ) -> Result<Param<Tensor<B, D>>> {
        Ok(make_param(self.tensor(name, shape, init)?, trainable))
    }

    /// `{prefix}.weight` `[out, in]` and optionally `{prefix}.bias`.
    pub fn linear(&mut self, prefix: &str, d_in: usize, d_out: usize, bias: bool, trainable: bool) -> Result<HfLinear<B>> {
        let std = self.init_std;
        let weight = self.param(&format!("{prefix}.weight"), [d_out, d_in], Init::Normal(std), trainable)?;
        let bias = if bias { Some(self.param(&format!("{prefix}.bias"), [d_out], Init::Zeros, trainable)?) } else { None };
        Ok(HfLinear { weight, bias })
    }

    pub fn layer_norm(&mut self, prefix: &str, d: usize, eps: f64, trainable: bool) -> Result<LayerNorm<B>> {
        let weight = self.param(&format!("{prefix}.weight"), [d], Init::Ones, trainable)?;
        let bias = self.param(&format!("{prefix}.bias"), [d], Init::Zeros, trainable)?;
        Ok(LayerNorm { weight, bias, eps })
    }

    pub fn rms_norm(&mut self, prefix: &str, d: usize, eps: f64, trainable: bool) -> Result<RmsNorm<B>> {
        let weight = self.param(&format!("{prefix}.weight"), [d], Init::Ones, trainable)?;
        Ok(RmsNorm { weight, eps })
    }
}

// One switch for the models' and the adapters' products: lorta-core owns it.
pub use lorta_core::matmul::{exact_f32_matmul, matmul, set_exact_f32_matmul};
pub use lorta_core::shapes::{mean_last_dim, row_broadcast, set_shape_rewrites, RowOp};

/// Rotary-embedding tables `cos`, `signed_sin` `[1, 1, s, 2·half]` (rotate-half layout) for
/// positions `offset..offset+s`, in `dtype` (rounded once from f32); `signed_sin` is `sin` with
/// its first half negated, the sign of `rotate_half` (see [`apply_rope`]). Computed on the host: the angle is the f32 product `pos·inv_freq`
/// as PyTorch forms it, its cosine and sine are taken in f64 and rounded once, so the tables
/// are the same on every backend (GPU `sin`/`cos` of angles of tens of radians are not f32-exact).
pub fn rotary_tables<B: Backend>(inv_freq: &[f32], offset: usize, s: usize, dtype: DType, device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let half = inv_freq.len();
    let mut cos = Vec::with_capacity(s * 2 * half);
    let mut sin = Vec::with_capacity(s * 2 * half);
    for p in offset..offset + s {
        for _ in 0..2 {
            for &f in inv_freq {
                let angle = (p as f32 * f) as f64;
                cos.push(angle.cos() as f32);
                sin.push(if sin.len() % (2 * half) < half { -angle.sin() as f32 } else { angle.sin() as f32 });
            }
        }
    }
    // rounded to `dtype` on the host (HF: `cos.to(x.dtype)`), no cast kernel per forward
    let table = |v: Vec<f32>| Tensor::<B, 4>::from_data(TensorData::new(v, [1, 1, s, 2 * half]).convert_dtype(dtype), (device, dtype));
    (table(cos), table(sin))
}

/// RoPE on `[b, h, s, dh]` with [`rotary_tables`]: `x·cos + rotate_half(x)·sin`,
/// `rotate_half(x) = cat(−x₂, x₁)`, written as `swap_halves(x)·signed_sin` with the swap one
/// flip: one kernel each way instead of two slices and a concatenation forward and two slice
/// assignments into zeros backward (per-kernel profile of LLaMA-2-7B's step, H200, session 11).
pub fn apply_rope<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 4>, signed_sin: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, h, s, dh] = x.dims();
    let swapped = x.clone().reshape([b, h, s, 2, dh / 2]).flip([3]).reshape([b, h, s, dh]);
    x * cos + swapped * signed_sin
}

/// `y = x·Wᵀ + b` with `W: [out, in]` (PyTorch layout).
#[derive(Module, Debug)]
pub struct HfLinear<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> HfLinear<B> {
    pub fn d_in(&self) -> usize {
        self.weight.val().dims()[1]
    }
    pub fn d_out(&self) -> usize {
        self.weight.val().dims()[0]
    }
    pub fn forward2(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let y = matmul(x, self.weight.val().transpose());
        match &self.bias {
            Some(b) => y + b.val().unsqueeze_dim(0),
            None => y,
        }
    }
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, s, i] = x.dims();
        let y = self.forward2(x.reshape([b * s, i]));
        let o = y.dims()[1];
        y.reshape([b, s, o])
    }
    /// The map with the adapter hooks of `site`: input scaling (IA3 feed-forward), base map,
    /// then the adapter's output update.
    pub fn forward_adapted(&self, x: Tensor<B, 3>, adapters: Option<&AdapterStep<'_, B>>, site: Site) -> Tensor<B, 3> {
        match adapters {
            Some(a) if a.adapts(site) => {
                let x = a.scale_input3(site, x);
                let y = self.forward(x.clone());
                a.adapt_output3(site, x, y)
            }
            _ => self.forward(x),
        }
    }

    /// [`Self::forward_adapted`] on rows `[n, in]`.
    pub fn forward_adapted2(&self, x: Tensor<B, 2>, adapters: Option<&AdapterStep<'_, B>>, site: Site) -> Tensor<B, 2> {
        match adapters {
            Some(a) if a.adapts(site) => {
                let x = a.scale_input(site, x);
                let y = self.forward2(x.clone());
                a.adapt_output(site, x, y)
            }
            _ => self.forward2(x),
        }
    }

    /// Several maps of the same input with their adapter hooks (Q, K and V of an attention
    /// layer), equal to calling [`Self::forward_adapted`] on each; lets LoRTA share its input
    /// projection between the sites and LoRA stack their A factors.
    pub fn forward_adapted_shared<const N: usize>(
        layers: [&Self; N],
        x: Tensor<B, 3>,
        adapters: Option<&AdapterStep<'_, B>>,
        sites: [Site; N],
    ) -> [Tensor<B, 3>; N] {
        let [b, s, i] = x.dims();
        Self::forward_adapted_shared2(layers, x.reshape([b * s, i]), adapters, sites).map(|y| {
            let o = y.dims()[1];
            y.reshape([b, s, o])
        })
    }

    /// [`Self::forward_adapted_shared`] on rows `[n, in]`.
    pub fn forward_adapted_shared2<const N: usize>(
        layers: [&Self; N],
        x: Tensor<B, 2>,
        adapters: Option<&AdapterStep<'_, B>>,
        sites: [Site; N],
    ) -> [Tensor<B, 2>; N] {
        match adapters {
            Some(a @ (AdapterStep::Lorta(_) | AdapterStep::Plain(lorta_core::AdapterSet::Lora(_)))) => {
                let bases: Vec<Tensor<B, 2>> = layers.iter().map(|l| l.forward2(x.clone())).collect();
                let outs = a.adapt_outputs(&sites, x, bases);
                outs.try_into().unwrap_or_else(|_| unreachable!("one output per site"))
            }
            _ => std::array::from_fn(|n| layers[n].forward_adapted2(x.clone(), adapters, sites[n])),
        }
    }
}

#[derive(Module, Debug)]
pub struct LayerNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Param<Tensor<B, 1>>,
    #[module(skip)]
    pub eps: f64,
}

impl<B: Backend> LayerNorm<B> {
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        // one autodiff node with its own backward on registered backends, else the composite
        lorta_core::fused::layer_norm(x, self.weight.val(), self.bias.val(), self.eps)
    }
}

/// LLaMA's RMSNorm: computed in f32, then `weight * x` in the compute dtype (as HF does).
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    #[module(skip)]
    pub eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        // one autodiff node with its own backward on registered backends, else the composite
        lorta_core::fused::rms_norm(x, self.weight.val(), self.eps)
    }
}

/// The casts around numerically sensitive parts (one definition, in lorta-core).
pub use lorta_core::fused::{downcast, upcast};

/// Feed-forward activations by their `hidden_act` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    /// `gelu`: the exact erf form.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: the tanh approximation.
    GeluTanh,
    Relu,
    /// `silu` / `swish`.
    Silu,
}

impl Activation {
    pub fn parse(name: &str) -> Option<Activation> {
        Some(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            _ => return None,
        })
    }
    pub const SUPPORTED: &'static str = "gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish";

    pub fn forward<B: Backend, const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Activation::Gelu => gelu_erf(x),
            Activation::GeluTanh => gelu_approximate(x),
            Activation::Relu => relu(x),
            Activation::Silu => silu(x),
        }
    }
}

/// The magnitude of an additive mask bias (`inf · (mask − 1)`, ESMFold's 1e9 / 1e5) in `dtype`:
/// capped below f16's largest value (65504) so that a kept position's `0 · inf` is 0 rather than
/// NaN (in f16 the scalar itself rounds to infinity); exp(−6·10⁴) is 0 all the same.
pub fn mask_bias_magnitude(dtype: DType, inf: f64) -> f64 {
    if dtype == DType::F16 {
        inf.min(6.0e4)
    } else {
        inf
    }
}

/// Exact GELU `x·Φ(x) = ½x(1 + erf(x/√2))` from `erf`, so that autodiff differentiates it
/// exactly: burn 0.21's own `gelu` has the tanh approximation's derivative as its backward (off by
/// up to ~1e-3 from PyTorch's gradient) and, on ndarray, spends f64 `tanh` and `powf` per element.
pub fn gelu_erf<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone() * (x.mul_scalar(std::f64::consts::FRAC_1_SQRT_2).erf() + 1.0).mul_scalar(0.5)
}

/// Scaled dot-product attention. `q: [b, h, sq, dh]`, `k, v: [b, h, sk, dh]`, `mask:
/// [b, 1, sq, sk]` with `true` = masked. Softmax runs in f32 (as HF's eager attention).
pub fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
) -> Tensor<B, 4> {
    attention_dropout(q, k, v, mask, 0.0)
}

/// Score scaling `1/√dh` and the masked-score value of [`attention_dropout`], for the fused forms.
pub fn attention_masking(head_dim: usize) -> lorta_core::fused::Masking {
    lorta_core::fused::Masking { scale: 1.0 / (head_dim as f64).sqrt(), mask_value: MASK_VALUE as f64 }
}

/// [`attention`] with dropout of probability `p` on the attention probabilities (training only,
/// see [`crate::dropout::dropout`]).
pub fn attention_dropout<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
    p: f64,
) -> Tensor<B, 4> {
    let [b, h, sq, dh] = q.dims();
    let sk = k.dims()[2];
    let dtype = q.dtype();
    let scale = 1.0 / (dh as f64).sqrt();
    if p == 0.0 || !B::ad_enabled(&q.device()) {
        // one autodiff node with its own backward where the backend has fused operations
        if let Some(out) = lorta_core::fused::attention(q.clone(), k.clone(), v.clone(), mask.clone(), attention_masking(dh)) {
            return out;
        }
    }
    let scores = matmul(q, k.swap_dims(2, 3)) * scale;
    let scores = upcast(scores);
    let scores = match mask {
        Some(m) => scores.mask_fill(m.expand([b, h, sq, sk]), MASK_VALUE),
        None => scores,
    };
    let probs = crate::dropout::dropout(downcast(softmax(scores, 3), dtype), p);
    matmul(probs, v)
}

/// `[b, s, h·dh] → [b, h, s, dh]`.
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    let [b, s, d] = x.dims();
    x.reshape([b, s, heads, d / heads]).swap_dims(1, 2)
}

/// `[b, h, s, dh] → [b, s, h·dh]`.
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [b, h, s, dh] = x.dims();
    x.swap_dims(1, 2).reshape([b, s, h * dh])
}

/// Padding mask `[b, 1, 1, sk]` (true = masked) from a 0/1 attention mask, with `extra`
/// always-visible columns in front (prefix-tuning keys).
pub fn padding_mask<B: Backend>(attention_mask: Tensor<B, 2, burn::tensor::Int>, extra: usize) -> Tensor<B, 4, Bool> {
    let [b, s] = attention_mask.dims();
    let m = attention_mask.equal_elem(0);
    let m = if extra > 0 {
        let dev = m.device();
        Tensor::cat(vec![Tensor::<B, 2, Bool>::full([b, extra], false, &dev), m], 1)
    } else {
        m
    };
    m.reshape([b, 1, 1, s + extra])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>;

    /// GELU and its gradient against the closed forms `xΦ(x)` and `Φ(x) + xφ(x)` (f64 on the
    /// host); the tanh-approximation derivative burn's own `gelu` backward uses is ~1e-3 off.
    #[test]
    fn gelu_erf_value_and_gradient_are_exact() {
        let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.1).collect();
        let x = Tensor::<B, 1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &Default::default()).require_grad();
        let y = gelu_erf(x.clone());
        let grads = y.clone().sum().backward();
        let y: Vec<f32> = y.into_data().to_vec().unwrap();
        let g: Vec<f32> = x.grad(&grads).unwrap().into_data().to_vec().unwrap();
        for (i, &v) in xs.iter().enumerate() {
            let v = v as f64;
            let cdf = 0.5 * (1.0 + libm_erf(v / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!((y[i] as f64 - v * cdf).abs() < 1e-6, "gelu({v}) = {} vs {}", y[i], v * cdf);
            assert!((g[i] as f64 - (cdf + v * pdf)).abs() < 2e-6, "gelu'({v}) = {} vs {}", g[i], cdf + v * pdf);
        }
    }

    /// erf to ~1e-15 (Abramowitz–Stegun 7.1.26 is too coarse for a 1e-6 check): the Maclaurin
    /// series below |x| < 3, the continued fraction of erfc above.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() < 3.0 {
            let mut term = x;
            let mut sum = x;
            for n in 1..200 {
                term *= -x * x / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            2.0 / std::f64::consts::PI.sqrt() * sum
        } else {
            // Lentz-free backward evaluation of erfc's continued fraction
            let a = x.abs();
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = (k as f64 / 2.0) / (a + f);
            }
            let erfc = (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + f);
            (1.0 - erfc) * x.signum()
        }
    }
}
