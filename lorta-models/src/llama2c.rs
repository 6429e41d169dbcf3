//! llama2.c checkpoints (Karpathy's `export.py` "legacy" v0 layout, as `run.c` reads it): a
//! 7×i32 header `dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len`
//! (`vocab_size < 0`: the classifier is stored separately, else it is tied to the embedding),
//! then f32 arrays in this order: `token_embedding [vocab, dim]`, `rms_att [L, dim]`,
//! `wq [L, dim, dim]`, `wk [L, kv_dim, dim]`, `wv [L, kv_dim, dim]`, `wo [L, dim, dim]`,
//! `rms_ffn [L, dim]`, `w1 [L, hidden, dim]`, `w2 [L, dim, hidden]`, `w3 [L, hidden, dim]`,
//! `rms_final [dim]`, `freq_cis_real/imag [seq_len, head_size/2]` each (skipped: RoPE is
//! recomputed), `[wcls [vocab, dim]]`. Matrices are `[out, in]` like PyTorch.
//!
//! They are served under HF LLaMA names (`w1` → `gate_proj`, `w2` → `down_proj`, `w3` →
//! `up_proj`), with Q/K rows moved from llama2.c's interleaved RoPE pairs to HF's rotate-half
//! layout ([`interleaved_to_rotate_half_rows`]), so the model is the ordinary
//! [`LlamaForCausalLM`] and every adapter site works as on an HF checkpoint.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use memmap2::Mmap;

use crate::error::{ModelError, Result};
use crate::llama::{interleaved_to_rotate_half_rows, LlamaConfig, LlamaForCausalLM, RopeScaling};
use crate::load::LoadOptions;
use crate::weights::{TensorSource, Weights};

const HEADER_BYTES: usize = 7 * 4;
/// `export.py`'s versioned exports start with this magic ("ak42"); only v0 (no magic) is read.
const VERSIONED_MAGIC: u32 = 0x616b_3432;

/// The header of a llama2.c checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Llama2cHeader {
    pub dim: usize,
    pub hidden_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    pub seq_len: usize,
    /// Classifier tied to the token embedding (`vocab_size > 0` in the file).
    pub shared_classifier: bool,
}

impl Llama2cHeader {
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let err = |m: String| ModelError::file(path, format!("llama2.c checkpoint: {m}"));
        if bytes.len() < HEADER_BYTES {
            return Err(err(format!("file has {} bytes, shorter than the 28-byte header", bytes.len())));
        }
        let field = |i: usize| i32::from_le_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]);
        if field(0) as u32 == VERSIONED_MAGIC {
            return Err(err("this is a versioned export (magic \"ak42\", export.py --version 1/2); only the legacy v0 layout is supported (export.py --version 0)".into()));
        }
        let names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
        for (i, name) in names.iter().enumerate() {
            if field(i) == 0 || (i != 5 && field(i) < 0) {
                return Err(err(format!("header field {name} = {} is invalid", field(i))));
            }
        }
        let h = Llama2cHeader {
            dim: field(0) as usize,
            hidden_dim: field(1) as usize,
            n_layers: field(2) as usize,
            n_heads: field(3) as usize,
            n_kv_heads: field(4) as usize,
            vocab_size: field(5).unsigned_abs() as usize,
            seq_len: field(6) as usize,
            shared_classifier: field(5) > 0,
        };
        if h.dim % h.n_heads != 0 || h.n_heads % h.n_kv_heads != 0 || (h.dim / h.n_heads) % 2 != 0 {
            return Err(err(format!(
                "dim {} / n_heads {} / n_kv_heads {}: dim must split into heads of even size and n_heads must be a multiple of n_kv_heads",
                h.dim, h.n_heads, h.n_kv_heads
            )));
        }
        Ok(h)
    }

    pub fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }

    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_size()
    }

    /// The equivalent HF LLaMA config (RoPE θ 10000, RMSNorm ε 1e-5 as in `run.c`).
    /// `run.c` ends a sequence when the model emits BOS (its training data delimits stories
    /// with BOS), so BOS is a stop token next to EOS.
    pub fn config(&self) -> LlamaConfig {
        LlamaConfig {
            vocab_size: self.vocab_size,
            hidden_size: self.dim,
            intermediate_size: self.hidden_dim,
            num_hidden_layers: self.n_layers,
            num_attention_heads: self.n_heads,
            num_key_value_heads: self.n_kv_heads,
            head_dim: self.head_size(),
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            rope_scaling: RopeScaling::Default,
            max_position_embeddings: self.seq_len,
            tie_word_embeddings: self.shared_classifier,
            attention_bias: false,
            mlp_bias: false,
            bos_token_id: Some(1),
            eos_token_ids: vec![2, 1],
            pad_token_id: None,
            torch_dtype: Some("float32".into()),
        }
    }
}

/// Where one HF tensor lies in the file (in f32 units after the header).
#[derive(Clone, Debug)]
struct Slot {
    offset: usize,
    shape: Vec<usize>,
    /// Q/K: head count for the RoPE row permutation.
    rope_heads: Option<usize>,
}

/// A memory-mapped llama2.c checkpoint serving HF-named tensors.
pub struct Llama2cFile {
    path: PathBuf,
    mmap: Mmap,
    pub header: Llama2cHeader,
    slots: BTreeMap<String, Slot>,
}

impl Llama2cFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
        // SAFETY: read-only map; see `Weights::open`.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
        let header = Llama2cHeader::parse(&mmap, path)?;
        let h = header;
        let (d, f, l, v, kv) = (h.dim, h.hidden_dim, h.n_layers, h.vocab_size, h.kv_dim());
        let mut slots = BTreeMap::new();
        let mut at = 0usize;
        let mut put = |name: String, shape: Vec<usize>, rope_heads: Option<usize>, at: &mut usize| {
            let n: usize = shape.iter().product();
            slots.insert(name, Slot { offset: *at, shape, rope_heads });
            *at += n;
        };
        put("model.embed_tokens.weight".into(), vec![v, d], None, &mut at);
        // per-kind arrays hold all layers back to back
        let per_layer: [(&str, Vec<usize>, Option<usize>); 9] = [
            ("input_layernorm.weight", vec![d], None),
            ("self_attn.q_proj.weight", vec![d, d], Some(h.n_heads)),
            ("self_attn.k_proj.weight", vec![kv, d], Some(h.n_kv_heads)),
            ("self_attn.v_proj.weight", vec![kv, d], None),
            ("self_attn.o_proj.weight", vec![d, d], None),
            ("post_attention_layernorm.weight", vec![d], None),
            ("mlp.gate_proj.weight", vec![f, d], None),
            ("mlp.down_proj.weight", vec![d, f], None),
            ("mlp.up_proj.weight", vec![f, d], None),
        ];
        for (name, shape, rope) in per_layer {
            for layer in 0..l {
                put(format!("model.layers.{layer}.{name}"), shape.clone(), rope, &mut at);
            }
        }
        put("model.norm.weight".into(), vec![d], None, &mut at);
        at += h.seq_len * h.head_size(); // freq_cis_real + freq_cis_imag, [seq_len, head_size/2] each
        if !h.shared_classifier {
            put("lm_head.weight".into(), vec![v, d], None, &mut at);
        }
        let expected = HEADER_BYTES + 4 * at;
        if mmap.len() != expected {
            return Err(ModelError::file(
                path,
                format!(
                    "llama2.c checkpoint: header {h:?} implies {expected} bytes, the file has {} ({})",
                    mmap.len(),
                    if mmap.len() < expected { "truncated" } else { "trailing data: wrong header or not a v0 export" }
                ),
            ));
        }
        Ok(Llama2cFile { path: path.to_path_buf(), mmap, header, slots })
    }

    /// The model, with the options' tuning and adapter (like an HF checkpoint).
    pub fn load_model<B: Backend>(self, opts: &LoadOptions, device: &B::Device) -> Result<LlamaForCausalLM<B>> {
        let config = self.header.config();
        LlamaForCausalLM::from_weights(&config, Weights::from_source(Box::new(self)), opts, device)
    }
}

impl TensorSource for Llama2cFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        self.slots.iter().map(|(k, s)| (k.clone(), s.shape.clone())).collect()
    }

    fn read_f32(&self, name: &str) -> Result<Vec<f32>> {
        let slot = self.slots.get(name).ok_or_else(|| ModelError::MissingTensor { file: self.path.display().to_string(), key: name.into() })?;
        let n: usize = slot.shape.iter().product();
        let start = HEADER_BYTES + 4 * slot.offset;
        let bytes = &self.mmap[start..start + 4 * n]; // in range: `open` checked the file length
        let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(match slot.rope_heads {
            Some(heads) => interleaved_to_rotate_half_rows(&values, heads, slot.shape[1]),
            None => values,
        })
    }
}

/// Loads a llama2.c checkpoint into [`LlamaForCausalLM`].
pub fn load_llama2c<B: Backend>(path: &Path, opts: &LoadOptions, device: &B::Device) -> Result<LlamaForCausalLM<B>> {
    Llama2cFile::open(path)?.load_model(opts, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_model(dir: &Path, header: [i32; 7], floats: usize) -> PathBuf {
        let p = dir.join("m.bin");
        let mut bytes: Vec<u8> = header.iter().flat_map(|x| x.to_le_bytes()).collect();
        bytes.extend((0..floats).flat_map(|i| (i as f32 * 1e-3).to_le_bytes()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn layout_size_and_errors() {
        let tmp = tempfile::tempdir().unwrap();
        // dim 4, hidden 6, 1 layer, 2 heads, 1 kv head, vocab 5 (tied), seq 3
        let (d, f, v, kv, seq, hs) = (4, 6, 5, 2, 3, 2);
        let n = v * d + d + d * d + 2 * kv * d + d * d + d + 3 * f * d + d + seq * hs;
        let p = write_model(tmp.path(), [4, 6, 1, 2, 1, 5, 3], n);
        let file = Llama2cFile::open(&p).unwrap();
        assert!(file.header.shared_classifier);
        let names: Vec<String> = file.tensors().into_iter().map(|t| t.0).collect();
        assert!(!names.contains(&"lm_head.weight".to_string()));
        // K rows of one head [r0, r1] (dh 2): a single pair, the permutation is the identity
        let k = file.read_f32("model.layers.0.self_attn.k_proj.weight").unwrap();
        assert_eq!(k.len(), kv * d);
        // untied: the classifier follows the skipped freq_cis arrays
        let p = write_model(tmp.path(), [4, 6, 1, 2, 1, -5, 3], n + v * d);
        let file = Llama2cFile::open(&p).unwrap();
        let head = file.read_f32("lm_head.weight").unwrap();
        assert_eq!(head[0], n as f32 * 1e-3);
        // truncated, versioned, bad header
        let p = write_model(tmp.path(), [4, 6, 1, 2, 1, 5, 3], n - 1);
        let e = Llama2cFile::open(&p).err().unwrap().to_string();
        assert!(e.contains("truncated") && e.contains("m.bin"), "{e}");
        let p = write_model(tmp.path(), [VERSIONED_MAGIC as i32, 1, 0, 0, 0, 0, 0], 0);
        assert!(Llama2cFile::open(&p).err().unwrap().to_string().contains("v0"));
        let p = write_model(tmp.path(), [4, 6, 1, 3, 1, 5, 3], n);
        assert!(Llama2cFile::open(&p).err().unwrap().to_string().contains("n_heads"));
    }

    #[test]
    fn rope_permutation_moves_pairs_to_halves() {
        // one head, dh 4: rows [a0, a1, b0, b1] (pairs (a0,a1), (b0,b1)) → [a0, b0, a1, b1]
        let w = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(interleaved_to_rotate_half_rows(&w, 1, 1), vec![0.0, 2.0, 1.0, 3.0]);
        // two heads of dh 2: identity
        assert_eq!(interleaved_to_rotate_half_rows(&w, 2, 1), w.to_vec());
    }
}
