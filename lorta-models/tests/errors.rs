//! Broken checkpoints and configs give errors naming the file, tensor or key; sharded and
//! prefix-less checkpoints load.
mod common;

use std::path::Path;

use common::*;
use lorta_models::load::{AutoModel, LoadOptions};
use lorta_models::weights::Weights;
use safetensors::tensor::TensorView;

/// Copies a fixture folder's non-weight files into a temp dir.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
        }
    }
    tmp
}

type Tensors = Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>;

fn read_all(path: &Path) -> Tensors {
    let w = Weights::open(&[path.to_path_buf()]).unwrap();
    w.all_keys()
        .into_iter()
        .map(|k| {
            let (d, s, b) = w.raw(&k).unwrap();
            (k, d, s, b.to_vec())
        })
        .collect()
}

fn write_all(path: &Path, tensors: &Tensors) {
    let views: Vec<(String, TensorView<'_>)> =
        tensors.iter().map(|(k, d, s, b)| (k.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn load_err(dir: &Path) -> String {
    match AutoModel::<B>::load(dir, &LoadOptions::inference(), &Default::default()) {
        Ok(_) => panic!("{} loaded but should not", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn edit(name: &str, f: impl FnOnce(&mut Tensors)) -> tempfile::TempDir {
    let tmp = copy_fixture(name);
    let st = tmp.path().join("model.safetensors");
    let mut t = read_all(&st);
    f(&mut t);
    write_all(&st, &t);
    tmp
}

#[test]
fn truncated_safetensors() {
    let tmp = copy_fixture("llama-tied");
    let st = tmp.path().join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(tmp.path());
    println!("{e}");
    assert!(e.contains("model.safetensors") && e.contains("not a valid safetensors"), "{e}");
}

#[test]
fn wrong_shape_names_tensor_and_shapes() {
    let tmp = edit("llama-tied", |t| {
        let q = t.iter_mut().find(|x| x.0 == "model.layers.1.self_attn.q_proj.weight").unwrap();
        q.2 = vec![16, 64];
    });
    let e = load_err(tmp.path());
    println!("{e}");
    assert!(e.contains("model.layers.1.self_attn.q_proj.weight") && e.contains("[16, 64]") && e.contains("[32, 32]"), "{e}");
}

#[test]
fn missing_tensor_is_named() {
    let tmp = edit("roberta-cls", |t| t.retain(|x| x.0 != "roberta.encoder.layer.1.output.LayerNorm.bias"));
    let e = load_err(tmp.path());
    println!("{e}");
    assert!(e.contains("missing tensor `roberta.encoder.layer.1.output.LayerNorm.bias`"), "{e}");
    // Untied LLaMA without lm_head.
    let tmp = edit("llama-gqa", |t| t.retain(|x| x.0 != "lm_head.weight"));
    let e = load_err(tmp.path());
    assert!(e.contains("lm_head.weight"), "{e}");
}

#[test]
fn unknown_tensors_are_listed() {
    let tmp = edit("llama-tied", |t| {
        t.push(("model.layers.0.self_attn.rogue.weight".into(), safetensors::Dtype::F32, vec![2], vec![0; 8]));
    });
    let e = load_err(tmp.path());
    println!("{e}");
    assert!(e.contains("model.layers.0.self_attn.rogue.weight") && e.contains("unexpected"), "{e}");
}

#[test]
fn bad_configs_name_the_key() {
    let cases: [(&str, &str, &str); 6] = [
        ("llama-tied", r#"{"model_type": "llama", "hidden_size": 32"#, "invalid JSON"),
        ("llama-tied", r#"{"model_type":"llama","vocab_size":100,"hidden_size":32,"intermediate_size":37,"num_hidden_layers":2,"num_attention_heads":4,"hidden_act":"gelu"}"#, "hidden_act"),
        ("llama-tied", r#"{"model_type":"llama","vocab_size":100,"hidden_size":32,"intermediate_size":37,"num_hidden_layers":2,"num_attention_heads":4,"rope_scaling":{"type":"yarn","factor":2.0}}"#, "yarn"),
        ("llama-tied", r#"{"model_type":"llama","hidden_size":32,"intermediate_size":37,"num_hidden_layers":2,"num_attention_heads":4}"#, "vocab_size"),
        ("bert-tiny", r#"{"model_type":"gpt2"}"#, "gpt2"),
        ("bert-tiny", r#"{"model_type":"bert","vocab_size":100,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":37,"max_position_embeddings":64,"hidden_act":"mish"}"#, "hidden_act `mish`"),
    ];
    for (fx, cfg, needle) in cases {
        let tmp = copy_fixture(fx);
        std::fs::write(tmp.path().join("config.json"), cfg).unwrap();
        let e = load_err(tmp.path());
        println!("{e}");
        assert!(e.contains(needle) && e.contains("config.json"), "expected `{needle}` in: {e}");
    }
    // No weights at all.
    let tmp = copy_fixture("bert-tiny");
    std::fs::remove_file(tmp.path().join("model.safetensors")).unwrap();
    let e = load_err(tmp.path());
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn sharded_and_prefixless_checkpoints_load() {
    let r = reference("llama-gqa");
    let seqs = sequences(&r["inputs"]);
    let mask = ids_mask(&r["inputs"]);
    // Two shards + index.
    let tmp = copy_fixture("llama-gqa");
    let st = tmp.path().join("model.safetensors");
    let all = read_all(&st);
    std::fs::remove_file(&st).unwrap();
    let (a, b): (Tensors, Tensors) = all.into_iter().enumerate().partition(|(i, _)| i % 2 == 0).map2();
    write_all(&tmp.path().join("model-00001-of-00002.safetensors"), &a);
    write_all(&tmp.path().join("model-00002-of-00002.safetensors"), &b);
    let mut map = serde_json::Map::new();
    for (k, ..) in &a {
        map.insert(k.clone(), "model-00001-of-00002.safetensors".into());
    }
    for (k, ..) in &b {
        map.insert(k.clone(), "model-00002-of-00002.safetensors".into());
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(tmp.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    let out = load(tmp.path(), None).forward_ids(&seqs, None).unwrap();
    assert_close("sharded llama-gqa", out.logits.as_ref().unwrap(), &r["logits"], Some(&mask));
    // Bare LlamaModel key names (no `model.` prefix).
    let tmp = edit("llama-gqa", |t| t.iter_mut().for_each(|x| x.0 = x.0.trim_start_matches("model.").to_string()));
    let out = load(tmp.path(), None).forward_ids(&seqs, None).unwrap();
    assert_close("prefix-less llama-gqa", out.logits.as_ref().unwrap(), &r["logits"], Some(&mask));
    // RoBERTa classifier without the `roberta.` prefix.
    let r = reference("roberta-cls");
    let tmp = edit("roberta-cls", |t| t.iter_mut().for_each(|x| x.0 = x.0.trim_start_matches("roberta.").to_string()));
    let out = load(tmp.path(), None).forward_ids(&sequences(&r["inputs"]), None).unwrap();
    assert_close("prefix-less roberta", out.logits.as_ref().unwrap(), &r["logits"], None);
}

trait Map2 {
    fn map2(self) -> (Tensors, Tensors);
}
impl Map2 for (Vec<(usize, (String, safetensors::Dtype, Vec<usize>, Vec<u8>))>, Vec<(usize, (String, safetensors::Dtype, Vec<usize>, Vec<u8>))>) {
    fn map2(self) -> (Tensors, Tensors) {
        (self.0.into_iter().map(|x| x.1).collect(), self.1.into_iter().map(|x| x.1).collect())
    }
}
