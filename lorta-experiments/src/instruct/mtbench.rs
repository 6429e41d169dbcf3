//! MT-bench answers in FastChat's format (`fastchat/llm_judge/gen_model_answer.py`): one JSON
//! line per question, `{"question_id", "answer_id", "model_id", "choices": [{"index": 0,
//! "turns": [answer1, answer2]}], "tstamp"}`. Both turns run through the model's chat template
//! (the second turn sees the first question and answer). Sampling temperatures per category are
//! FastChat's (`temperature_config`: writing/roleplay 0.7, stem/humanities 0.1, the rest greedy).
//! Judging (GPT-4 as judge, `gen_judgment.py`) is external: point FastChat at the written file.
use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use burn::tensor::backend::Backend;
use lorta_models::llama::{GenerationConfig, LlamaForCausalLM};
use serde::{Deserialize, Serialize};

use crate::lm::chat::{assistant, render_chat, ChatMessage};
use crate::lm::LmTokenizer;
use crate::report::write_atomic;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub question_id: u64,
    #[serde(default)]
    pub category: String,
    pub turns: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub index: usize,
    pub turns: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub question_id: u64,
    pub answer_id: String,
    pub model_id: String,
    pub choices: Vec<Choice>,
    pub tstamp: f64,
}

pub fn load_questions(path: &Path) -> Result<Vec<Question>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading MT-bench questions {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let q: Question = serde_json::from_str(line).map_err(|e| anyhow!("{} line {}: not an MT-bench question ({e})", path.display(), i + 1))?;
        if q.turns.is_empty() {
            return Err(anyhow!("{} line {}: question {} has no turns", path.display(), i + 1, q.question_id));
        }
        out.push(q);
    }
    Ok(out)
}

/// FastChat's sampling temperature for a question category (unknown categories: 0.7, its default).
pub fn category_temperature(category: &str) -> f64 {
    match category {
        "writing" | "roleplay" => 0.7,
        "extraction" | "math" | "coding" | "reasoning" | "arena-hard-200" => 0.0,
        "stem" | "humanities" => 0.1,
        _ => 0.7,
    }
}

/// Answers already in `path` (a resumed export skips their questions).
pub fn read_answers(path: &Path) -> Result<Vec<Answer>> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| anyhow!("{} line {}: not a FastChat answer ({e}); move the file away to start over", path.display(), i + 1)))
        .collect()
}

fn write_answers(path: &Path, answers: &[Answer]) -> Result<()> {
    let mut s = String::new();
    for a in answers {
        s.push_str(&serde_json::to_string(a)?);
        s.push('\n');
    }
    write_atomic(path, s.as_bytes())
}

/// Stable answer id (FastChat uses a random short uuid; ours is a hash of model and question).
pub fn answer_id(model_id: &str, question_id: u64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in model_id.bytes().chain(question_id.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Settings of an export.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MtBenchConfig {
    pub model_id: String,
    pub max_new_tokens: usize,
    /// `None`: FastChat's per-category temperatures; `Some(t)`: `t` everywhere (0 = greedy).
    pub temperature: Option<f64>,
    pub seed: u64,
    /// Only the first N questions (smoke runs).
    pub limit: Option<usize>,
}

/// Token ids that end an assistant turn: EOS and the usual end-of-turn tokens the vocabulary has.
pub fn turn_stop_ids(tok: &LmTokenizer) -> Vec<u32> {
    let mut out: Vec<u32> = tok.eos_ids.clone();
    for t in ["<|im_end|>", "<|eot_id|>", "<|end|>", "</s>", "<end_of_turn>"] {
        if let Some(i) = tok.token_to_id(t) {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

/// Generates the answers of every question not yet in `out_file`, rewriting the file after each
/// question (atomically), so an interrupted export resumes where it stopped.
pub fn export_answers<B: Backend>(model: &LlamaForCausalLM<B>, tok: &LmTokenizer, questions: &[Question], cfg: &MtBenchConfig, out_file: &Path, quiet: bool) -> Result<usize> {
    if !tok.has_chat_template() {
        return Err(anyhow!("{}: the tokenizer has no chat template, which MT-bench answers need", tok.source));
    }
    let mut answers = read_answers(out_file)?;
    let done: BTreeSet<u64> = answers.iter().map(|a| a.question_id).collect();
    let todo: Vec<&Question> = questions.iter().take(cfg.limit.unwrap_or(usize::MAX)).filter(|q| !done.contains(&q.question_id)).collect();
    let stops = turn_stop_ids(tok);
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { crate::lm::progress_bar(todo.len() as u64, "mt-bench") };
    for q in &todo {
        let temperature = cfg.temperature.unwrap_or_else(|| category_temperature(&q.category));
        let mut messages = Vec::new();
        let mut turns = Vec::new();
        for (ti, turn) in q.turns.iter().enumerate() {
            messages.push(ChatMessage::user(turn.clone()));
            let prompt = render_chat(&messages, true, tok)?;
            // the template writes any BOS itself
            let ids = tok.encode(&prompt, false)?;
            let gen = GenerationConfig {
                max_new_tokens: cfg.max_new_tokens,
                temperature: if temperature < 1e-4 { 0.0 } else { temperature },
                top_p: 1.0,
                seed: cfg.seed.wrapping_add(q.question_id * 16 + ti as u64),
                stop_tokens: stops.clone(),
            };
            let out = model.generate(&ids, &gen)?;
            let text = tok.decode(&out[ids.len()..])?.trim().to_string();
            messages.push(assistant(text.clone()));
            turns.push(text);
        }
        answers.push(Answer {
            question_id: q.question_id,
            answer_id: answer_id(&cfg.model_id, q.question_id),
            model_id: cfg.model_id.clone(),
            choices: vec![Choice { index: 0, turns }],
            tstamp: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        });
        write_answers(out_file, &answers)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(todo.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_and_answer_format() {
        let base = std::env::var_os("LORTA_SHARED_DATA").map(std::path::PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
        let p = base.join("llm/mt_bench/question.jsonl");
        if p.is_file() {
            let q = load_questions(&p).unwrap();
            assert_eq!(q.len(), 80);
            assert!(q.iter().all(|x| x.turns.len() == 2));
            assert_eq!(q[0].question_id, 81);
            assert_eq!(category_temperature(&q[0].category), 0.7);
        } else {
            eprintln!("skipped the real questions: {} not found", p.display());
        }
        let a = Answer { question_id: 81, answer_id: answer_id("m", 81), model_id: "m".into(), choices: vec![Choice { index: 0, turns: vec!["a".into(), "b".into()] }], tstamp: 1.5 };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["choices"][0]["turns"][1], "b");
        for k in ["question_id", "answer_id", "model_id", "choices", "tstamp"] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_ne!(answer_id("m", 81), answer_id("m", 82));
    }
}
