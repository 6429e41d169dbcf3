//! Alpaca-format instruction data (`[{"instruction", "input", "output"}]`, JSON list or JSONL)
//! and its rendering: the Alpaca prompt template as lit-gpt writes it (the paper's instruction
//! tuning ran in lit-gpt), or the model's chat template. Training sees the prompt and the
//! response; only the response tokens (and the end-of-turn token) are trained on.
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lm::chat::{assistant, render_chat, ChatMessage};
use crate::lm::{LmTokenizer, Sequence};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    pub instruction: String,
    pub input: String,
    pub output: String,
}

/// How an instruction becomes text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PromptStyle {
    /// lit-gpt's Alpaca template; the response is followed by EOS.
    #[default]
    Alpaca,
    /// The tokenizer's chat template (a user turn, then the assistant's answer and its end token).
    Chat,
}

pub fn alpaca_prompt(instruction: &str, input: &str) -> String {
    if input.trim().is_empty() {
        format!(
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
        )
    } else {
        format!(
            "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
        )
    }
}

/// The user turn of an instruction (chat style): the instruction, then the input after a blank line.
pub fn user_message(ex: &Instruction) -> String {
    if ex.input.trim().is_empty() {
        ex.instruction.clone()
    } else {
        format!("{}\n\n{}", ex.instruction, ex.input)
    }
}

pub fn load_alpaca(path: &Path) -> Result<Vec<Instruction>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let rows: Vec<(usize, Value)> = if text.trim_start().starts_with('[') {
        let v: Vec<Value> = serde_json::from_str(&text).map_err(|e| anyhow!("{}: not a valid JSON list: {e}", path.display()))?;
        v.into_iter().enumerate().map(|(i, x)| (i + 1, x)).collect()
    } else {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            out.push((i + 1, serde_json::from_str(line).map_err(|e| anyhow!("{} line {}: not valid JSON: {e}", path.display(), i + 1))?));
        }
        out
    };
    let mut out = Vec::with_capacity(rows.len());
    for (row, v) in rows {
        let get = |k: &str, required: bool| -> Result<String> {
            match v.get(k) {
                Some(Value::String(s)) => Ok(s.clone()),
                None | Some(Value::Null) if !required => Ok(String::new()),
                _ => bail!("{} row {row}: missing or non-string field `{k}` (Alpaca format: instruction, input, output)", path.display()),
            }
        };
        out.push(Instruction { instruction: get("instruction", true)?, input: get("input", false)?, output: get("output", true)? });
    }
    if out.is_empty() {
        bail!("{}: no examples", path.display());
    }
    Ok(out)
}

/// Prompt and response text of one example in `style`.
pub fn render(ex: &Instruction, style: PromptStyle, tok: &LmTokenizer) -> Result<(String, String)> {
    match style {
        PromptStyle::Alpaca => Ok((alpaca_prompt(&ex.instruction, &ex.input), ex.output.clone())),
        PromptStyle::Chat => {
            if !tok.has_chat_template() {
                bail!("{}: the tokenizer has no chat template; use --prompt-style alpaca", tok.source);
            }
            let mut msgs = vec![ChatMessage::user(user_message(ex))];
            let prompt = render_chat(&msgs, true, tok)?;
            msgs.push(assistant(ex.output.clone()));
            let full = render_chat(&msgs, false, tok)?;
            let response = full.strip_prefix(&prompt).ok_or_else(|| anyhow!("the chat template renders the conversation with the answer differently from the prompt alone; cannot split prompt and response"))?;
            Ok((prompt, response.to_string()))
        }
    }
}

/// Token sequence of one example: Alpaca appends EOS; chat rendering carries its own end token.
pub fn encode_example(ex: &Instruction, style: PromptStyle, tok: &LmTokenizer, max_len: usize) -> Result<Sequence> {
    let (prompt, response) = render(ex, style, tok)?;
    let add_eos = style == PromptStyle::Alpaca;
    tok.sequence_clipped(&prompt, &response, add_eos, max_len)
}

/// Packs sequences into rows of at most `max_len` tokens (whole examples, in order; a new row
/// starts when the next example does not fit). Each example keeps its own target positions;
/// attention runs across the examples of a row, as lit-gpt/TRL packing does without
/// position resets.
pub fn pack(seqs: &[Sequence], max_len: usize) -> Vec<Sequence> {
    let mut out: Vec<Sequence> = Vec::new();
    let mut cur: Option<Sequence> = None;
    for s in seqs {
        match cur.as_mut() {
            Some(c) if c.ids.len() + s.ids.len() <= max_len => {
                let offset = c.ids.len();
                // everything before this example's target is prompt: excluded from the targets
                c.prompt_spans.push((offset, offset + s.target_start));
                for &(a, b) in &s.prompt_spans {
                    c.prompt_spans.push((offset + a, offset + b));
                }
                c.ids.extend_from_slice(&s.ids);
            }
            _ => {
                if let Some(c) = cur.take() {
                    out.push(c);
                }
                cur = Some(s.clone());
            }
        }
    }
    out.extend(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LmTokenizer {
        LmTokenizer::from_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm/tiny-llama")).unwrap()
    }

    #[test]
    fn alpaca_file_and_templates() {
        let ex = load_alpaca(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm/alpaca.json")).unwrap();
        assert_eq!(ex.len(), 4);
        assert!(alpaca_prompt(&ex[0].instruction, &ex[0].input).ends_with("### Instruction:\nGive three tips for staying healthy.\n\n### Response:\n"));
        assert!(alpaca_prompt(&ex[1].instruction, &ex[1].input).contains("### Input:\nThe cat sleeps.\n\n### Response:\n"));
        let tok = tiny();
        // response-only targets: the decoded targets are the output followed by EOS
        let s = encode_example(&ex[1], PromptStyle::Alpaca, &tok, 512).unwrap();
        assert_eq!(*s.ids.last().unwrap(), 2);
        let target_text = tok.decode(&s.ids[s.target_start..]).unwrap();
        assert_eq!(target_text.trim(), "Le chat dort.");
        // chat style: the template's assistant turn is the target
        let (p, r) = render(&ex[2], PromptStyle::Chat, &tok).unwrap();
        assert_eq!(p, "<|im_start|>user\nName a primary color.<|im_end|>\n<|im_start|>assistant\n");
        assert_eq!(r, "Red.<|im_end|>\n");
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("a.json");
        std::fs::write(&path, r#"[{"instruction": "x", "output": 3}]"#).unwrap();
        let e = load_alpaca(&path).unwrap_err().to_string();
        assert!(e.contains("row 1") && e.contains("output"), "{e}");
    }

    #[test]
    fn packing_keeps_each_examples_targets() {
        let a = Sequence::new(vec![1, 10, 11, 12], 2);
        let b = Sequence::new(vec![1, 20, 21], 2);
        let c = Sequence::new(vec![1, 30, 31, 32, 33], 3);
        let packed = pack(&[a, b, c], 8);
        assert_eq!(packed.len(), 2);
        assert_eq!(packed[0].ids, vec![1, 10, 11, 12, 1, 20, 21]);
        let targets: Vec<usize> = (0..packed[0].ids.len()).filter(|&t| packed[0].is_target(t)).collect();
        assert_eq!(targets, vec![2, 3, 6]);
        assert_eq!(packed[0].target_len(), 3);
        assert_eq!(packed[1].ids.len(), 5);
    }
}
