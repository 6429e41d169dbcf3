//! Named host tensors read from / written to safetensors, with shape-checked, key-tracked
//! access so loaders can report missing, mis-shaped and unknown tensors by name.
use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{backend::Backend, DType, Shape, Tensor, TensorData};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use crate::{CoreError, Result};

/// Tensors by key, remembering which file they came from.
#[derive(Debug, Clone, Default)]
pub struct TensorMap {
    pub file: String,
    pub tensors: BTreeMap<String, TensorData>,
}

impl TensorMap {
    pub fn new(file: impl Into<String>) -> Self {
        TensorMap { file: file.into(), tensors: BTreeMap::new() }
    }

    pub fn insert(&mut self, key: impl Into<String>, data: TensorData) {
        self.tensors.insert(key.into(), data);
    }

    pub fn insert_tensor<B: Backend, const D: usize>(&mut self, key: impl Into<String>, t: Tensor<B, D>) {
        self.insert(key, t.into_data().convert::<f32>());
    }

    /// Removes and returns `key`, checking its shape.
    pub fn take(&mut self, key: &str, shape: &[usize]) -> Result<TensorData> {
        let data = self
            .tensors
            .remove(key)
            .ok_or_else(|| CoreError::MissingKey { file: self.file.clone(), key: key.to_string() })?;
        if data.shape.as_slice() != shape {
            return Err(CoreError::Shape {
                name: format!("{} in {}", key, self.file),
                expected: shape.to_vec(),
                found: data.shape.to_vec(),
            });
        }
        Ok(data)
    }

    pub fn take_tensor<B: Backend, const D: usize>(
        &mut self,
        key: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Result<Tensor<B, D>> {
        let data = self.take(key, &shape)?;
        Ok(Tensor::from_data(data.convert::<f32>(), device))
    }

    /// Errors if keys are left over (unknown to the loader).
    pub fn finish(self, method: &str) -> Result<()> {
        if self.tensors.is_empty() {
            Ok(())
        } else {
            Err(CoreError::UnknownKeys {
                file: self.file,
                method: method.to_string(),
                keys: self.tensors.into_keys().collect(),
            })
        }
    }
}

fn to_f32(view: &TensorView<'_>, key: &str, path: &Path) -> Result<Vec<f32>> {
    let bytes = view.data();
    let v = match view.dtype() {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        other => {
            return Err(CoreError::file(
                path,
                format!("tensor `{key}` has dtype {other:?}; expected F32, F16, BF16 or F64"),
            ))
        }
    };
    Ok(v)
}

/// Reads every tensor of a safetensors file as f32 host data.
pub fn read_safetensors(path: &Path) -> Result<TensorMap> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| CoreError::file(path, format!("not a valid safetensors file: {e}")))?;
    let mut map = TensorMap::new(path.display().to_string());
    for (key, view) in st.tensors() {
        let values = to_f32(&view, &key, path)?;
        let shape = view.shape().to_vec();
        map.insert(key, TensorData::new(values, Shape::from(shape)));
    }
    Ok(map)
}

/// Writes f32 tensors (converting whatever dtype they hold) atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, TensorData>,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<()> {
    let mut owned: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::with_capacity(tensors.len());
    for (k, d) in tensors {
        let d = if d.dtype == DType::F32 { d.clone() } else { d.clone().convert::<f32>() };
        let vals = d.to_vec::<f32>().map_err(|e| CoreError::file(path, format!("{k}: {e:?}")))?;
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        owned.push((k.clone(), bytes, d.shape.to_vec()));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(k, b, s)| (k.clone(), TensorView::new(Dtype::F32, s.clone(), b).expect("consistent view")))
        .collect();
    let bytes = safetensors::serialize(views, metadata)
        .map_err(|e| CoreError::file(path, format!("serialising safetensors: {e}")))?;
    write_atomic(path, &bytes)
}

/// Writes a file via a temporary sibling and a rename, so readers never see a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| CoreError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| CoreError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CoreError::io(path, e))
}
