//! Checkpoints: one safetensors file holding the trainable parameters (`param.<path>`), the
//! optimizer moments (`adamw.{m,v}.<path>`) and, in its metadata under `state`, the JSON
//! [`FitState`](super::fit::FitState) (step, epoch, position in the epoch's shuffled order,
//! metrics so far, optimizer step counts, the settings it was trained with). Written
//! atomically, so a run killed at any moment leaves either the previous or the new checkpoint.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use burn::tensor::{Shape, TensorData};
use safetensors::SafeTensors;

pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
const STATE_KEY: &str = "lorta.train_state";

/// Writes `params` (as `param.<path>`), `optimizer` tensors (keys kept) and `state` (JSON).
pub fn save(
    path: &Path,
    params: &BTreeMap<String, TensorData>,
    optimizer: &BTreeMap<String, TensorData>,
    state: &serde_json::Value,
) -> Result<()> {
    let mut all = BTreeMap::new();
    for (k, v) in params {
        all.insert(format!("param.{k}"), v.clone());
    }
    for (k, v) in optimizer {
        all.insert(k.clone(), v.clone());
    }
    let mut meta = HashMap::new();
    meta.insert(STATE_KEY.to_string(), serde_json::to_string(state)?);
    lorta_core::io::write_safetensors(path, &all, Some(meta))
        .with_context(|| format!("writing checkpoint {}", path.display()))
}

/// A loaded checkpoint: parameters (keys without the `param.` prefix), optimizer tensors and state.
pub struct Loaded {
    pub params: BTreeMap<String, TensorData>,
    pub optimizer: BTreeMap<String, TensorData>,
    pub state: serde_json::Value,
}

pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("{}: not a valid checkpoint (safetensors header: {e})", path.display()))?;
    let state_text = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STATE_KEY))
        .ok_or_else(|| anyhow!("{}: no `{STATE_KEY}` in the safetensors metadata; not a training checkpoint", path.display()))?;
    let state: serde_json::Value = serde_json::from_str(state_text)
        .with_context(|| format!("{}: training state metadata is not valid JSON", path.display()))?;
    let map = lorta_core::io::read_safetensors(path)?;
    let mut params = BTreeMap::new();
    let mut optimizer = BTreeMap::new();
    for (k, v) in map.tensors {
        if let Some(p) = k.strip_prefix("param.") {
            params.insert(p.to_string(), v);
        } else {
            optimizer.insert(k, v);
        }
    }
    Ok(Loaded { params, optimizer, state })
}

/// Helper for tests.
pub fn tensor(values: Vec<f32>, shape: &[usize]) -> TensorData {
    TensorData::new(values, Shape::from(shape.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(CHECKPOINT_FILE);
        let mut params = BTreeMap::new();
        params.insert("encoder.adapter.a".to_string(), tensor(vec![1.0, -2.5, 3.25, 0.0], &[2, 2]));
        let mut opt = BTreeMap::new();
        opt.insert("adamw.m.encoder.adapter.a".to_string(), tensor(vec![0.1, 0.2, 0.3, 0.4], &[4]));
        let state = serde_json::json!({"global_step": 7, "epoch": 1, "history": [{"accuracy": 0.5}]});
        save(&p, &params, &opt, &state).unwrap();
        let l = load(&p).unwrap();
        assert_eq!(l.params, params);
        assert_eq!(l.optimizer, opt);
        assert_eq!(l.state, state);
        std::fs::write(&p, b"garbage").unwrap();
        let e = load(&p).err().unwrap().to_string();
        assert!(e.contains(CHECKPOINT_FILE) && e.contains("not a valid checkpoint"), "{e}");
        let e = load(&d.path().join("nope.safetensors")).err().unwrap().to_string();
        assert!(e.contains("nope.safetensors"), "{e}");
    }
}
