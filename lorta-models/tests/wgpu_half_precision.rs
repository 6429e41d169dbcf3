//! Half-precision training through burn's kernel fusion (wgpu, lavapipe in CI): a tiny LLaMA and a
//! tiny BERT with f32 LoRA adapters on an f16 base, forward + backward + AdamW. burn-cubecl-fusion
//! 0.21 panicked in the first such step ("index out of bounds" in a fused reduction) until the
//! norms cast once per use (`lorta_core::fused`, composite and fused RMSNorm); the same happened
//! on CUDA with bf16.
//! ESMFold's structure module under f16: its backward overflowed f16 (NaN gradients in the first
//! step) until it was kept in f32 under an f16 trunk.
//! `cargo test -p lorta-models --features test-wgpu --test wgpu_half_precision`
#![cfg(feature = "test-wgpu")]

use burn::backend::Autodiff;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::AutodiffBackend, DType, FloatDType, Int, Tensor, TensorData};
use lorta_core::{AdapterConfig, MatrixKind, Method};
use lorta_models::bert::{BertConfig, BertModel};
use lorta_models::esmfold::{EsmFold, EsmFoldConfig, FoldOptions};
use lorta_models::evoformer::{PairUpdate, TrunkConfig};
use lorta_models::structure_module::StructureModuleConfig;
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
    // RMSNorm, attention, SwiGLU as the CLI runs them: fused operations with their own backward
    // (the f32 reference on ndarray keeps the composites)
    lorta_core::fused::register::<burn_wgpu::Wgpu<f32, i32>>();
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
    // LayerNorm and attention as the CLI runs them (fused operations)
    lorta_core::fused::register::<burn_wgpu::Wgpu<f32, i32>>();
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

/// Non-finite gradient entries of every parameter that received one, by parameter.
struct NonFinite<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    bad: Vec<(String, usize)>,
    seen: usize,
    _b: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for NonFinite<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let v = g.cast(FloatDType::F32).into_data().convert::<f32>().to_vec::<f32>().unwrap();
            let bad = v.iter().filter(|x| !x.is_finite()).count();
            self.seen += 1;
            if bad > 0 {
                self.bad.push((format!("{:?}", param.id), bad));
            }
        }
    }
}

#[test]
fn esmfold_structure_module_backward_in_f16() {
    lorta_core::fused::register::<burn_wgpu::Wgpu<f32, i32>>();
    let device = Default::default();
    let mut c = EsmFoldConfig::paper(false);
    c.trunk = TrunkConfig {
        num_blocks: 1,
        sequence_state_dim: 16,
        pairwise_state_dim: 8,
        sequence_head_width: 8,
        pairwise_head_width: 4,
        position_bins: 8,
        pair_update: PairUpdate::OuterProductMean { dim: 4 },
        ..TrunkConfig::paper()
    };
    c.structure_module = StructureModuleConfig {
        sequence_dim: 16,
        pairwise_dim: 8,
        ipa_dim: 4,
        resnet_dim: 8,
        num_heads_ipa: 2,
        num_qk_points: 2,
        num_v_points: 2,
        num_blocks: 2,
        ..StructureModuleConfig::default()
    };
    let lora = AdapterConfig::default_for(Method::Lora, 2, &MatrixKind::ATTENTION);
    let tuning = Tuning::adapter(lora).with_head(HeadTuning::Full);
    let model = EsmFold::<Wg>::random(&c, &tuning, None, DType::F16, &device).unwrap();
    assert_eq!(model.trunk.structure_module.bb_update.weight.val().dtype(), DType::F32, "structure module not kept in f32 under f16");
    let (b, l) = (2, 16);
    let aatype = Tensor::<Wg, 2, Int>::from_data(TensorData::new((0..b * l).map(|i| ((i * 7) % 20) as i64).collect::<Vec<_>>(), [b, l]), &device);
    // the second chain is padded after 12 residues
    let mask = Tensor::<Wg, 2, Int>::from_data(TensorData::new((0..b * l).map(|i| i64::from(i < l || i % l < 12)).collect::<Vec<_>>(), [b, l]), &device);
    let out = model.forward(aatype, mask.clone(), FoldOptions { num_recycles: 0, structure: true });
    // CA trace against a straight chain with 3.8 Å steps, over the kept pairs
    let pos = out.structure.expect("structure output").final_positions().cast(FloatDType::F32);
    let ca = pos.slice([0..b, 0..l, 1..2, 0..3]).reshape([b, l, 3]);
    let d = (ca.clone().reshape([b, l, 1, 3]) - ca.reshape([b, 1, l, 3])).powi_scalar(2).sum_dim(3).reshape([b, l, l]).add_scalar(1e-4).sqrt();
    let target = Tensor::<Wg, 1, Int>::arange(0..l as i64, &device).float();
    let target = (target.clone().reshape([1, l, 1]) - target.reshape([1, 1, l])).abs().mul_scalar(3.8);
    let m = mask.float();
    let pair = m.clone().reshape([b, l, 1]) * m.reshape([b, 1, l]);
    let loss = ((d - target).powi_scalar(2) * pair.clone()).sum() / pair.sum()
        + out.distogram_logits.cast(FloatDType::F32).powi_scalar(2).mean();
    let value = loss.clone().into_data().convert::<f32>().to_vec::<f32>().unwrap()[0];
    assert!(value.is_finite(), "loss {value}");
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut v = NonFinite::<Wg> { grads: &grads, bad: Vec::new(), seen: 0, _b: std::marker::PhantomData };
    model.visit(&mut v);
    assert!(v.seen > 10, "only {} parameters got gradients", v.seen);
    assert!(v.bad.is_empty(), "non-finite gradients (param, count) under f16: {:?}", v.bad);
}
