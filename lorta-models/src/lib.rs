//! Transformer models for the LoRTA reproduction, in burn, loading Hugging Face checkpoints:
//!
//! - [`bert`]: BERT / RoBERTa encoders (bare, sequence classification / regression);
//! - [`llama`]: LLaMA causal LMs with KV-cache generation;
//! - [`esm`]: the ESM-2 protein language model (rotary, pre-LN) and its tokenizer;
//! - [`esmfold`], [`evoformer`], [`structure_module`]: ESMFold (`EsmForProteinFolding`): folding
//!   trunk with adapter sites on every attention projection, distogram head, structure module;
//! - [`tuning`]: which parameters train (adapters from `lorta-core` at the Q/K/V/O and IA3
//!   sites, prefix tuning, Houlsby adapters, full fine-tuning, the head incl. "LoRTA+LoRA");
//! - [`dropout`]: dropout from the checkpoint's config, active in training only, seeded per step;
//! - [`load`]: load options and [`load::AutoModel`] (architecture from `config.json`);
//! - [`merge`]: adapter merging into an HF-layout checkpoint;
//! - [`hub`], [`weights`], [`tokenizer`]: folders, safetensors, tokenisation;
//! - [`gguf`] (+ [`ggml_quants`]) and [`llama2c`]: LLaMA models from GGUF and llama2.c files,
//!   [`lm_tokenizer`] (+ [`score_bpe`]): their tokenizers and chat templates behind one trait;
//!   [`load::load_llama_any`] picks the format.
//!
//! Linear weights are kept in PyTorch's `[out, in]` layout ([`nn::HfLinear`]).
pub mod bert;
pub mod dropout;
pub mod error;
pub mod esm;
pub mod esmfold;
pub mod evoformer;
pub mod ggml_quants;
pub mod gguf;
pub mod hub;
pub mod json;
pub mod llama;
pub mod llama2c;
pub mod lm_tokenizer;
pub mod load;
pub mod merge;
pub mod nn;
pub mod score_bpe;
pub mod structure_module;
pub mod tokenizer;
pub mod tuning;
pub mod weights;

pub use error::{ModelError, Result};
