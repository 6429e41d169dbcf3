//! Adapter folders written by real PEFT (and the paper's LoRTA layout) load with the exact key
//! names and shapes, and re-saving produces the same key set. Fixtures: lorta-models/tests/fixtures,
//! made by scripts/make_fixtures.py (torch + transformers + peft).
use std::path::PathBuf;

use burn::tensor::Tensor;
use lorta_core::io::{load_adapter, read_adapter_config, read_safetensors, save_adapter, WEIGHTS_FILE};
use lorta_core::{Adapter, ArchNaming, MatrixKind, Method, ModelShape, Site};

type B = burn_ndarray::NdArray<f32>;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lorta-models/tests/fixtures").join(name).join("adapter")
}

/// llama-tied: d = 32, h = 4, L = 2, d_ff = 37.
fn shape() -> ModelShape {
    ModelShape::new(32, 4, 2, 37)
}

fn check_round_trip(name: &str, method: Method, targets: &[MatrixKind]) {
    let dir = fixture(name);
    let naming = ArchNaming::Llama;
    let cfg = read_adapter_config(&dir, &naming).unwrap();
    assert_eq!(cfg.config.method(), method);
    assert_eq!(cfg.config.targets(), targets);
    let set = load_adapter::<B>(&dir, &shape(), &naming, &Default::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    save_adapter(&set, out.path(), &naming, cfg.base_model.as_deref()).unwrap();
    let a = read_safetensors(&dir.join(WEIGHTS_FILE)).unwrap();
    let b = read_safetensors(&out.path().join(WEIGHTS_FILE)).unwrap();
    let keys_a: Vec<_> = a.tensors.iter().map(|(k, v)| (k.clone(), v.shape.to_vec())).collect();
    let keys_b: Vec<_> = b.tensors.iter().map(|(k, v)| (k.clone(), v.shape.to_vec())).collect();
    assert_eq!(keys_a, keys_b, "{name}: same PEFT keys and shapes after a round trip");
    for (k, v) in &a.tensors {
        assert_eq!(v.to_vec::<f32>().unwrap(), b.tensors[k].to_vec::<f32>().unwrap(), "{name}: {k} values");
    }
    // and our config file reads back to the same config
    assert_eq!(read_adapter_config(out.path(), &naming).unwrap().config, cfg.config);
}

#[test]
fn peft_lora_folder() {
    check_round_trip("llama-lora", Method::Lora, &MatrixKind::ATTENTION);
}

#[test]
fn peft_ia3_folder() {
    check_round_trip("llama-ia3", Method::Ia3, &[MatrixKind::Key, MatrixKind::Value, MatrixKind::FfnDown]);
}

#[test]
fn peft_vera_folder() {
    check_round_trip("llama-vera", Method::Vera, &[MatrixKind::Query, MatrixKind::Value]);
}

#[test]
fn paper_lorta_folder_and_its_delta_w() {
    check_round_trip("llama-lorta", Method::Lorta, &MatrixKind::ATTENTION);
    let set = load_adapter::<B>(&fixture("llama-lorta"), &shape(), &ArchNaming::Llama, &Default::default()).unwrap();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("llama-lorta").parent().unwrap().join("reference.json")).unwrap(),
    )
    .unwrap();
    let want: Vec<f64> = reference["delta_w_l1_v"]["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let scaling = 8.0 / 4.0; // lora_alpha / r
    let got: Tensor<B, 2> = set.delta_weight(Site::new(1, MatrixKind::Value)).unwrap();
    let got: Vec<f32> = got.into_data().to_vec().unwrap();
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (g, w) in got.iter().zip(&want) {
        assert!((*g as f64 / scaling - w).abs() / scale < 1e-5, "ΔW(l=1, v): {g} vs {w}");
    }
}
