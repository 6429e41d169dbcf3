//! Transformer models for the LoRTA reproduction, in burn, loading Hugging Face checkpoints:
//!
//! - [`bert`]: BERT / RoBERTa encoders (bare, sequence classification / regression);
//! - [`llama`]: LLaMA causal LMs with KV-cache generation;
//! - [`tuning`]: which parameters train (adapters from `lorta-core` at the Q/K/V/O and IA3
//!   sites, prefix tuning, Houlsby adapters, full fine-tuning, the head incl. "LoRTA+LoRA");
//! - [`dropout`]: dropout from the checkpoint's config, active in training only, seeded per step;
//! - [`load`]: load options and [`load::AutoModel`] (architecture from `config.json`);
//! - [`merge`]: adapter merging into an HF-layout checkpoint;
//! - [`hub`], [`weights`], [`tokenizer`]: folders, safetensors, tokenisation.
//!
//! Linear weights are kept in PyTorch's `[out, in]` layout ([`nn::HfLinear`]).
pub mod bert;
pub mod dropout;
pub mod error;
pub mod hub;
pub mod json;
pub mod llama;
pub mod load;
pub mod merge;
pub mod nn;
pub mod tokenizer;
pub mod tuning;
pub mod weights;

pub use error::{ModelError, Result};
