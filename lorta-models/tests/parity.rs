//! Parity with Hugging Face transformers / PEFT on the fixtures of `scripts/make_fixtures.py`,
//! through the CLI's code path ([`AutoModel::forward_ids`], [`LlamaForCausalLM::generate`],
//! [`merge_adapter`]). fp32, normwise relative error ≤ 1e-4 over unpadded positions.
mod common;

use common::*;
use lorta_models::llama::{GenerationConfig, LlamaForCausalLM};
use lorta_models::load::{AutoModel, LoadOptions};
use lorta_models::merge::merge_adapter;
use lorta_models::tokenizer::TextTokenizer;

#[test]
fn bert_tiny_hidden_states_and_wordpiece_from_vocab_txt() {
    // LayerNorm and attention through the fused operations, as the CLI registers them
    lorta_core::fused::register::<B>();
    let r = reference("bert-tiny");
    let dir = fixture("bert-tiny");
    let tok = TextTokenizer::from_dir(&dir, None).unwrap();
    for case in r["tokenizer"]["cases"].as_array().unwrap() {
        let enc = match case["text_pair"].as_str() {
            Some(b) => tok.encode_pair(case["text"].as_str().unwrap(), b).unwrap(),
            None => tok.encode(case["text"].as_str().unwrap()).unwrap(),
        };
        let want: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let want_tt: Vec<u32> = case["token_type_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(enc.ids, want, "ids of {case}");
        assert_eq!(enc.type_ids, want_tt, "type ids of {case}");
    }
    let model = load(&dir, None);
    let seqs = sequences(&r["inputs"]);
    let types = ids(&r["inputs"]["token_type_ids"]);
    let out = model.forward_ids(&seqs, Some(&types)).unwrap();
    assert_eq!(out.input_ids, ids(&r["inputs"]["input_ids"]));
    let mask = ids_mask(&r["inputs"]);
    assert_close("bert-tiny last_hidden_state", out.last_hidden_state.as_ref().unwrap(), &r["last_hidden_state"], Some(&mask));
    // Pooler (BERT's bare model keeps it).
    let AutoModel::Encoder(m) = &model else { panic!("bert-tiny is a bare encoder") };
    let dev = Default::default();
    let ids_t = lorta_models::bert::int_batch::<B>(&out.input_ids, &dev).unwrap();
    let mask_t = lorta_models::bert::int_batch::<B>(&mask, &dev).unwrap();
    let tt = lorta_models::bert::int_batch::<B>(&types, &dev).unwrap();
    let pooled = m.pooled(m.forward(ids_t, Some(mask_t), Some(tt))).unwrap();
    assert_close("bert-tiny pooler_output", &lorta_models::load::Array::from_tensor(pooled).unwrap(), &r["pooler_output"], None);
}

#[test]
fn roberta_classification_with_padding() {
    lorta_core::fused::register::<B>();
    let r = reference("roberta-cls");
    let model = load(&fixture("roberta-cls"), None);
    let out = model.forward_ids(&sequences(&r["inputs"]), None).unwrap();
    assert_eq!(out.input_ids, ids(&r["inputs"]["input_ids"]), "padded with pad_token_id 1");
    let mask = ids_mask(&r["inputs"]);
    assert_close("roberta last_hidden_state", out.last_hidden_state.as_ref().unwrap(), &r["last_hidden_state"], Some(&mask));
    assert_close("roberta logits", out.logits.as_ref().unwrap(), &r["logits"], None);
}

fn check_llama(name: &str, base: &str, adapter: Option<&str>) {
    // RMSNorm, the attention block, SwiGLU through the fused operations, as the CLI registers
    // them on every backend
    lorta_core::fused::register::<B>();
    assert!(lorta_core::fused::is_registered::<B>());
    let r = reference(name);
    let adapter = adapter.map(|a| fixture(name).join(a));
    let model = load(&fixture(base), adapter.clone());
    let out = model.forward_ids(&sequences(&r["inputs"]), None).unwrap();
    let mask = ids_mask(&r["inputs"]);
    assert_close(&format!("{name} logits"), out.logits.as_ref().unwrap(), &r["logits"], Some(&mask));
    // Greedy generation with the KV cache.
    let lm = LlamaForCausalLM::<B>::load(&fixture(base), &LoadOptions::inference().with_adapter(adapter), &Default::default()).unwrap();
    let g = &r["generate"];
    let prompt: Vec<u32> = g["prompt_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    let want: Vec<u32> = g["output_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    let cfg = GenerationConfig { max_new_tokens: g["max_new_tokens"].as_u64().unwrap() as usize, ..Default::default() };
    assert_eq!(lm.generate(&prompt, &cfg).unwrap(), want, "{name}: greedy generation");
}

#[test]
fn llama_gqa_untied_rope_parameters() {
    check_llama("llama-gqa", "llama-gqa", None);
}

#[test]
fn llama_tied() {
    check_llama("llama-tied", "llama-tied", None);
}

#[test]
fn llama_tied_bf16_weights_f32_compute() {
    check_llama("llama-tied-bf16", "llama-tied-bf16", None);
}

#[test]
fn llama_peft_lora() {
    check_llama("llama-lora", "llama-tied", Some("adapter"));
}

#[test]
fn llama_paper_lorta() {
    check_llama("llama-lorta", "llama-tied", Some("adapter"));
}

#[test]
fn llama_peft_ia3() {
    check_llama("llama-ia3", "llama-tied", Some("adapter"));
}

#[test]
fn llama_peft_vera() {
    check_llama("llama-vera", "llama-tied", Some("adapter"));
}

#[test]
fn merged_checkpoints_match_adapted_models() {
    let dev = Default::default();
    for name in ["llama-lora", "llama-lorta", "llama-ia3", "llama-vera"] {
        let r = reference(name);
        let adapter = fixture(name).join("adapter");
        let tmp = tempfile::tempdir().unwrap();
        let summary = merge_adapter::<B>(&fixture("llama-tied"), &adapter, tmp.path(), &dev).unwrap();
        assert!(!summary.merged_tensors.is_empty());
        let seqs = sequences(&r["inputs"]);
        let mask = ids_mask(&r["inputs"]);
        let adapted = load(&fixture("llama-tied"), Some(adapter)).forward_ids(&seqs, None).unwrap();
        let merged = load(tmp.path(), None).forward_ids(&seqs, None).unwrap();
        let a = adapted.logits.unwrap();
        let m = merged.logits.unwrap();
        let err = a.data.iter().zip(&m.data).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
            / a.data.iter().map(|x| x.abs()).fold(0f32, f32::max);
        println!("{name}: merged vs adapter relative error {err:.3e} ({} tensors merged)", summary.merged_tensors.len());
        assert!(err <= 1e-4, "{name}: merged logits differ from adapter logits ({err:.3e})");
        assert_close(&format!("{name} merged vs HF"), &m, &r["logits"], Some(&mask));
        // Same keys and dtypes as the input.
        let src = lorta_models::weights::Weights::open(&[fixture("llama-tied").join("model.safetensors")]).unwrap();
        let out = lorta_models::weights::Weights::open(&[tmp.path().join("model.safetensors")]).unwrap();
        assert_eq!(src.all_keys(), out.all_keys());
        for k in src.all_keys() {
            assert_eq!(src.info(&k), out.info(&k), "{k}");
        }
        assert!(tmp.path().join("config.json").is_file());
    }
}

/// Every adapter parameter set to `offset + N(0, std²)` (so the update is visible).
fn perturb(set: lorta_core::AdapterSet<B>, offset: f64, std: f64) -> lorta_core::AdapterSet<B> {
    use burn::module::{Module, ModuleMapper, Param};
    use burn::tensor::{Distribution, Tensor};
    struct P(f64, f64);
    impl ModuleMapper<B> for P {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, t, mapper) = param.consume();
            let t = t.random_like(Distribution::Normal(self.0, self.1));
            Param::from_mapped_value(id, t, mapper)
        }
    }
    set.map(&mut P(offset, std))
}

#[test]
fn merge_keeps_bf16_and_merges_encoder_biases() {
    use lorta_core::tuners::LoraConfig;
    use lorta_core::{AdapterConfig, ArchNaming, MatrixKind};
    // bf16 input stays bf16.
    let dev = Default::default();
    let tmp = tempfile::tempdir().unwrap();
    merge_adapter::<B>(&fixture("llama-tied-bf16"), &fixture("llama-lora").join("adapter"), tmp.path(), &dev).unwrap();
    let out = lorta_models::weights::Weights::open(&[tmp.path().join("model.safetensors")]).unwrap();
    assert_eq!(out.storage_dtype(), safetensors::Dtype::BF16);
    // Encoders with biases: IA3 scales K/V outputs (bias included) and the FFN input; LoRA on
    // all four attention maps. RoBERTa classifier (prefix `roberta.`) and bare BERT (no prefix).
    for (fx, prefix) in [("roberta-cls", "roberta."), ("bert-tiny", "")] {
        let r = reference(fx);
        let shape = lorta_models::bert::BertConfig::from_file(&fixture(fx).join("config.json")).unwrap().shape();
        let naming = ArchNaming::Bert { prefix: prefix.into() };
        for (cfg, offset, std) in [
            (AdapterConfig::Ia3(Default::default()), 1.0, 0.3),
            (AdapterConfig::Lora(LoraConfig::new(2, MatrixKind::ATTENTION.to_vec())), 0.0, 0.3),
        ] {
            let set = perturb(cfg.init::<B>(&shape, 1, &dev).unwrap(), offset, std);
            let adir = tempfile::tempdir().unwrap();
            lorta_core::io::save_adapter(&set, adir.path(), &naming, None).unwrap();
            let mdir = tempfile::tempdir().unwrap();
            merge_adapter::<B>(&fixture(fx), adir.path(), mdir.path(), &dev).unwrap();
            let seqs = sequences(&r["inputs"]);
            let types = ids(&r["inputs"]["token_type_ids"]);
            let base = load(&fixture(fx), None).forward_ids(&seqs, Some(&types)).unwrap();
            let adapted = load(&fixture(fx), Some(adir.path().to_path_buf())).forward_ids(&seqs, Some(&types)).unwrap();
            let merged = load(mdir.path(), None).forward_ids(&seqs, Some(&types)).unwrap();
            let (a, m, b) = (adapted.last_hidden_state.unwrap(), merged.last_hidden_state.unwrap(), base.last_hidden_state.unwrap());
            let diff = |x: &lorta_models::load::Array, y: &lorta_models::load::Array| {
                x.data.iter().zip(&y.data).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max)
            };
            let scale = a.data.iter().map(|x| x.abs()).fold(0f32, f32::max);
            println!("{fx} {:?}: merged vs adapter {:.3e}, adapter vs base {:.3e}", cfg.method(), diff(&a, &m) / scale, diff(&a, &b) / scale);
            assert!(diff(&a, &b) / scale > 1e-2, "{fx}: adapter has no visible effect");
            assert!(diff(&a, &m) / scale <= 1e-4, "{fx} {:?}: merged differs from adapter", cfg.method());
        }
    }
}

#[test]
fn half_precision_compute_where_supported() {
    // bf16 / f16 compute through burn's cast; skipped (with a note) on backends without them.
    let r = reference("llama-tied");
    let mask = ids_mask(&r["inputs"]);
    for dtype in [burn::tensor::DType::BF16, burn::tensor::DType::F16] {
        let opts = LoadOptions::inference().with_dtype(dtype);
        let res = std::panic::catch_unwind(|| {
            let m = AutoModel::<B>::load(&fixture("llama-tied-bf16"), &opts, &Default::default()).unwrap();
            m.forward_ids(&sequences(&r["inputs"]), None).unwrap()
        });
        match res {
            Ok(out) => {
                let e = rel_err(out.logits.as_ref().unwrap(), &r["logits"], Some(&mask));
                println!("{dtype:?} compute: relative error vs f32 reference {e:.3e}");
                assert!(e < 5e-2, "{dtype:?}: {e}");
            }
            Err(_) => println!("SKIPPED: {dtype:?} compute is not supported by the ndarray backend"),
        }
    }
}
