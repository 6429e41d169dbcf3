//! Merging an adapter into a checkpoint: writes an HF-layout folder (the source's config and
//! tokenizer files + one `model.safetensors`) with the same tensor names and dtypes, every
//! adapted linear map replaced by its merged weight `W'` and bias `b'`:
//! `W' = merge_weight(W)`, `b' = adapted(0) = adapt_output(0, b)` (so IA3's output scaling of a
//! biased layer is merged exactly). Untouched tensors are copied byte for byte.
use std::borrow::Cow;
use std::path::Path;

use burn::tensor::{backend::Backend, Tensor, TensorData};
use lorta_core::{Adapter, ArchNaming, MatrixKind, ModelShape};
use safetensors::tensor::TensorView;

use crate::bert::{bert_naming, BertConfig};
use crate::error::{ModelError, Result};
use crate::hub::{ModelDir, SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE};
use crate::llama::LlamaConfig;
use crate::load::{detect_architecture, Architecture};
use crate::weights::{bytes_to_f32, f32_to_bytes, Weights};

/// A tensor to write: key, dtype, shape, bytes.
type OutTensor<'a> = (String, safetensors::Dtype, Vec<usize>, Cow<'a, [u8]>);

/// What was merged.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeSummary {
    pub method: String,
    pub merged_tensors: Vec<String>,
    pub copied_tensors: usize,
}

/// Merges `adapter_dir` into the checkpoint at `model_dir`, writing `out_dir`.
pub fn merge_adapter<B: Backend>(model_dir: &Path, adapter_dir: &Path, out_dir: &Path, device: &B::Device) -> Result<MergeSummary> {
    let md = ModelDir::new(model_dir)?;
    let cfg = md.config()?;
    let weights = Weights::open(&md.weight_files()?)?;
    let (shape, naming): (ModelShape, ArchNaming) = match detect_architecture(&cfg)? {
        Architecture::CausalLm => (LlamaConfig::from_json(&cfg)?.shape(), ArchNaming::Llama),
        Architecture::Esm => {
            let prefix = if weights.keys().any(|k| k.starts_with("esm.")) { "esm." } else { "" };
            (crate::esm::EsmConfig::from_json(&cfg)?.shape(), ArchNaming::Bert { prefix: prefix.into() })
        }
        Architecture::ProteinFolding => {
            return Err(crate::error::ModelError::config(md.config_path(), "merging adapters into ESMFold checkpoints is not supported (trunk adapters use split q/k/v sites)"));
        }
        arch => {
            let c = BertConfig::from_json(&cfg)?;
            (c.shape(), bert_naming(Some(&weights), &c, arch == Architecture::SequenceClassification))
        }
    };
    let adapter = lorta_core::io::load_adapter::<B>(adapter_dir, &shape, &naming, device)?;
    // Keys of a site's weight/bias in this checkpoint (bare LLaMA checkpoints lack `model.`).
    let resolve = |name: String| -> Option<String> {
        if weights.info(&name).is_some() {
            return Some(name);
        }
        name.strip_prefix("model.").filter(|n| weights.info(n).is_some()).map(String::from)
    };
    let mut replaced: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    let kinds = [MatrixKind::Query, MatrixKind::Key, MatrixKind::Value, MatrixKind::Output, MatrixKind::FfnDown];
    for site in shape.sites(&kinds) {
        if !adapter.adapts(site) {
            continue;
        }
        let path = naming.module_path(site);
        let wkey = resolve(format!("{path}.weight"))
            .ok_or_else(|| ModelError::MissingTensor { file: weights.display(), key: format!("{path}.weight") })?;
        let (dtype, wshape, bytes) = weights.raw(&wkey)?;
        let (d_in, d_out) = shape.dims(site.kind);
        if wshape != [d_out, d_in] {
            return Err(ModelError::Shape { file: weights.display(), key: wkey, expected: vec![d_out, d_in], found: wshape });
        }
        let values = bytes_to_f32(bytes, dtype)
            .ok_or_else(|| ModelError::file(model_dir, format!("tensor `{wkey}` has non-float dtype {dtype:?}")))?;
        let w = Tensor::<B, 2>::from_data(TensorData::new(values, [d_out, d_in]), device);
        let merged = adapter.merge_weight(site, w);
        replaced.insert(wkey.clone(), encode(merged, dtype, &wkey)?);
        if let Some(bkey) = resolve(format!("{path}.bias")) {
            let (bd, _, bb) = weights.raw(&bkey)?;
            let bv = bytes_to_f32(bb, bd).ok_or_else(|| ModelError::file(model_dir, format!("tensor `{bkey}` has non-float dtype {bd:?}")))?;
            let bias = Tensor::<B, 2>::from_data(TensorData::new(bv, [1, d_out]), device);
            let zero = Tensor::<B, 2>::zeros([1, d_in], device);
            let merged_b = adapter.adapt_output(site, zero, bias);
            replaced.insert(bkey.clone(), encode(merged_b, bd, &bkey)?);
        }
    }
    std::fs::create_dir_all(out_dir).map_err(|e| ModelError::io(out_dir, e))?;
    let keys = weights.all_keys();
    let mut owned: Vec<OutTensor<'_>> = Vec::with_capacity(keys.len());
    for k in &keys {
        let (dtype, shape, bytes) = weights.raw(k)?;
        let data = match replaced.get(k) {
            Some(b) => Cow::Owned(b.clone()),
            None => Cow::Borrowed(bytes),
        };
        owned.push((k.clone(), dtype, shape, data));
    }
    let views = owned
        .iter()
        .map(|(k, d, s, b)| {
            TensorView::new(*d, s.clone(), b).map(|v| (k.clone(), v)).map_err(|e| ModelError::file(out_dir, format!("tensor `{k}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let out_file = out_dir.join(SAFETENSORS_FILE);
    let tmp = out_dir.join(".model.safetensors.tmp");
    safetensors::serialize_to_file(views, Some(meta), &tmp).map_err(|e| ModelError::file(&tmp, format!("writing safetensors: {e}")))?;
    std::fs::rename(&tmp, &out_file).map_err(|e| ModelError::io(&out_file, e))?;
    // Config, tokenizer and generation files travel along; weights do not.
    let entries = std::fs::read_dir(&md.path).map_err(|e| ModelError::io(&md.path, e))?;
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        let is_weights = name.ends_with(".safetensors") || name == SAFETENSORS_INDEX_FILE || name.ends_with(".bin") || name.ends_with(".pt");
        if p.is_file() && !is_weights && name != "reference.json" {
            std::fs::copy(&p, out_dir.join(&name)).map_err(|err| ModelError::io(&p, err))?;
        }
    }
    Ok(MergeSummary {
        method: adapter.method().label().to_string(),
        copied_tensors: keys.len() - replaced.len(),
        merged_tensors: replaced.into_keys().collect(),
    })
}

fn encode<B: Backend, const D: usize>(t: Tensor<B, D>, dtype: safetensors::Dtype, key: &str) -> Result<Vec<u8>> {
    let v = t.into_data().convert::<f32>().to_vec::<f32>().map_err(|e| ModelError::input(format!("{key}: {e:?}")))?;
    f32_to_bytes(&v, dtype).ok_or_else(|| ModelError::input(format!("{key}: cannot write dtype {dtype:?}")))
}
