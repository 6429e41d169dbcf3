//! GGUF files (llama.cpp's format, versions 2 and 3) holding LLaMA-architecture models
//! (`general.architecture = "llama"`): header, metadata, tensor directory, dequantized tensors
//! ([`crate::ggml_quants`]) served under HF LLaMA names, the model config from `llama.*`
//! metadata and the tokenizer + chat template from `tokenizer.*` metadata.
//!
//! The parser is our own, over a memory map: the maintained crate we looked at
//! (`gguf-rs-lib` 0.3) reads only GGUF v3, and fails on an unknown tensor type or a truncated
//! payload with messages that name neither the tensor nor the type (`Unknown GGUF tensor type:
//! 99`, `UnexpectedEof`), while the format itself is ~100 lines to read; every error here names
//! the file and, where one is involved, the key or tensor and its type.
//!
//! Layout notes: GGUF dims are `ne = [ne0, ne1, …]` with `ne0` the contiguous axis, so a matrix
//! with `ne = [in, out]` is PyTorch's `[out, in]` row-major. llama.cpp's converter permutes
//! the rows of `attn_q` / `attn_k` for its interleaved RoPE; they are permuted back here
//! ([`interleaved_to_rotate_half_rows`]) so the weights match the HF checkpoint. No
//! `output.weight` means the LM head is tied to `token_embd.weight`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use memmap2::Mmap;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::error::{ModelError, Result};
use crate::ggml_quants::{dequantize, GgmlType, SUPPORTED};
use crate::llama::{interleaved_to_rotate_half_rows, LlamaConfig, LlamaForCausalLM, RopeScaling};
use crate::lm_tokenizer::{ChatTemplate, HfLmTokenizer, LmTokenizer, SpmLmTokenizer};
use crate::load::LoadOptions;
use crate::score_bpe::{PieceKind, ScoreBpeTokenizer, SPM_SPACE};
use crate::weights::{TensorSource, Weights};

pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<GgufValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl GgufValue {
    pub fn as_u64(&self) -> Option<u64> {
        Some(match *self {
            GgufValue::U8(v) => v as u64,
            GgufValue::U16(v) => v as u64,
            GgufValue::U32(v) => v as u64,
            GgufValue::U64(v) => v,
            GgufValue::I8(v) if v >= 0 => v as u64,
            GgufValue::I16(v) if v >= 0 => v as u64,
            GgufValue::I32(v) if v >= 0 => v as u64,
            GgufValue::I64(v) if v >= 0 => v as u64,
            _ => return None,
        })
    }
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v as f64),
            GgufValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(b) => Some(b),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// One entry of the tensor directory.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufTensorInfo {
    pub name: String,
    /// `ne0, ne1, …` (contiguous axis first).
    pub dims: Vec<usize>,
    pub ty: GgmlType,
    /// Offset from the start of the data section.
    pub offset: usize,
    pub n_bytes: usize,
}

impl GgufTensorInfo {
    pub fn n_elements(&self) -> usize {
        self.dims.iter().product()
    }
    /// Row-major (PyTorch) shape: the dims reversed.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().copied().collect()
    }
}

/// Bounds-checked little-endian reads over the file, with the position for messages.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        match self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()) {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(ModelError::file(
                self.path,
                format!(
                    "GGUF truncated or corrupt: reading {} ({n} bytes) at byte {} of a {}-byte file",
                    what(),
                    self.pos,
                    self.bytes.len()
                ),
            )),
        }
    }
    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let n = self.u64(what)?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| ModelError::file(self.path, format!("GGUF: {} is not valid UTF-8", what())))
    }
    fn value(&mut self, ty: u32, what: &dyn Fn() -> String, depth: usize) -> Result<GgufValue> {
        let b = |c: &mut Self, n| c.take(n, what);
        Ok(match ty {
            0 => GgufValue::U8(b(self, 1)?[0]),
            1 => GgufValue::I8(b(self, 1)?[0] as i8),
            2 => GgufValue::U16(u16::from_le_bytes(b(self, 2)?.try_into().unwrap_or_default())),
            3 => GgufValue::I16(i16::from_le_bytes(b(self, 2)?.try_into().unwrap_or_default())),
            4 => GgufValue::U32(self.u32(what)?),
            5 => GgufValue::I32(self.u32(what)? as i32),
            6 => GgufValue::F32(f32::from_bits(self.u32(what)?)),
            7 => GgufValue::Bool(b(self, 1)?[0] != 0),
            8 => GgufValue::String(self.string(what)?),
            9 => {
                if depth > 4 {
                    return Err(ModelError::file(self.path, format!("GGUF: {} nests arrays too deeply", what())));
                }
                let ety = self.u32(what)?;
                let n = self.u64(what)?;
                // every element takes at least one byte: a larger count is corrupt, not an allocation
                if n > (self.bytes.len() - self.pos) as u64 {
                    return Err(ModelError::file(
                        self.path,
                        format!("GGUF truncated or corrupt: {} claims {n} array elements at byte {}", what(), self.pos),
                    ));
                }
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.value(ety, what, depth + 1)?);
                }
                GgufValue::Array(v)
            }
            10 => GgufValue::U64(self.u64(what)?),
            11 => GgufValue::I64(self.u64(what)? as i64),
            12 => GgufValue::F64(f64::from_bits(self.u64(what)?)),
            other => return Err(ModelError::file(self.path, format!("GGUF: {} has unknown value type {other}", what()))),
        })
    }
}

/// A memory-mapped GGUF file: metadata and tensor directory parsed and validated at open.
pub struct GgufFile {
    pub path: PathBuf,
    mmap: Mmap,
    pub version: u32,
    pub metadata: BTreeMap<String, GgufValue>,
    pub tensors: Vec<GgufTensorInfo>,
    data_start: usize,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile").field("path", &self.path).field("version", &self.version).field("tensors", &self.tensors.len()).finish()
    }
}

/// Whether a file starts with the GGUF magic.
pub fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == GGUF_MAGIC
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
        // SAFETY: read-only map; see `Weights::open`.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
        let (version, metadata, tensors, data_start) = Self::parse(&mmap, path)?;
        Ok(GgufFile { path: path.to_path_buf(), mmap, version, metadata, tensors, data_start })
    }

    #[allow(clippy::type_complexity)]
    fn parse(bytes: &[u8], path: &Path) -> Result<(u32, BTreeMap<String, GgufValue>, Vec<GgufTensorInfo>, usize)> {
        let err = |m: String| ModelError::file(path, format!("GGUF: {m}"));
        let mut c = Cursor { bytes, pos: 0, path };
        let magic = c.take(4, &|| "the magic".into())?;
        if magic != GGUF_MAGIC {
            return Err(err(format!("not a GGUF file (magic {magic:?}, expected \"GGUF\")")));
        }
        let version = c.u32(&|| "the version".into())?;
        if !(2..=3).contains(&version) {
            return Err(err(format!("version {version} is not supported (2 and 3 are; a huge number means a big-endian file)")));
        }
        let n_tensors = c.u64(&|| "the tensor count".into())?;
        let n_kv = c.u64(&|| "the metadata count".into())?;
        if n_tensors > bytes.len() as u64 || n_kv > bytes.len() as u64 {
            return Err(err(format!("corrupt header: {n_tensors} tensors, {n_kv} metadata entries in a {}-byte file", bytes.len())));
        }
        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            let key = c.string(&|| format!("the key of metadata entry {i}"))?;
            let what = || format!("metadata `{key}`");
            let ty = c.u32(&what)?;
            let v = c.value(ty, &what, 0)?;
            metadata.insert(key, v);
        }
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let name = c.string(&|| format!("the name of tensor {i}"))?;
            let what = || format!("the directory entry of tensor `{name}`");
            let nd = c.u32(&what)?;
            if nd == 0 || nd > 8 {
                return Err(err(format!("tensor `{name}` has {nd} dimensions")));
            }
            let mut dims = Vec::with_capacity(nd as usize);
            for _ in 0..nd {
                dims.push(usize::try_from(c.u64(&what)?).unwrap_or(usize::MAX));
            }
            let ty = GgmlType(c.u32(&what)?);
            let offset = usize::try_from(c.u64(&what)?).unwrap_or(usize::MAX);
            let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let (be, _) = ty.block().ok_or_else(|| {
                err(format!("tensor `{name}` has unknown ggml type id {} (supported: {SUPPORTED})", ty.0))
            })?;
            let n_bytes = match n {
                Some(n) if dims[0] % be == 0 => ty.bytes_for(n),
                _ => None,
            }
            .ok_or_else(|| err(format!("tensor `{name}` ({}) has dims {dims:?}: rows must be whole {be}-element blocks", ty.name())))?;
            tensors.push(GgufTensorInfo { name, dims, ty, offset, n_bytes });
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => v.as_u64().filter(|a| *a > 0).ok_or_else(|| err(format!("general.alignment {v:?} is not a positive integer")))?,
        } as usize;
        let data_start = c.pos.div_ceil(alignment) * alignment;
        for t in &tensors {
            let end = data_start.checked_add(t.offset).and_then(|s| s.checked_add(t.n_bytes));
            if end.is_none_or(|e| e > bytes.len()) {
                return Err(err(format!(
                    "truncated or corrupt: tensor `{}` ({}, dims {:?}) needs bytes {}..{} of the file, which has {} bytes",
                    t.name,
                    t.ty.name(),
                    t.dims,
                    data_start.saturating_add(t.offset),
                    end.map(|e| e.to_string()).unwrap_or_else(|| "overflow".into()),
                    bytes.len()
                )));
            }
        }
        Ok((version, metadata, tensors, data_start))
    }

    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    fn meta_err(&self, key: &str, m: impl std::fmt::Display) -> ModelError {
        ModelError::config(&self.path, format!("GGUF metadata `{key}`: {m}"))
    }

    fn req_u64(&self, key: &str) -> Result<u64> {
        match self.get(key) {
            Some(v) => v.as_u64().ok_or_else(|| self.meta_err(key, format!("expected an unsigned integer, found {v:?}"))),
            None => Err(self.meta_err(key, "missing")),
        }
    }
    fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        self.get(key).map(|_| self.req_u64(key)).transpose()
    }
    fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key).map(|v| v.as_f64().ok_or_else(|| self.meta_err(key, format!("expected a number, found {v:?}")))).transpose()
    }
    fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        self.get(key).map(|v| v.as_str().ok_or_else(|| self.meta_err(key, format!("expected a string, found {v:?}")))).transpose()
    }
    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key).map(|v| v.as_bool().ok_or_else(|| self.meta_err(key, format!("expected a bool, found {v:?}")))).transpose()
    }

    pub fn tensor(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Raw bytes of a tensor (in range: checked at open).
    pub fn tensor_bytes(&self, t: &GgufTensorInfo) -> &[u8] {
        let s = self.data_start + t.offset;
        &self.mmap[s..s + t.n_bytes]
    }

    /// Dequantized values of a tensor, row-major in [`GgufTensorInfo::shape`].
    pub fn dequantize(&self, name: &str) -> Result<Vec<f32>> {
        let t = self.tensor(name).ok_or_else(|| ModelError::MissingTensor { file: self.path.display().to_string(), key: name.into() })?;
        dequantize(t.ty, self.tensor_bytes(t), t.n_elements())
            .map_err(|m| ModelError::file(&self.path, format!("tensor `{name}` ({}, dims {:?}): {m}", t.ty.name(), t.dims)))
    }

    pub fn architecture(&self) -> Result<&str> {
        self.opt_str("general.architecture")?.ok_or_else(|| self.meta_err("general.architecture", "missing"))
    }

    /// The HF LLaMA config from `llama.*` metadata (and the tensors for vocab size and tying).
    pub fn llama_config(&self) -> Result<LlamaConfig> {
        let arch = self.architecture()?;
        if arch != "llama" {
            return Err(self.meta_err("general.architecture", format!("`{arch}` is not supported (only `llama`)")));
        }
        let k = |s: &str| format!("llama.{s}");
        let u = |s: &str| -> Result<usize> { Ok(self.req_u64(&k(s))? as usize) };
        let hidden = u("embedding_length")?;
        let heads = u("attention.head_count")?;
        let kv = self.opt_u64(&k("attention.head_count_kv"))?.map(|v| v as usize).unwrap_or(heads);
        if heads == 0 || kv == 0 || heads % kv != 0 {
            return Err(self.meta_err(&k("attention.head_count_kv"), format!("{kv} must divide head_count {heads}")));
        }
        let head_dim = match self.opt_u64(&k("attention.key_length"))? {
            Some(h) => h as usize,
            None if hidden % heads == 0 => hidden / heads,
            None => return Err(self.meta_err(&k("embedding_length"), format!("{hidden} not divisible by head_count {heads}"))),
        };
        if let Some(rot) = self.opt_u64(&k("rope.dimension_count"))? {
            if rot as usize != head_dim {
                return Err(self.meta_err(&k("rope.dimension_count"), format!("{rot} ≠ head dim {head_dim}: partial rotary embeddings are not supported")));
            }
        }
        let rope_scaling = match self.opt_str(&k("rope.scaling.type"))? {
            None | Some("none") => RopeScaling::Default,
            Some("linear") => RopeScaling::Linear {
                factor: self.opt_f64(&k("rope.scaling.factor"))?.ok_or_else(|| self.meta_err(&k("rope.scaling.factor"), "missing"))?,
            },
            Some(other) => return Err(self.meta_err(&k("rope.scaling.type"), format!("`{other}` is not supported (none, linear)"))),
        };
        if self.tensor("rope_freqs.weight").is_some() {
            return Err(ModelError::file(&self.path, "GGUF: tensor `rope_freqs.weight` (LLaMA-3.1 RoPE frequency factors) is not supported"));
        }
        let embd = self.tensor("token_embd.weight").ok_or_else(|| ModelError::MissingTensor { file: self.path.display().to_string(), key: "token_embd.weight".into() })?;
        let vocab = match self.opt_u64(&k("vocab_size"))? {
            Some(v) => v as usize,
            None => embd.shape()[0],
        };
        let ffn = u("feed_forward_length")?;
        let tok = |s: &str| self.opt_u64(&format!("tokenizer.ggml.{s}")).map(|v| v.map(|v| v as u32));
        Ok(LlamaConfig {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: ffn,
            num_hidden_layers: u("block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: kv,
            head_dim,
            rms_norm_eps: self.opt_f64(&k("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-5),
            rope_theta: self.opt_f64(&k("rope.freq_base"))?.unwrap_or(10000.0),
            rope_scaling,
            max_position_embeddings: self.opt_u64(&k("context_length"))?.map(|v| v as usize).unwrap_or(2048),
            tie_word_embeddings: self.tensor("output.weight").is_none(),
            attention_bias: self.tensor("blk.0.attn_q.bias").is_some(),
            mlp_bias: self.tensor("blk.0.ffn_gate.bias").is_some(),
            bos_token_id: tok("bos_token_id")?,
            eos_token_ids: tok("eos_token_id")?.into_iter().collect(),
            pad_token_id: tok("padding_token_id")?,
            torch_dtype: None,
        })
    }

    /// The tokenizer in the metadata: `gpt2` (byte-level BPE) or `llama` (SentencePiece).
    pub fn tokenizer(&self) -> Result<Box<dyn LmTokenizer>> {
        let model = self.opt_str("tokenizer.ggml.model")?.ok_or_else(|| self.meta_err("tokenizer.ggml.model", "missing (the file has no tokenizer)"))?;
        let tokens: Vec<&str> = self
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .ok_or_else(|| self.meta_err("tokenizer.ggml.tokens", "missing or not an array"))?
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().ok_or_else(|| self.meta_err("tokenizer.ggml.tokens", format!("element {i} is not a string"))))
            .collect::<Result<_>>()?;
        let types: Vec<i64> = match self.get("tokenizer.ggml.token_type").and_then(|v| v.as_array()) {
            Some(a) => a.iter().map(|v| match v {
                GgufValue::I32(x) => *x as i64,
                other => other.as_u64().map(|x| x as i64).unwrap_or(1),
            }).collect(),
            None => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(self.meta_err("tokenizer.ggml.token_type", format!("{} entries for {} tokens", types.len(), tokens.len())));
        }
        let id = |s: &str| -> Result<Option<u32>> {
            let key = format!("tokenizer.ggml.{s}");
            match self.opt_u64(&key)? {
                Some(v) if (v as usize) < tokens.len() => Ok(Some(v as u32)),
                Some(v) => Err(self.meta_err(&key, format!("id {v} out of range ({} tokens)", tokens.len()))),
                None => Ok(None),
            }
        };
        let (bos, eos, unk, pad) = (id("bos_token_id")?, id("eos_token_id")?, id("unknown_token_id")?, id("padding_token_id")?);
        let eot = id("eot_token_id")?;
        let add_bos = self.opt_bool("tokenizer.ggml.add_bos_token")?;
        let add_eos = self.opt_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
        let name = |i: Option<u32>| i.map(|i| tokens[i as usize].to_string()).unwrap_or_default();
        let template = self.opt_str("tokenizer.chat_template")?.map(|s| ChatTemplate {
            source: s.to_string(),
            bos_token: name(bos),
            eos_token: name(eos),
            origin: self.path.clone(),
        });
        match model {
            "gpt2" => {
                let merges: Vec<&str> = self
                    .get("tokenizer.ggml.merges")
                    .and_then(|v| v.as_array())
                    .ok_or_else(|| self.meta_err("tokenizer.ggml.merges", "missing (needed by the gpt2 tokenizer)"))?
                    .iter()
                    .map(|v| v.as_str().unwrap_or(""))
                    .collect();
                let pre = self.opt_str("tokenizer.ggml.pre")?.unwrap_or("default");
                let inner = self.gpt2_tokenizer(&tokens, &types, &merges, pre, if add_bos.unwrap_or(false) { bos } else { None })?;
                let mut eos_ids: Vec<u32> = eos.into_iter().collect();
                eos_ids.extend(eot.filter(|t| Some(*t) != eos));
                Ok(Box::new(HfLmTokenizer { inner, bos, eos: eos_ids, pad, template, origin: self.path.clone() }))
            }
            "llama" => {
                let scores: Vec<f32> = match self.get("tokenizer.ggml.scores").and_then(|v| v.as_array()) {
                    Some(a) => a.iter().map(|v| v.as_f64().unwrap_or(0.0) as f32).collect(),
                    None => return Err(self.meta_err("tokenizer.ggml.scores", "missing (needed by the llama tokenizer)")),
                };
                let kinds = types
                    .iter()
                    .map(|t| match t {
                        2 => PieceKind::Unknown,
                        3 => PieceKind::Control,
                        4 => PieceKind::UserDefined,
                        5 => PieceKind::Unused,
                        6 => PieceKind::Byte,
                        _ => PieceKind::Normal,
                    })
                    .collect();
                let pieces = tokens.iter().map(|t| t.as_bytes().to_vec()).collect();
                let mut inner = ScoreBpeTokenizer::new(pieces, scores, kinds, SPM_SPACE, &self.path)?;
                inner.bos_id = bos;
                inner.eos_id = eos;
                inner.unk_id = unk;
                inner.add_space_prefix = self.opt_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
                Ok(Box::new(SpmLmTokenizer { inner, add_bos: add_bos.unwrap_or(true), add_eos, pad, template }))
            }
            other => Err(self.meta_err("tokenizer.ggml.model", format!("`{other}` is not supported (gpt2, llama)"))),
        }
    }

    /// GPT-2-style byte-level BPE from vocab + merges, with llama.cpp's pre-tokenizer of `pre`
    /// expressed as HF pre-tokenizers; control / user-defined tokens are added tokens (matched
    /// whole before BPE, as llama.cpp and HF do).
    fn gpt2_tokenizer(&self, tokens: &[&str], types: &[i64], merges: &[&str], pre: &str, bos: Option<u32>) -> Result<Tokenizer> {
        let terr = |m: String| ModelError::file(&self.path, format!("GGUF gpt2 tokenizer: {m}"));
        let vocab: tokenizers::models::bpe::Vocab = tokens.iter().enumerate().map(|(i, t)| (t.to_string(), i as u32)).collect();
        let merges: Vec<(String, String)> = merges
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| terr(format!("merge {i} `{m}` is not two tokens")))
            })
            .collect::<Result<_>>()?;
        let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|e| terr(e.to_string()))?;
        let mut tok = Tokenizer::new(bpe);
        // byte-level with GPT-2's regex; the pre-tokenizer types listed split digits first
        let byte_level = ByteLevel::new(false, true, true);
        let pre_tok: PreTokenizerWrapper = match pre {
            "default" | "gpt2" | "gpt-2" => byte_level.into(),
            "smollm" | "starcoder" | "refact" => {
                PreSequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
            }
            "llama3" | "llama-bpe" | "smaug-bpe" => {
                let re = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
                let split = Split::new(SplitPattern::Regex(re.into()), SplitDelimiterBehavior::Isolated, false).map_err(|e| terr(e.to_string()))?;
                PreSequence::new(vec![split.into(), ByteLevel::new(false, true, false).into()]).into()
            }
            other => return Err(terr(format!("pre-tokenizer `tokenizer.ggml.pre = {other}` is not supported (default, gpt2, smollm, starcoder, refact, llama3, llama-bpe)"))),
        };
        tok.with_pre_tokenizer(Some(pre_tok));
        tok.with_decoder(Some(ByteLevelDecoder::default()));
        let specials: Vec<AddedToken> = tokens
            .iter()
            .zip(types)
            .filter(|(_, t)| **t == 3 || **t == 4)
            .map(|(s, t)| AddedToken::from(s.to_string(), *t == 3))
            .collect();
        tok.add_special_tokens(&specials);
        if let Some(b) = bos {
            let name = tokens[b as usize].to_string();
            let post = TemplateProcessing::builder()
                .try_single(format!("{name} $A"))
                .and_then(|t| t.try_pair(format!("{name} $A {name} $B")))
                .map_err(|e| terr(e.to_string()))?
                .special_tokens(vec![(name.clone(), b)])
                .build()
                .map_err(|e| terr(e.to_string()))?;
            tok.with_post_processor(Some(post));
        }
        Ok(tok)
    }

    /// The model, with the options' tuning and adapter (like an HF checkpoint).
    pub fn load_model<B: Backend>(self, opts: &LoadOptions, device: &B::Device) -> Result<LlamaForCausalLM<B>> {
        let config = self.llama_config()?;
        let source = GgufLlamaSource::new(self, &config)?;
        LlamaForCausalLM::from_weights(&config, Weights::from_source(Box::new(source)), opts, device)
    }
}

/// HF name of a GGUF LLaMA tensor.
fn hf_name(gguf: &str) -> Option<String> {
    let direct = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(d) = direct {
        return Some(d.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    layer.parse::<usize>().ok()?;
    let (module, suffix) = part.rsplit_once('.')?;
    let hf = match module {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// A GGUF LLaMA file's tensors under HF names, Q/K rows back in HF order.
struct GgufLlamaSource {
    file: GgufFile,
    /// HF name → (GGUF name, heads for the RoPE row permutation).
    names: BTreeMap<String, (String, Option<usize>)>,
}

impl GgufLlamaSource {
    fn new(file: GgufFile, config: &LlamaConfig) -> Result<Self> {
        let mut names = BTreeMap::new();
        let mut unknown = Vec::new();
        for t in &file.tensors {
            match hf_name(&t.name) {
                Some(hf) => {
                    let heads = if t.name.contains(".attn_q.") {
                        Some(config.num_attention_heads)
                    } else if t.name.contains(".attn_k.") {
                        Some(config.num_key_value_heads)
                    } else {
                        None
                    };
                    names.insert(hf, (t.name.clone(), heads));
                }
                None => unknown.push(t.name.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(ModelError::UnknownTensors { file: file.path.display().to_string(), arch: "GGUF llama".into(), keys: unknown });
        }
        Ok(GgufLlamaSource { file, names })
    }
}

impl TensorSource for GgufLlamaSource {
    fn path(&self) -> &Path {
        &self.file.path
    }

    fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        self.names
            .iter()
            .filter_map(|(hf, (g, _))| self.file.tensor(g).map(|t| (hf.clone(), t.shape())))
            .collect()
    }

    fn read_f32(&self, name: &str) -> Result<Vec<f32>> {
        let (g, heads) = self.names.get(name).ok_or_else(|| ModelError::MissingTensor { file: self.file.path.display().to_string(), key: name.into() })?;
        let values = self.file.dequantize(g)?;
        Ok(match heads {
            // a bias `[rows]` permutes like a one-column matrix
            Some(h) => {
                let t = self.file.tensor(g).map(|t| t.shape()).unwrap_or_default();
                let cols = if t.len() == 2 { t[1] } else { 1 };
                interleaved_to_rotate_half_rows(&values, *h, cols)
            }
            None => values,
        })
    }
}

/// Loads a GGUF LLaMA model into [`LlamaForCausalLM`].
pub fn load_gguf<B: Backend>(path: &Path, opts: &LoadOptions, device: &B::Device) -> Result<LlamaForCausalLM<B>> {
    GgufFile::open(path)?.load_model(opts, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_map_to_hf() {
        assert_eq!(hf_name("blk.12.attn_q.weight").as_deref(), Some("model.layers.12.self_attn.q_proj.weight"));
        assert_eq!(hf_name("blk.0.ffn_down.weight").as_deref(), Some("model.layers.0.mlp.down_proj.weight"));
        assert_eq!(hf_name("output.weight").as_deref(), Some("lm_head.weight"));
        assert_eq!(hf_name("blk.x.attn_q.weight"), None);
        assert_eq!(hf_name("rope_freqs.weight"), None);
    }
}
