//! Chat templates: the model's Jinja `chat_template` rendered by lorta-models (minijinja, HF's
//! variables and trim/lstrip settings), checked here against transformers' rendering.
use anyhow::Result;
pub use lorta_models::lm_tokenizer::ChatMessage;

use super::LmTokenizer;

/// Renders `messages` with the tokenizer's chat template (`add_generation_prompt` opens the
/// assistant's turn).
pub fn render_chat(messages: &[ChatMessage], add_generation_prompt: bool, tok: &LmTokenizer) -> Result<String> {
    tok.apply_chat(messages, add_generation_prompt)
}

pub fn assistant(content: impl Into<String>) -> ChatMessage {
    ChatMessage::new("assistant", content)
}

pub fn system(content: impl Into<String>) -> ChatMessage {
    ChatMessage::new("system", content)
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
        let got = render_chat(&msgs, true, &tok).unwrap();
        assert_eq!(got, r["chat"]["rendered"].as_str().unwrap());
    }
}
