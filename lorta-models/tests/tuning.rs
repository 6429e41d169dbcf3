//! Trainable parameters: counts are exact, frozen base weights get no gradient on an autodiff
//! backend, trainable ones do; prefix tuning, Houlsby adapters, full fine-tuning and the
//! "LoRTA+LoRA" head.
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, Tensor};
use lorta_core::tuners::{LoraConfig, LortaConfig};
use lorta_core::{AdapterConfig, MatrixKind};
use lorta_models::bert::{int_batch, BertConfig, BertForSequenceClassification, EncoderFlavor};
use lorta_models::llama::{GenerationConfig, LlamaConfig, LlamaForCausalLM};
use lorta_models::load::LoadOptions;
use lorta_models::nn::Activation;
use lorta_models::tuning::{HeadTuning, Tuning};

type Ad = burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>;

fn tiny_bert() -> BertConfig {
    BertConfig {
        flavor: EncoderFlavor::Roberta,
        vocab_size: 50,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 24,
        hidden_act: Activation::Gelu,
        max_position_embeddings: 32,
        type_vocab_size: 1,
        layer_norm_eps: 1e-5,
        pad_token_id: 1,
        num_labels: 3,
        architecture: Some("RobertaForSequenceClassification".into()),
    }
}

fn tiny_llama() -> LlamaConfig {
    LlamaConfig {
        vocab_size: 40,
        hidden_size: 16,
        intermediate_size: 20,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 4,
        max_position_embeddings: 64,
        ..LlamaConfig::llama2_7b()
    }
}

/// (params with require_grad, all params, params with require_grad but no gradient, frozen
/// params with a gradient).
struct GradAudit<'a, B: AutodiffBackend> {
    grads: &'a B::Gradients,
    trainable: usize,
    total: usize,
    missing: usize,
    leaked: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradAudit<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let n = t.shape().num_elements();
        self.total += n;
        let has_grad = t.grad(self.grads).is_some();
        if t.is_require_grad() {
            self.trainable += n;
            if !has_grad {
                self.missing += n;
            }
        } else if has_grad {
            self.leaked += n;
        }
    }
}

fn audit_classifier(model: &BertForSequenceClassification<Ad>) -> (usize, usize, usize, usize) {
    let dev = Default::default();
    let ids = int_batch::<Ad>(&[vec![0, 5, 7, 2, 1], vec![0, 9, 2, 1, 1]], &dev).unwrap();
    let mask = int_batch::<Ad>(&[vec![1, 1, 1, 1, 0], vec![1, 1, 1, 0, 0]], &dev).unwrap();
    let loss = model.forward(ids, Some(mask), None).powi_scalar(2).sum();
    let grads = loss.backward();
    let mut a = GradAudit::<Ad> { grads: &grads, trainable: 0, total: 0, missing: 0, leaked: 0 };
    model.visit(&mut a);
    (a.trainable, a.total, a.missing, a.leaked)
}

fn lorta4() -> AdapterConfig {
    AdapterConfig::Lorta(LortaConfig::new(4, MatrixKind::ATTENTION.to_vec()))
}

#[test]
fn encoder_trainable_count_is_adapter_plus_head_and_base_gets_no_gradient() {
    let dev = Default::default();
    let c = tiny_bert();
    let opts = LoadOptions { tuning: Tuning::adapter(lorta4()).with_seed(3), ..Default::default() };
    let model = BertForSequenceClassification::<Ad>::random(&c, &opts, &dev).unwrap();
    let adapter = model.encoder.adapters.as_ref().unwrap().num_trainable();
    let d = c.hidden_size;
    let head = (d * d + d) + (3 * d + 3);
    assert_eq!(model.trainable_params(), adapter + head);
    let (trainable, total, missing, leaked) = audit_classifier(&model);
    println!("LoRTA r=4: trainable {trainable} of {total} (adapter {adapter}, head {head})");
    assert_eq!(trainable, model.trainable_params(), "require_grad params = trainable_params()");
    assert_eq!(missing, 0, "every trainable parameter gets a gradient");
    assert_eq!(leaked, 0, "frozen base weights get no gradient");
    assert!(total > trainable);
}

#[test]
fn lora_head_prefix_houlsby_and_full_counts() {
    let dev = Default::default();
    let c = tiny_bert();
    let (d, l) = (c.hidden_size, c.num_hidden_layers);
    // "LoRTA+LoRA": out_proj trainable, dense frozen + LoRA rank 2.
    let t = Tuning::adapter(lorta4()).with_head(HeadTuning::Lora { r: 2 });
    let m = BertForSequenceClassification::<Ad>::random(&c, &LoadOptions { tuning: t, ..Default::default() }, &dev).unwrap();
    let adapter = m.encoder.adapters.as_ref().unwrap().num_trainable();
    assert_eq!(m.trainable_params(), adapter + (3 * d + 3) + 2 * (2 * d));
    let (trainable, _, missing, leaked) = audit_classifier(&m);
    assert_eq!((trainable, missing, leaked), (m.trainable_params(), 0, 0));
    // Prefix tuning ℓ = 5 (2·L·ℓ·d) and Houlsby m = 4 (two per layer) with a frozen head.
    let t = Tuning { prefix_len: Some(5), houlsby: Some(4), head: HeadTuning::Frozen, ..Default::default() };
    let m = BertForSequenceClassification::<Ad>::random(&c, &LoadOptions { tuning: t, ..Default::default() }, &dev).unwrap();
    let houlsby = 2 * l * (d * 4 + 4 + 4 * d + d);
    assert_eq!(m.trainable_params(), 2 * l * 5 * d + houlsby);
    let (trainable, _, missing, leaked) = audit_classifier(&m);
    assert_eq!((trainable, missing, leaked), (m.trainable_params(), 0, 0));
    // Full fine-tuning: everything.
    let m = BertForSequenceClassification::<Ad>::random(&c, &LoadOptions { tuning: Tuning::full_finetuning(), ..Default::default() }, &dev).unwrap();
    assert_eq!(m.trainable_params(), m.num_params());
    let (trainable, total, missing, leaked) = audit_classifier(&m);
    assert_eq!((trainable, missing, leaked), (total, 0, 0));
}

#[test]
fn houlsby_starts_as_identity() {
    let dev = Default::default();
    type Nd = burn_ndarray::NdArray<f32>;
    let c = tiny_llama();
    let t = Tuning { houlsby: Some(3), ..Tuning::frozen() };
    let m = LlamaForCausalLM::<Nd>::random(&c, &t, DType::F32, &dev).unwrap();
    let ids = int_batch::<Nd>(&[vec![1, 5, 9, 3]], &dev).unwrap();
    let with = m.forward(ids.clone(), None);
    let mut plain = m.clone();
    for layer in plain.model.layers.iter_mut() {
        layer.houlsby_attention = None;
        layer.houlsby_ffn = None;
    }
    let without = plain.forward(ids, None);
    with.into_data().assert_approx_eq::<f32>(&without.into_data(), burn::tensor::Tolerance::absolute(1e-6));
}

#[test]
fn llama_adapter_and_prefix_training_state_and_cached_generation() {
    let dev = Default::default();
    let c = tiny_llama();
    let t = Tuning {
        adapter: Some(AdapterConfig::Lora(LoraConfig::new(2, vec![MatrixKind::Query, MatrixKind::Value]))),
        prefix_len: Some(3),
        ..Tuning::frozen()
    };
    let m = LlamaForCausalLM::<Ad>::random(&c, &t, DType::F32, &dev).unwrap();
    let kv = c.num_key_value_heads * c.head_dim;
    assert_eq!(m.trainable_params(), m.adapters.as_ref().unwrap().num_trainable() + 2 * c.num_hidden_layers * 3 * kv);
    let ids = int_batch::<Ad>(&[vec![1, 5, 9, 3], vec![1, 7, 0, 0]], &dev).unwrap();
    let mask = int_batch::<Ad>(&[vec![1, 1, 1, 1], vec![1, 1, 0, 0]], &dev).unwrap();
    let loss = m.forward(ids, Some(mask)).sum();
    let grads = loss.backward();
    let mut a = GradAudit::<Ad> { grads: &grads, trainable: 0, total: 0, missing: 0, leaked: 0 };
    m.visit(&mut a);
    assert_eq!((a.trainable, a.missing, a.leaked), (m.trainable_params(), 0, 0));
    // Cached generation with prefixes equals recomputing the whole sequence each step.
    type Nd = burn_ndarray::NdArray<f32>;
    let m = LlamaForCausalLM::<Nd>::random(&c, &t, DType::F32, &dev).unwrap();
    let out = m.generate(&[1, 5, 9], &GenerationConfig { max_new_tokens: 6, stop_tokens: vec![999], ..Default::default() }).unwrap();
    let mut seq = vec![1, 5, 9];
    for _ in 0..6 {
        let logits = m.forward(int_batch::<Nd>(&[seq.clone()], &dev).unwrap(), None);
        let s = seq.len();
        let last = logits.slice([0..1, s - 1..s, 0..c.vocab_size]).argmax(2).into_scalar();
        seq.push(last as u32);
    }
    assert_eq!(out, seq);
    // Sampling is reproducible by seed.
    let cfg = GenerationConfig { max_new_tokens: 8, temperature: 1.0, top_p: 0.9, seed: 7, stop_tokens: vec![999] };
    assert_eq!(m.generate(&[1, 2], &cfg).unwrap(), m.generate(&[1, 2], &cfg).unwrap());
}

/// `without_tuning` (DPO's reference policy): the adapted model with LoRA (non-zero B), prefixes
/// and Houlsby adapters switched off computes exactly what the untuned model with the same base
/// weights computes, shares the base tensors, and refuses under full fine-tuning.
#[test]
fn llama_without_tuning_is_the_base_model() {
    type Nd = burn_ndarray::NdArray<f32>;
    let dev = Default::default();
    let c = tiny_llama();
    let t = Tuning {
        adapter: Some(AdapterConfig::Lora(LoraConfig::new(2, vec![MatrixKind::Query, MatrixKind::Value]))),
        prefix_len: Some(2),
        houlsby: Some(3),
        seed: 5,
        ..Tuning::frozen()
    };
    let tuned = LlamaForCausalLM::<Nd>::random(&c, &t, DType::F32, &dev).unwrap();
    // make the LoRA update non-zero so that "off" is observable
    let tuned = tuned.map(&mut Bump);
    let base = tuned.without_tuning().unwrap();
    assert!(base.adapters.is_none() && base.model.layers.iter().all(|l| l.prefix.is_none() && l.houlsby_ffn.is_none()));
    assert_eq!(base.trainable_params(), 0);
    let mut plain = tuned.clone();
    plain.adapters = None;
    for l in plain.model.layers.iter_mut() {
        l.prefix = None;
        l.houlsby_attention = None;
        l.houlsby_ffn = None;
    }
    let ids = || int_batch::<Nd>(&[vec![1, 5, 9, 3]], &dev).unwrap();
    let a = base.forward(ids(), None);
    let b = plain.forward(ids(), None);
    a.clone().into_data().assert_approx_eq::<f32>(&b.into_data(), burn::tensor::Tolerance::absolute(0.0));
    let diff = (tuned.forward(ids(), None) - a).abs().max().into_scalar();
    assert!(diff > 1e-4, "the adapted model must differ from its base ({diff})");
    // the original keeps its adapter
    assert!(tuned.adapters.is_some());
    let full = LlamaForCausalLM::<Nd>::random(&c, &Tuning { full: true, ..Tuning::frozen() }, DType::F32, &dev).unwrap();
    assert!(full.without_tuning().is_none());
}

/// Adds 0.05 to every parameter of the adapters (LoRA's B starts at zero).
struct Bump;
impl<B: burn::tensor::backend::Backend> burn::module::ModuleMapper<B> for Bump {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, t, mapper) = param.consume();
        let t = if t.is_require_grad() || t.dims().iter().product::<usize>() < 64 { t.add_scalar(0.05) } else { t };
        Param::from_mapped_value(id, t, mapper)
    }
}
