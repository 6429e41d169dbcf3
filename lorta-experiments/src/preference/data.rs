//! Preference pairs: Anthropic HH-RLHF (`{"chosen", "rejected"}` transcripts, JSONL, optionally
//! gzipped) and Orca-DPO (`{"system", "question", "chosen", "rejected"}`, JSON list or JSONL).
//!
//! HH-RLHF: the prompt is the chosen transcript up to and including its last "\n\nAssistant:";
//! the responses are what follows it in each transcript. A pair whose rejected transcript does
//! not start with that prompt cannot be split this way; such pairs are counted and reported
//! ([`PreferenceData::skipped`]), never silently dropped.
//! Orca-DPO: rendered in the same Human/Assistant layout (`"\n\nHuman: {system}\n\n{question}
//! \n\nAssistant:"`, the system line left out when empty) unless a chat template is used.
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const ASSISTANT_TAG: &str = "\n\nAssistant:";

/// One preference pair. `system`/`question` are set for Orca-DPO rows (chat-template rendering).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreferencePair {
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
    pub system: Option<String>,
    pub question: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreferenceFormat {
    HhRlhf,
    OrcaDpo,
}

#[derive(Clone, Debug)]
pub struct PreferenceData {
    pub format: PreferenceFormat,
    pub pairs: Vec<PreferencePair>,
    /// (1-based row, why) of rows that could not be used.
    pub skipped: Vec<(usize, String)>,
    pub source: String,
}

fn read_maybe_gz(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_string(&mut s).with_context(|| format!("{}: gzip stream is corrupt", path.display()))?;
        Ok(s)
    } else {
        String::from_utf8(bytes).map_err(|e| anyhow!("{}: not UTF-8 text: {e}", path.display()))
    }
}

/// Rows of a JSON list or of JSON lines, with 1-based row numbers.
fn rows(path: &Path) -> Result<Vec<(usize, Value)>> {
    let text = read_maybe_gz(path)?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let v: Vec<Value> = serde_json::from_str(trimmed).map_err(|e| anyhow!("{}: not a valid JSON list: {e}", path.display()))?;
        return Ok(v.into_iter().enumerate().map(|(i, x)| (i + 1, x)).collect());
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| anyhow!("{} line {}: not valid JSON: {e}", path.display(), i + 1))?;
        out.push((i + 1, v));
    }
    Ok(out)
}

fn field<'a>(v: &'a Value, key: &str, path: &Path, row: usize) -> Result<&'a str> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| anyhow!("{} row {row}: missing or non-string field `{key}`", path.display()))
}

/// Splits an HH-RLHF pair into prompt and the two responses.
pub fn split_hh(chosen: &str, rejected: &str) -> std::result::Result<PreferencePair, String> {
    let cut = chosen.rfind(ASSISTANT_TAG).ok_or("the chosen transcript has no \"\\n\\nAssistant:\" turn")? + ASSISTANT_TAG.len();
    let prompt = &chosen[..cut];
    let rest = rejected.strip_prefix(prompt).ok_or("the rejected transcript does not share the chosen one's prompt")?;
    Ok(PreferencePair { prompt: prompt.to_string(), chosen: chosen[cut..].to_string(), rejected: rest.to_string(), system: None, question: None })
}

/// The Human/Assistant rendering of an Orca-DPO prompt.
pub fn orca_prompt(system: &str, question: &str) -> String {
    if system.trim().is_empty() {
        format!("\n\nHuman: {question}{ASSISTANT_TAG}")
    } else {
        format!("\n\nHuman: {system}\n\n{question}{ASSISTANT_TAG}")
    }
}

/// Reads a preference file, detecting the format from the first row's keys.
pub fn load_preferences(path: &Path) -> Result<PreferenceData> {
    let rows = rows(path)?;
    let first = rows.first().ok_or_else(|| anyhow!("{}: no rows", path.display()))?;
    let format = if first.1.get("question").is_some() {
        PreferenceFormat::OrcaDpo
    } else if first.1.get("chosen").is_some() {
        PreferenceFormat::HhRlhf
    } else {
        bail!("{} row {}: neither HH-RLHF (`chosen`, `rejected`) nor Orca-DPO (`system`, `question`, `chosen`, `rejected`) keys", path.display(), first.0);
    };
    let mut pairs = Vec::new();
    let mut skipped = Vec::new();
    for (row, v) in &rows {
        let chosen = field(v, "chosen", path, *row)?;
        let rejected = field(v, "rejected", path, *row)?;
        match format {
            PreferenceFormat::HhRlhf => match split_hh(chosen, rejected) {
                Ok(p) => pairs.push(p),
                Err(why) => skipped.push((*row, why.to_string())),
            },
            PreferenceFormat::OrcaDpo => {
                let system = v.get("system").and_then(Value::as_str).unwrap_or("");
                let question = field(v, "question", path, *row)?;
                pairs.push(PreferencePair {
                    prompt: orca_prompt(system, question),
                    chosen: format!(" {chosen}"),
                    rejected: format!(" {rejected}"),
                    system: Some(system.to_string()),
                    question: Some(question.to_string()),
                });
            }
        }
    }
    if pairs.is_empty() {
        bail!("{}: no usable preference pair ({} rows skipped, first: {:?})", path.display(), skipped.len(), skipped.first());
    }
    Ok(PreferenceData { format, pairs, skipped, source: path.display().to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm").join(name)
    }

    #[test]
    fn hh_rlhf_split() {
        let d = load_preferences(&fixture("hh_rlhf.jsonl")).unwrap();
        assert_eq!(d.format, PreferenceFormat::HhRlhf);
        assert_eq!(d.pairs.len(), 2);
        assert_eq!(d.pairs[0].prompt, "\n\nHuman: How do I bake bread?\n\nAssistant:");
        assert_eq!(d.pairs[0].rejected, " Buy it.");
        // multi-turn: the prompt runs to the LAST assistant tag
        assert!(d.pairs[1].prompt.ends_with("capital of France?\n\nAssistant:"), "{}", d.pairs[1].prompt);
        assert_eq!(d.pairs[1].chosen, " Paris.");
        assert!(split_hh("\n\nHuman: a\n\nAssistant: b", "\n\nHuman: c\n\nAssistant: d").is_err());
    }

    #[test]
    fn orca_dpo_rows() {
        let d = load_preferences(&fixture("orca_dpo.jsonl")).unwrap();
        assert_eq!(d.format, PreferenceFormat::OrcaDpo);
        assert_eq!(d.pairs[0].prompt, "\n\nHuman: What is 2+2?\n\nAssistant:");
        assert_eq!(d.pairs[1].prompt, "\n\nHuman: You are a helpful assistant.\n\nName a fruit.\n\nAssistant:");
        assert_eq!(d.pairs[0].chosen, " 2+2 equals 4.");
        // a JSON list works as well
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("o.json");
        std::fs::write(&p, r#"[{"system": "", "question": "q", "chosen": "a", "rejected": "b"}]"#).unwrap();
        assert_eq!(load_preferences(&p).unwrap().pairs.len(), 1);
        std::fs::write(&p, r#"[{"system": "", "question": "q", "chosen": "a"}]"#).unwrap();
        let e = load_preferences(&p).unwrap_err().to_string();
        assert!(e.contains("row 1") && e.contains("rejected"), "{e}");
    }

    #[test]
    fn real_hh_rlhf_gz() {
        let base = std::env::var_os("LORTA_SHARED_DATA").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
        let p = base.join("llm/hh_rlhf/harmless-base_test.jsonl.gz");
        if !p.is_file() {
            eprintln!("skipped: {} not found", p.display());
            return;
        }
        let d = load_preferences(&p).unwrap();
        assert_eq!(d.pairs.len() + d.skipped.len(), 2312);
        assert!(d.skipped.len() < 50, "{} skipped", d.skipped.len());
        assert!(d.pairs.iter().all(|p| p.prompt.starts_with("\n\nHuman:") && p.prompt.ends_with(ASSISTANT_TAG)));
    }
}
