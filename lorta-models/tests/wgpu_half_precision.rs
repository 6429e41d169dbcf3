//! Half-precision training through burn's kernel fusion (wgpu, lavapipe in CI): a tiny LLaMA and a
//! tiny BERT with f32 LoRA adapters on an f16 base, forward + backward + AdamW. burn-cubecl-fusion
//! 0.21 panicked in the first such step ("index out of bounds" in a fused reduction) until the
//! norms cast once per use (`nn::RmsNorm::forward`); the same happened on CUDA with bf16.
//! `cargo test -p lorta-models --features test-wgpu --test wgpu_half_precision`
#![cfg(feature = "test-wgpu")]

use burn::backend::Autodiff;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::{backend::AutodiffBackend, DType, FloatDType, Int, Tensor, TensorData};
use lorta_core::{AdapterConfig, MatrixKind, Method};
use lorta_models::bert::{BertConfig, BertModel};
use lorta_models::llama::{LlamaConfig, LlamaForCausalLM};
use lorta_models::tuning::{HeadTuning, Tuning};

type Wg = Autodiff<burn_wgpu::Wgpu<f32, i32>>;
type Nd = Autodiff<burn_ndarray::NdArray<f32>>;

fn tiny_llama() -> LlamaConfig {
    let mut c = LlamaConfig::llama2_7b();
    (c.vocab_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers) = (96, 32, 64, 2);
    (c.num_attention_heads, c.num_key_value_heads, c.head_dim) = (4, 2, 8);
    c
}

fn lora_tuning() -> Tuning {
    let lora = AdapterConfig::default_for(Method::Lora, 4, &MatrixKind::ATTENTION);
    Tuning::adapter(lora).with_head(HeadTuning::Frozen).with_trainable_dtype(Some(DType::F32))
}

fn ids<B: AutodiffBackend>(b: usize, t: usize, vocab: usize) -> Tensor<B, 2, Int> {
    let v: Vec<i64> = (0..b * t).map(|i| ((i * 31 + 7) % vocab) as i64).collect();
    Tensor::from_data(TensorData::new(v, [b, t]), &Default::default())
}

/// Losses of three LoRA training steps of the tiny LLaMA (same seed, same inputs).
fn llama_losses<B: AutodiffBackend>(dtype: DType) -> Vec<f32> {
    let device = Default::default();
    let c = tiny_llama();
    let mut model = LlamaForCausalLM::<B>::random(&c, &lora_tuning(), dtype, &device).unwrap();
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init::<B, LlamaForCausalLM<B>>();
    let (b, t) = (2, 32);
    let all = ids::<B>(b, t + 1, c.vocab_size);
    let (inputs, targets) = (all.clone().narrow(1, 0, t), all.narrow(1, 1, t).reshape([b * t]));
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut losses = Vec::new();
    for _ in 0..3 {
        let logits = model.forward(inputs.clone(), None).reshape([b * t, c.vocab_size]).cast(FloatDType::F32);
        let loss = loss_fn.forward(logits, targets.clone());
        losses.push(loss.clone().into_data().convert::<f32>().to_vec::<f32>().unwrap()[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    losses
}

#[test]
fn llama_lora_trains_in_f16_with_fusion() {
    let half = llama_losses::<Wg>(DType::F16);
    let full = llama_losses::<Nd>(DType::F32);
    for (step, (h, f)) in half.iter().zip(&full).enumerate() {
        assert!(h.is_finite(), "step {step}: f16 loss {h}");
        // f16 weights and activations: the loss agrees with f32 to a few 1e-3
        assert!((h - f).abs() / f.abs() < 1e-2, "step {step}: f16 loss {h} vs f32 {f}");
    }
    assert!(half[2] < half[0], "f16 LoRA training does not lower the loss: {half:?}");
}

#[test]
fn bert_lora_backward_in_f16_with_fusion() {
    let device = Default::default();
    let mut config = BertConfig::roberta_base();
    (config.vocab_size, config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size) = (96, 32, 2, 4, 64);
    let model = BertModel::<Wg>::random(&config, &lora_tuning(), DType::F16, &device).unwrap();
    let x = ids::<Wg>(2, 16, config.vocab_size).add_scalar(2).clamp_max(config.vocab_size as i64 - 1);
    let loss = model.forward(x, None, None).cast(FloatDType::F32).powi_scalar(2).mean();
    let grads = loss.backward();
    let adapters = model.adapters.as_ref().expect("LoRA adapters");
    let g = GradientsParams::from_grads(grads, adapters);
    assert!(!g.is_empty(), "no adapter gradients");
}
