//! Tokenizers of causal LMs behind one trait, [`LmTokenizer`]: encode/decode, special ids and
//! the chat template, whatever the checkpoint format:
//! - [`HfLmTokenizer`]: a `tokenizers::Tokenizer` — an HF folder's `tokenizer.json`, or GGUF's
//!   GPT-2-style byte-level BPE (`tokenizer.ggml.model = "gpt2"`) rebuilt from vocab + merges;
//! - [`ScoreBpeTokenizer`]: llama2.c tokenizer files and GGUF's SentencePiece vocabularies
//!   (`tokenizer.ggml.model = "llama"`).
//!
//! Chat templates are HF's Jinja templates (`tokenizer.chat_template` in GGUF,
//! `chat_template` in tokenizer_config.json), rendered with minijinja with HF's variables:
//! `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, and `raise_exception`.
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{context, Environment, Error as JinjaError, ErrorKind, Value};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::error::{ModelError, Result};
use crate::json::JsonFile;
use crate::score_bpe::{PieceKind, ScoreBpeTokenizer};

/// One chat turn (`role`: "system", "user", "assistant").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage { role: role.into(), content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
}

/// A Jinja chat template with the special-token strings it may reference.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    pub source: String,
    pub bos_token: String,
    pub eos_token: String,
    /// Where the template came from, for messages.
    pub origin: PathBuf,
}

impl ChatTemplate {
    /// The prompt text for `messages` (HF's `apply_chat_template(..., tokenize=False)`).
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let err = |e: JinjaError| {
            let mut msg = format!("chat template: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            ModelError::file(&self.origin, msg)
        };
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        });
        // HF renders with trim_blocks and lstrip_blocks
        env.set_syntax(SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build().map_err(err)?);
        env.add_template("chat", &self.source).map_err(err)?;
        let tmpl = env.get_template("chat").map_err(err)?;
        let messages: Value = messages
            .iter()
            .map(|m| Value::from_pairs([("role", Value::from(m.role.as_str())), ("content", Value::from(m.content.as_str()))]))
            .collect();
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        })
        .map_err(err)
    }
}

/// Tokenizer of a causal LM.
pub trait LmTokenizer: Send + Sync + std::fmt::Debug {
    /// Token ids of `text`; `add_special`: the special tokens the tokenizer adds around a text
    /// (BOS for LLaMA-2 and llama2.c; nothing for SmolLM2), as HF's `add_special_tokens`.
    fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>>;
    fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String>;
    fn vocab_size(&self) -> usize;
    fn bos_id(&self) -> Option<u32>;
    /// End-of-sequence ids (generation stops at any).
    fn eos_ids(&self) -> Vec<u32>;
    fn pad_id(&self) -> Option<u32>;
    fn token_to_id(&self, token: &str) -> Option<u32>;
    fn chat_template(&self) -> Option<&ChatTemplate>;
    /// Where the tokenizer came from, for messages.
    fn source(&self) -> &Path;

    /// The chat prompt text; errors when the tokenizer has no chat template.
    fn apply_chat_template(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        match self.chat_template() {
            Some(t) => t.render(messages, add_generation_prompt),
            None => Err(ModelError::file(self.source(), "the tokenizer has no chat template")),
        }
    }

    /// Token ids of the chat prompt (the template writes the special tokens itself, so none are
    /// added, as HF's `apply_chat_template(tokenize=True)`).
    fn encode_chat(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<Vec<u32>> {
        self.encode(&self.apply_chat_template(messages, add_generation_prompt)?, false)
    }
}

/// A `tokenizers::Tokenizer` with the ids and template the trait needs.
#[derive(Clone)]
pub struct HfLmTokenizer {
    pub inner: Tokenizer,
    pub bos: Option<u32>,
    pub eos: Vec<u32>,
    pub pad: Option<u32>,
    pub template: Option<ChatTemplate>,
    pub origin: PathBuf,
}

impl std::fmt::Debug for HfLmTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfLmTokenizer").field("origin", &self.origin).field("bos", &self.bos).field("eos", &self.eos).finish()
    }
}

/// `"<s>"` or `{"content": "<s>", ...}` (tokenizer_config.json's special-token forms).
fn token_string(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(String::from),
        _ => None,
    }
}

impl HfLmTokenizer {
    /// An HF folder: `tokenizer.json`, special tokens and `chat_template` from
    /// tokenizer_config.json (or `chat_template.jinja`), EOS ids from config.json.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let tj = dir.join("tokenizer.json");
        let inner = Tokenizer::from_file(&tj).map_err(|e| ModelError::file(&tj, format!("tokenizer: {e}")))?;
        let tcfg = JsonFile::read(&dir.join("tokenizer_config.json")).ok();
        let config = JsonFile::read(&dir.join("config.json")).ok();
        let tok_of = |key: &str| tcfg.as_ref().and_then(|t| token_string(t.get(key)));
        let id_of = |key: &str| config.as_ref().and_then(|c| c.ids(key).ok()).unwrap_or_default();
        let bos_token = tok_of("bos_token");
        let eos_token = tok_of("eos_token");
        let bos = id_of("bos_token_id").first().copied().or_else(|| bos_token.as_deref().and_then(|t| inner.token_to_id(t)));
        let mut eos = id_of("eos_token_id");
        if eos.is_empty() {
            eos.extend(eos_token.as_deref().and_then(|t| inner.token_to_id(t)));
        }
        let pad = id_of("pad_token_id").first().copied().or_else(|| tok_of("pad_token").and_then(|t| inner.token_to_id(&t)));
        let jinja = dir.join("chat_template.jinja");
        let template_src = match tcfg.as_ref().and_then(|t| t.get("chat_template").cloned()) {
            Some(serde_json::Value::String(s)) => Some(s),
            // a list of named templates: the "default" one
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|t| t.get("template").and_then(|s| s.as_str()).map(String::from)),
            _ if jinja.is_file() => Some(std::fs::read_to_string(&jinja).map_err(|e| ModelError::io(&jinja, e))?),
            _ => None,
        };
        let template = template_src.map(|source| ChatTemplate {
            source,
            bos_token: bos_token.clone().unwrap_or_default(),
            eos_token: eos_token.clone().unwrap_or_default(),
            origin: dir.join("tokenizer_config.json"),
        });
        Ok(HfLmTokenizer { inner, bos, eos, pad, template, origin: tj })
    }
}

impl LmTokenizer for HfLmTokenizer {
    fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let e = self
            .inner
            .encode(text, add_special)
            .map_err(|e| ModelError::input(format!("{}: encoding {text:?}: {e}", self.origin.display())))?;
        Ok(e.get_ids().to_vec())
    }
    fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(|e| ModelError::input(format!("{}: decoding: {e}", self.origin.display())))
    }
    fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
    fn bos_id(&self) -> Option<u32> {
        self.bos
    }
    fn eos_ids(&self) -> Vec<u32> {
        self.eos.clone()
    }
    fn pad_id(&self) -> Option<u32> {
        self.pad
    }
    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
    fn chat_template(&self) -> Option<&ChatTemplate> {
        self.template.as_ref()
    }
    fn source(&self) -> &Path {
        &self.origin
    }
}

/// A [`ScoreBpeTokenizer`] with what the trait adds: whether `encode` adds BOS, PAD, template.
#[derive(Clone, Debug)]
pub struct SpmLmTokenizer {
    pub inner: ScoreBpeTokenizer,
    pub add_bos: bool,
    pub add_eos: bool,
    pub pad: Option<u32>,
    pub template: Option<ChatTemplate>,
}

impl SpmLmTokenizer {
    /// A llama2.c tokenizer file (BOS added, as `run.c` does; no chat template).
    pub fn from_llama2c_file(path: &Path) -> Result<Self> {
        Ok(SpmLmTokenizer { inner: ScoreBpeTokenizer::from_llama2c_file(path)?, add_bos: true, add_eos: false, pad: None, template: None })
    }
}

impl LmTokenizer for SpmLmTokenizer {
    fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let mut ids = self.inner.encode(text, add_special && self.add_bos)?;
        if add_special && self.add_eos {
            ids.extend(self.inner.eos_id);
        }
        Ok(ids)
    }
    fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special)
    }
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn bos_id(&self) -> Option<u32> {
        self.inner.bos_id
    }
    fn eos_ids(&self) -> Vec<u32> {
        self.inner.eos_id.into_iter().collect()
    }
    fn pad_id(&self) -> Option<u32> {
        self.pad
    }
    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.piece_id(token).filter(|&id| self.inner.kind(id) != Some(PieceKind::Unused))
    }
    fn chat_template(&self) -> Option<&ChatTemplate> {
        self.template.as_ref()
    }
    fn source(&self) -> &Path {
        &self.inner.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_hf_style_templates() {
        let t = ChatTemplate {
            source: "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}\
                     <|{{ m['role'] }}|>{{ m['content'] | trim }}{{ eos_token }}\n{% endfor %}\
                     {% if add_generation_prompt %}<|assistant|>{% endif %}"
                .into(),
            bos_token: "<s>".into(),
            eos_token: "</s>".into(),
            origin: "t.json".into(),
        };
        let out = t.render(&[ChatMessage::user("  hi ")], true).unwrap();
        assert_eq!(out, "<s><|user|>hi</s>\n<|assistant|>");
        let e = t.render(&[ChatMessage::new("system", "x")], false).unwrap_err().to_string();
        assert!(e.contains("no system") && e.contains("t.json"), "{e}");
        // Python string methods (pycompat)
        let t = ChatTemplate { source: "{{ messages[0]['content'].strip().upper() }}".into(), ..t };
        assert_eq!(t.render(&[ChatMessage::user(" a ")], false).unwrap(), "A");
    }
}
