//! End-to-end tests of `forward`, `merge` and `generate` through the binary, on the HF/PEFT
//! fixtures (references made by scripts/make_fixtures.py with transformers + peft).
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lorta-experiments"))
}
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lorta-models/tests/fixtures").join(name)
}
fn run_ok(args: &[&str]) -> String {
    let o = bin().args(args).output().unwrap();
    assert!(o.status.success(), "{args:?} failed:\n{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}
fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
fn flat(v: &serde_json::Value, out: &mut Vec<f64>) {
    match v {
        serde_json::Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
        serde_json::Value::Number(n) => out.push(n.as_f64().unwrap()),
        _ => {}
    }
}
fn max_rel(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    flat(a, &mut x);
    flat(b, &mut y);
    assert_eq!(x.len(), y.len());
    let scale = y.iter().fold(0f64, |m, v| m.max(v.abs()));
    x.iter().zip(&y).fold(0f64, |m, (p, q)| m.max((p - q).abs())) / scale
}

/// `forward --adapter` on the base equals HF+PEFT's logits, and `forward` on the `merge`d folder
/// equals `forward --adapter` (paper-layout LoRTA and PEFT LoRA).
#[test]
fn forward_merge_forward_matches_peft_reference() {
    for name in ["llama-lorta", "llama-lora"] {
        let tmp = tempfile::tempdir().unwrap();
        let base = fixture("llama-tied");
        let adapter = fixture(name).join("adapter");
        let reference = json(&fixture(name).join("reference.json"));
        // the reference's first row is unpadded: compare it exactly as HF computed it
        let ids: Vec<String> = reference["inputs"]["input_ids"][0]
            .as_array()
            .unwrap()
            .iter()
            .zip(reference["inputs"]["attention_mask"][0].as_array().unwrap())
            .filter(|(_, m)| m.as_i64() == Some(1))
            .map(|(i, _)| i.to_string())
            .collect();
        let ids = ids.join(",");
        let (a, m, b) = (tmp.path().join("adapted.json"), tmp.path().join("merged"), tmp.path().join("merged.json"));
        run_ok(&["forward", "--model", base.to_str().unwrap(), "--adapter", adapter.to_str().unwrap(), "--ids", &ids, "--out", a.to_str().unwrap()]);
        run_ok(&["merge", "--model", base.to_str().unwrap(), "--adapter", adapter.to_str().unwrap(), "--out", m.to_str().unwrap()]);
        run_ok(&["forward", "--model", m.to_str().unwrap(), "--ids", &ids, "--out", b.to_str().unwrap()]);
        let (adapted, merged) = (json(&a), json(&b));
        let n = ids.split(',').count();
        let want: Vec<serde_json::Value> = reference["logits"][0].as_array().unwrap()[..n].to_vec();
        let want = serde_json::Value::Array(vec![serde_json::Value::Array(want)]);
        assert!(max_rel(&adapted["logits"], &want) < 1e-4, "{name}: forward --adapter vs HF/PEFT");
        assert!(max_rel(&merged["logits"], &adapted["logits"]) < 1e-4, "{name}: merged vs adapter");
    }
}

/// Greedy `generate` reproduces transformers' `generate` ids (with the PEFT LoRA adapter).
#[test]
fn generate_matches_transformers_greedy_ids() {
    let reference = json(&fixture("llama-lora").join("reference.json"));
    let prompt: Vec<String> = reference["generate"]["prompt_ids"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
    let want: Vec<u64> = reference["generate"]["output_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let n = reference["generate"]["max_new_tokens"].as_u64().unwrap().to_string();
    let out = run_ok(&[
        "generate",
        "--model",
        fixture("llama-tied").to_str().unwrap(),
        "--adapter",
        fixture("llama-lora").join("adapter").to_str().unwrap(),
        "--prompt-ids",
        &prompt.join(","),
        "--max-new-tokens",
        &n,
    ]);
    let joined = want.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",");
    assert!(out.lines().any(|l| l.trim() == format!("ids: {joined}")), "generate printed {out}, expected ids {joined}");
}

/// Values of a fixture's `reference.safetensors` tensor (flat, row-major).
fn reference_tensor(name: &str, key: &str) -> Vec<f64> {
    let mut w = lorta_models::weights::Weights::open(&[fixture(name).join("reference.safetensors")]).unwrap();
    let (_, shape, _) = w.raw(key).unwrap();
    w.take(key, &shape).unwrap().to_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
}
fn max_rel_flat(ours: &serde_json::Value, reference: &[f64]) -> f64 {
    let mut x = Vec::new();
    flat(ours, &mut x);
    assert_eq!(x.len(), reference.len());
    let scale = reference.iter().fold(0f64, |m, v| m.max(v.abs()));
    x.iter().zip(reference).fold(0f64, |m, (p, q)| m.max((p - q).abs())) / scale
}

/// `forward --text` on ESM-2 (ESM alphabet, `<cls> … <eos>`, right padding) and on ESMFold
/// (one-letter sequences, `--recycles 1`) equals transformers.
#[test]
fn forward_esm_and_esmfold_texts_match_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("esm.json");
    let esm = fixture("esm-tiny");
    run_ok(&["forward", "--model", esm.to_str().unwrap(), "--text", "MKTAYIAKQR", "--text", "GS<mask>LJV", "--text", "ACDE", "--out", out.to_str().unwrap()]);
    let got = json(&out);
    let reference = json(&esm.join("reference.json"));
    assert_eq!(got["input_ids"], reference["input_ids"]);
    let e = max_rel_flat(&got["last_hidden_state"], &reference_tensor("esm-tiny", "last_hidden_state"));
    assert!(e <= 1e-4, "ESM last_hidden_state: {e:.3e}");

    let fold = fixture("esmfold-tiny");
    let out = tmp.path().join("fold.json");
    run_ok(&["forward", "--model", fold.to_str().unwrap(), "--text", "MKTAYIAKQRW", "--text", "GSHLXVCE", "--recycles", "1", "--out", out.to_str().unwrap()]);
    let got = json(&out);
    for key in ["s_s", "s_z", "distogram_logits"] {
        let e = max_rel_flat(&got[key], &reference_tensor("esmfold-tiny", &format!("r1.{key}")));
        assert!(e <= 1e-4, "ESMFold {key}: {e:.3e}");
    }
    // positions of the structure module's last iteration (the reference stacks all of them)
    let all = reference_tensor("esmfold-tiny", "r1.positions");
    let e = max_rel_flat(&got["positions"], &all[all.len() / 2..]);
    assert!(e <= 1e-3, "ESMFold positions: {e:.3e}");
}
