//! Adapter folders: `adapter_config.json` + `adapter_model.safetensors`, in PEFT's layout
//! (LoRA, IA3, VeRA: PEFT can read ours and we read PEFT's) and the paper's LoRTA layout
//! (`peft_type: LORTA`); our other methods use the same shape with their own `peft_type`.
use std::path::Path;

use burn::tensor::backend::Backend;
use serde_json::{json, Map, Value};

use super::tensors::{read_safetensors, write_atomic, write_safetensors};
use crate::site::{ArchNaming, MatrixKind, ModelShape};
use crate::tuners::{Adapter, AdapterConfig, AdapterSet, Method};
use crate::{CoreError, Result};

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// A parsed `adapter_config.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterFile {
    pub config: AdapterConfig,
    pub base_model: Option<String>,
}

/// Converts our config to the file's JSON (PEFT field names where PEFT has them).
pub fn config_to_json(config: &AdapterConfig, naming: &ArchNaming, base_model: Option<&str>) -> Value {
    let mut v = serde_json::to_value(config).expect("serialisable config");
    let obj = v.as_object_mut().expect("object");
    obj.remove("method");
    let targets: Vec<String> = config.targets().iter().map(|&k| naming.target_name(k).to_string()).collect();
    obj.remove("targets");
    let mut out = Map::new();
    out.insert("peft_type".into(), json!(config.method().peft_type()));
    out.insert("target_modules".into(), json!(targets));
    out.insert("base_model_name_or_path".into(), json!(base_model));
    if let Some(a) = obj.remove("alpha") {
        out.insert("lora_alpha".into(), a);
    }
    match config.method() {
        Method::Lora => {
            out.insert("lora_dropout".into(), json!(0.0));
            out.insert("bias".into(), json!("none"));
            out.insert("fan_in_fan_out".into(), json!(false));
        }
        Method::Vera => {
            out.insert("save_projection".into(), json!(true));
            out.insert("projection_prng_key".into(), json!(0));
            out.insert("vera_dropout".into(), json!(0.0));
            out.insert("bias".into(), json!("none"));
        }
        Method::Ia3 => {
            let ff: Vec<&str> = config
                .targets()
                .iter()
                .filter(|&&k| k == MatrixKind::FfnDown)
                .map(|&k| naming.target_name(k))
                .collect();
            out.insert("feedforward_modules".into(), json!(ff));
        }
        _ => {}
    }
    for (k, val) in obj.iter() {
        out.insert(k.clone(), val.clone());
    }
    Value::Object(out)
}

/// Parses an `adapter_config.json` value (PEFT's or ours).
pub fn config_from_json(v: &Value, naming: &ArchNaming, file: &Path) -> Result<AdapterFile> {
    let err = |m: String| CoreError::file(file, m);
    let obj = v.as_object().ok_or_else(|| err("expected a JSON object".into()))?;
    let peft_type = obj
        .get("peft_type")
        .and_then(Value::as_str)
        .ok_or_else(|| err("missing string field `peft_type`".into()))?;
    let method = Method::from_peft_type(peft_type).ok_or_else(|| {
        err(format!("unsupported peft_type `{peft_type}` (supported: LORA, LORTA, VERA, IA3, FACT_TT, FACT_TK, LOTR, LORETTA_REP)"))
    })?;
    let names: Vec<String> = match obj.get("target_modules") {
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        Some(Value::String(s)) => {
            return Err(err(format!("target_modules given as a regex (`{s}`) is not supported; list the module names")))
        }
        _ => return Err(err("missing `target_modules`".into())),
    };
    let mut targets = Vec::new();
    for n in &names {
        let k = naming
            .parse_target(n)
            .ok_or_else(|| err(format!("target module `{n}` is not an adaptable site of this architecture")))?;
        targets.push(k);
    }
    // Canonical (q, k, v, o, ffn) order: LoRTA's C_m rows follow it, PEFT lists them sorted.
    targets.sort();
    let mut ours = Map::new();
    ours.insert("method".into(), serde_json::to_value(method).expect("method"));
    ours.insert("targets".into(), serde_json::to_value(&targets).expect("targets"));
    for (k, val) in obj {
        let key = match k.as_str() {
            "lora_alpha" => "alpha",
            "peft_type" | "target_modules" | "base_model_name_or_path" => continue,
            other => other,
        };
        if !val.is_null() {
            ours.insert(key.to_string(), val.clone());
        }
    }
    for pattern in ["rank_pattern", "alpha_pattern"] {
        if obj.get(pattern).and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
            return Err(err(format!("per-module `{pattern}` is not supported")));
        }
    }
    if method == Method::Lora {
        for (flag, what) in [("use_dora", "DoRA"), ("fan_in_fan_out", "fan_in_fan_out")] {
            if obj.get(flag).and_then(Value::as_bool) == Some(true) {
                return Err(err(format!("{what} LoRA adapters are not supported")));
            }
        }
    }
    let config: AdapterConfig = serde_json::from_value(Value::Object(ours))
        .map_err(|e| err(format!("invalid {peft_type} adapter config: {e}")))?;
    let base_model = obj.get("base_model_name_or_path").and_then(Value::as_str).map(String::from);
    Ok(AdapterFile { config, base_model })
}

/// Writes `dir/adapter_config.json` and `dir/adapter_model.safetensors` (atomically).
pub fn save_adapter<B: Backend>(
    adapter: &AdapterSet<B>,
    dir: &Path,
    naming: &ArchNaming,
    base_model: Option<&str>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| CoreError::io(dir, e))?;
    let cfg = config_to_json(&adapter.config(), naming, base_model);
    let text = serde_json::to_string_pretty(&cfg).expect("json");
    write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())?;
    let map = adapter.save_tensors(naming);
    write_safetensors(&dir.join(WEIGHTS_FILE), &map.tensors, None)
}

pub fn read_adapter_config(dir: &Path, naming: &ArchNaming) -> Result<AdapterFile> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| CoreError::io(&path, e))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| CoreError::file(&path, format!("invalid JSON: {e}")))?;
    config_from_json(&v, naming, &path)
}

/// Loads an adapter folder for a model of `shape`. Missing, mis-shaped and unknown tensors are
/// errors naming the key and file.
pub fn load_adapter<B: Backend>(
    dir: &Path,
    shape: &ModelShape,
    naming: &ArchNaming,
    device: &B::Device,
) -> Result<AdapterSet<B>> {
    let file = read_adapter_config(dir, naming)?;
    let set = file.config.init::<B>(shape, 0, device)?;
    let mut tensors = read_safetensors(&dir.join(WEIGHTS_FILE))?;
    let method = set.method();
    let set = set.load_tensors(&mut tensors, naming)?;
    tensors.finish(method.label())?;
    Ok(set)
}
