//! Chat templates (the Jinja `chat_template` of Hugging Face tokenizers) rendered with
//! minijinja, Python string methods enabled (`.strip()`, `.startswith()`, … through
//! minijinja-contrib's pycompat) and HF's `raise_exception`.
use anyhow::{anyhow, Result};
use minijinja::{context, Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

use super::LmTokenizer;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        ChatMessage { role: role.to_string(), content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
}

fn token_text(tok: &LmTokenizer, id: Option<u32>) -> String {
    id.and_then(|i| tok.inner().id_to_token(i)).unwrap_or_default()
}

/// Renders `messages` with `template` (`add_generation_prompt` opens the assistant's turn).
pub fn render_chat(template: &str, messages: &[ChatMessage], add_generation_prompt: bool, tok: &LmTokenizer) -> Result<String> {
    let mut env = Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> std::result::Result<String, Error> { Err(Error::new(ErrorKind::InvalidOperation, msg)) });
    let t = env.template_from_str(template).map_err(|e| anyhow!("{}: chat template does not parse: {e}", tok.source))?;
    t.render(context! {
        messages => minijinja::Value::from(minijinja::value::Serde(messages)),
        add_generation_prompt => add_generation_prompt,
        bos_token => token_text(tok, tok.bos_id),
        eos_token => token_text(tok, tok.eos_id),
    })
    .map_err(|e| anyhow!("{}: rendering the chat template: {e}", tok.source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Same text as transformers' `apply_chat_template` (reference.json).
    #[test]
    fn matches_transformers_rendering() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm/tiny-llama");
        let tok = LmTokenizer::from_dir(&dir).unwrap();
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
        let msgs: Vec<ChatMessage> = serde_json::from_value(r["chat"]["messages"].clone()).unwrap();
        let got = render_chat(tok.chat_template.as_deref().unwrap(), &msgs, true, &tok).unwrap();
        assert_eq!(got, r["chat"]["rendered"].as_str().unwrap());
        let e = render_chat("{{ raise_exception('roles must alternate') }}", &msgs, true, &tok).unwrap_err().to_string();
        assert!(e.contains("roles must alternate"), "{e}");
        let s = render_chat("{{ messages[0].content.strip() }}", &[ChatMessage::user("  hi ")], false, &tok).unwrap();
        assert_eq!(s, "hi");
    }
}
