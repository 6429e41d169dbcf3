//! Checkpoint tensors: memory-mapped safetensors files (single or sharded), looked up by name
//! with an optional module prefix (`bert.`, `roberta.`, `model.`), converted to f32 host data
//! on demand. Every taken key is tracked so the loader can report unknown leftovers.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Shape, TensorData};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::{ModelError, Result};

#[derive(Clone, Debug)]
struct Entry {
    /// Index into `files`, or [`FROM_SOURCE`].
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
}

/// `Entry::file` of tensors served by a [`TensorSource`].
const FROM_SOURCE: usize = usize::MAX;

/// Tensors of a non-safetensors checkpoint (GGUF, llama2.c), converted to f32 on demand, under
/// Hugging Face names and in Hugging Face layout. Lets those formats reuse the safetensors
/// loaders' [`Builder`](crate::nn::Builder) path unchanged (same modules, same adapter sites).
pub trait TensorSource: Send {
    /// The file, for messages.
    fn path(&self) -> &Path;
    /// HF names and shapes of every tensor.
    fn tensors(&self) -> Vec<(String, Vec<usize>)>;
    /// Values of one tensor (row-major in the shape from [`tensors`](Self::tensors)).
    fn read_f32(&self, name: &str) -> Result<Vec<f32>>;
}

/// All tensors of a checkpoint. Keys are stored as in the files.
pub struct Weights {
    files: Vec<(PathBuf, Mmap)>,
    source: Option<Box<dyn TensorSource>>,
    index: BTreeMap<String, Entry>,
    taken: Vec<String>,
    prefix: String,
    strip: String,
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weights").field("files", &self.display()).field("tensors", &self.index.len()).finish()
    }
}

/// The dtypes model weights may be stored in.
pub fn is_float(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64)
}

/// Little-endian float bytes to f32.
pub fn bytes_to_f32(bytes: &[u8], dtype: Dtype) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        _ => return None,
    })
}

/// f32 values to little-endian bytes of `dtype` (F32, F16, BF16 or F64).
pub fn f32_to_bytes(values: &[f32], dtype: Dtype) -> Option<Vec<u8>> {
    Some(match dtype {
        Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::F16 => values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
        Dtype::BF16 => values.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect(),
        Dtype::F64 => values.iter().flat_map(|v| (*v as f64).to_le_bytes()).collect(),
        _ => return None,
    })
}

impl Weights {
    /// Memory-maps and validates the files (header, offsets, file length).
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut index = BTreeMap::new();
        for (i, path) in paths.iter().enumerate() {
            let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
            // SAFETY: the map is read-only; a concurrent writer truncating the file is outside
            // what any checkpoint loader can defend against.
            let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
            let st = SafeTensors::deserialize(&mmap).map_err(|e| {
                ModelError::file(path, format!("not a valid safetensors file (truncated or corrupt?): {e}"))
            })?;
            for (name, view) in st.tensors() {
                if index.contains_key(&name) {
                    return Err(ModelError::file(path, format!("tensor `{name}` appears in more than one shard")));
                }
                index.insert(name, Entry { file: i, dtype: view.dtype(), shape: view.shape().to_vec() });
            }
            files.push((path.clone(), mmap));
        }
        Ok(Weights { files, index, source: None, taken: Vec::new(), prefix: String::new(), strip: String::new() })
    }

    /// Weights served by a [`TensorSource`] (GGUF, llama2.c).
    pub fn from_source(source: Box<dyn TensorSource>) -> Self {
        let index = source
            .tensors()
            .into_iter()
            .map(|(name, shape)| (name, Entry { file: FROM_SOURCE, dtype: Dtype::F32, shape }))
            .collect();
        Weights { files: Vec::new(), index, source: Some(source), taken: Vec::new(), prefix: String::new(), strip: String::new() }
    }

    /// The file (or files) for messages.
    pub fn display(&self) -> String {
        if let Some(s) = &self.source {
            return s.path().display().to_string();
        }
        match self.files.as_slice() {
            [(p, _)] => p.display().to_string(),
            many => {
                let dir = many.first().and_then(|(p, _)| p.parent()).map(|d| d.display().to_string()).unwrap_or_default();
                format!("{dir} ({} safetensors shards)", many.len())
            }
        }
    }

    /// Keys not taken yet, as stored.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// Every key, taken or not.
    pub fn all_keys(&self) -> Vec<String> {
        let mut v: Vec<String> = self.index.keys().cloned().chain(self.taken.iter().cloned()).collect();
        v.sort();
        v
    }

    /// Names are looked up as `prefix + name`, then as `name`.
    pub fn set_prefix(&mut self, prefix: impl Into<String>) {
        self.prefix = prefix.into();
    }
    /// Names starting with `strip` are also looked up without it (bare `LlamaModel`
    /// checkpoints store `layers.…` for `model.layers.…`).
    pub fn set_strip(&mut self, strip: impl Into<String>) {
        self.strip = strip.into();
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The stored key for a model name, if present (and not taken).
    pub fn resolve(&self, name: &str) -> Option<String> {
        let full = format!("{}{}", self.prefix, name);
        if self.index.contains_key(&full) {
            Some(full)
        } else if self.index.contains_key(name) {
            Some(name.to_string())
        } else {
            name.strip_prefix(self.strip.as_str())
                .filter(|_| !self.strip.is_empty())
                .filter(|n| self.index.contains_key(*n))
                .map(String::from)
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    /// Stored dtype and shape of a key (as stored, no prefix logic).
    pub fn info(&self, key: &str) -> Option<(Dtype, Vec<usize>)> {
        self.index.get(key).map(|e| (e.dtype, e.shape.clone()))
    }

    /// The most common float dtype of the weights (the checkpoint's storage dtype).
    pub fn storage_dtype(&self) -> Dtype {
        let mut counts: BTreeMap<String, (usize, Dtype)> = BTreeMap::new();
        for e in self.index.values().filter(|e| is_float(e.dtype)) {
            counts.entry(format!("{:?}", e.dtype)).or_insert((0, e.dtype)).0 += 1;
        }
        counts.into_values().max_by_key(|(n, _)| *n).map(|(_, d)| d).unwrap_or(Dtype::F32)
    }

    /// Raw bytes of a stored key.
    pub fn raw(&self, key: &str) -> Result<(Dtype, Vec<usize>, &[u8])> {
        let e = self
            .index
            .get(key)
            .ok_or_else(|| ModelError::MissingTensor { file: self.display(), key: key.to_string() })?;
        if e.file == FROM_SOURCE {
            return Err(ModelError::file(self.display(), format!("tensor `{key}` is not stored as safetensors bytes")));
        }
        let (path, mmap) = &self.files[e.file];
        let st = SafeTensors::deserialize(mmap).map_err(|err| ModelError::file(path, format!("{err}")))?;
        let view = st.tensor(key).map_err(|err| ModelError::file(path, format!("tensor `{key}`: {err}")))?;
        Ok((view.dtype(), view.shape().to_vec(), view.data()))
    }

    fn file_of(&self, key: &str) -> String {
        match self.index.get(key) {
            Some(e) if e.file != FROM_SOURCE => self.files[e.file].0.display().to_string(),
            _ => self.display(),
        }
    }

    /// Removes `name` and returns its values as f32, checking the shape.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<TensorData> {
        let key = self.resolve(name).ok_or_else(|| ModelError::MissingTensor {
            file: self.display(),
            key: format!("{}{}", self.prefix, name),
        })?;
        let file = self.file_of(&key);
        let values = match (&self.source, self.index.get(&key)) {
            (Some(source), Some(e)) if e.file == FROM_SOURCE => {
                if e.shape.as_slice() != shape {
                    return Err(ModelError::Shape { file, key, expected: shape.to_vec(), found: e.shape.clone() });
                }
                let v = source.read_f32(&key)?;
                if v.len() != shape.iter().product::<usize>() {
                    return Err(ModelError::file(&file, format!("tensor `{key}`: {} values for shape {shape:?}", v.len())));
                }
                v
            }
            _ => {
                let (dtype, found, bytes) = self.raw(&key)?;
                if found.as_slice() != shape {
                    return Err(ModelError::Shape { file, key, expected: shape.to_vec(), found });
                }
                bytes_to_f32(bytes, dtype).ok_or_else(|| {
                    ModelError::file(&file, format!("tensor `{key}` has dtype {dtype:?}; expected F32, F16, BF16 or F64"))
                })?
            }
        };
        self.index.remove(&key);
        self.taken.push(key);
        Ok(TensorData::new(values, Shape::from(shape.to_vec())))
    }

    /// Drops keys the model knowingly ignores (e.g. `lm_head.*` of a masked-LM checkpoint).
    pub fn ignore(&mut self, pred: impl Fn(&str) -> bool) {
        let drop: Vec<String> = self.index.keys().filter(|k| pred(k)).cloned().collect();
        for k in drop {
            self.index.remove(&k);
        }
    }

    /// Errors if tensors are left over.
    pub fn finish(self, arch: &str) -> Result<()> {
        if self.index.is_empty() {
            Ok(())
        } else {
            Err(ModelError::UnknownTensors { file: self.display(), arch: arch.to_string(), keys: self.index.into_keys().collect() })
        }
    }
}

/// Path of a safetensors file for messages.
pub fn show(path: &Path) -> String {
    path.display().to_string()
}
