//! `generate` / `forward` on GGUF and llama2.c files through the binary: llama2.c stories260K
//! (../shared/data/llama2c, or `$LORTA_SHARED_DATA`) reproduces `run.c`'s greedy text, `--chat`
//! renders the GGUF chat template, `forward` on a GGUF equals transformers' logits, and a
//! corrupt GGUF fails with a message naming the file.
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lorta-experiments"))
}
fn gguf_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lorta-models/tests/fixtures/gguf").join(name)
}
fn run_ok(args: &[&str]) -> String {
    let o = bin().args(args).output().unwrap();
    assert!(o.status.success(), "{args:?} failed:\n{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}
fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}
fn ids_line(out: &str) -> Vec<u64> {
    let line = out.lines().find_map(|l| l.trim().strip_prefix("ids: ")).unwrap_or_else(|| panic!("no ids line in {out}"));
    line.split(',').map(|s| s.parse().unwrap()).collect()
}

#[test]
fn generate_llama2c_greedy_reproduces_run_c() {
    let base = std::env::var_os("LORTA_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    if !base.is_dir() {
        println!("SKIPPED generate_llama2c_greedy_reproduces_run_c: shared data folder {} not found (set LORTA_SHARED_DATA)", base.display());
        return;
    }
    let dir = base.join("llama2c");
    let reference = json(&dir.join("reference/reference.json"));
    let want: Vec<u64> = reference["greedy_from_bos_64_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let model = dir.join("stories260K.bin");
    let tok = dir.join("tok512.bin");
    let n = (want.len() - 1).to_string();
    let out = run_ok(&["generate", "--model", model.to_str().unwrap(), "--tokenizer", tok.to_str().unwrap(), "--prompt-ids", "1", "--greedy", "--max-new-tokens", &n]);
    assert_eq!(ids_line(&out), want);
    assert_eq!(out.lines().next().unwrap(), reference["greedy_from_bos_64_text"].as_str().unwrap().lines().next().unwrap());
    assert!(out.starts_with(reference["greedy_from_bos_64_text"].as_str().unwrap()), "{out}");
    // --prompt text is encoded with BOS like run.c
    let out = run_ok(&["generate", "--model", model.to_str().unwrap(), "--tokenizer", tok.to_str().unwrap(), "--prompt", "Once upon a time", "--max-new-tokens", "3"]);
    assert_eq!(ids_line(&out)[..4], want[..4]);
    // without --tokenizer a text prompt is refused with the reason
    let o = bin().args(["generate", "--model", model.to_str().unwrap(), "--prompt", "Once"]).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--tokenizer"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn gguf_chat_and_forward_match_transformers() {
    let r = json(&gguf_fixture("tiny-llama.json"));
    let model = gguf_fixture("tiny-llama.gguf");
    let m = model.to_str().unwrap();
    let chat_ids: Vec<u64> = r["chat_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let out = run_ok(&["generate", "--model", m, "--chat", "What is the capital of France?", "--greedy", "--max-new-tokens", "3"]);
    let ids = ids_line(&out);
    assert_eq!(ids[..chat_ids.len()], chat_ids[..], "--chat prompt ids differ from transformers' chat template + tokenizer");
    assert!(ids.len() > chat_ids.len() && ids.len() <= chat_ids.len() + 3);

    let tmp = tempfile::tempdir().unwrap();
    let seq: Vec<String> = r["logit_inputs"][0].as_array().unwrap().iter().map(|v| v.to_string()).collect();
    let o = tmp.path().join("f.json");
    run_ok(&["forward", "--model", m, "--ids", &seq.join(","), "--out", o.to_str().unwrap()]);
    let got = json(&o);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for row in got["logits"][0].as_array().unwrap() {
        a.extend(row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()));
    }
    for row in r["logits"][0].as_array().unwrap() {
        b.extend(row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()));
    }
    let scale = b.iter().fold(0f64, |s, v| s.max(v.abs()));
    let err = a.iter().zip(&b).fold(0f64, |s, (x, y)| s.max((x - y).abs())) / scale;
    assert!(a.len() == b.len() && err <= 1e-3, "forward on GGUF: relative error {err}");
    // forward --text uses the GGUF tokenizer
    run_ok(&["forward", "--model", m, "--text", "What is the capital of France?", "--out", o.to_str().unwrap()]);
    assert_eq!(json(&o)["input_ids"][0], r["text_ids"][0]);

    // a truncated file: non-zero exit, the file and the tensor named
    let bad = tmp.path().join("cut.gguf");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() - 100]).unwrap();
    let o = bin().args(["generate", "--model", bad.to_str().unwrap(), "--prompt-ids", "1"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("cut.gguf") && err.contains("truncated") && err.contains("tensor `"), "{err}");
}
