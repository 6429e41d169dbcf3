//! A causal LM's tokenizer (`tokenizer.json` + `tokenizer_config.json`), and [`Sequence`]: the
//! ids of prompt + continuation with the position where the scored/trained part starts.
//!
//! The continuation's tokens are the last `len(encode(prompt + continuation)) −
//! len(encode(prompt))` tokens, as MeZO counts option lengths and lit-gpt masks prompts, so BPE
//! merges across the boundary do not shift anything.
use std::path::Path;

use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use lorta_models::lm_tokenizer::{ChatMessage, HfLmTokenizer, LmTokenizer as DynTokenizer};

/// Token ids of one training/scoring sequence.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Sequence {
    pub ids: Vec<u32>,
    /// Index of the first target token (tokens `target_start..` are scored / trained on).
    pub target_start: usize,
    /// Further half-open ranges after `target_start` that are not targets (the prompts of the
    /// later examples of a packed row).
    pub prompt_spans: Vec<(usize, usize)>,
}

impl Sequence {
    pub fn new(ids: Vec<u32>, target_start: usize) -> Self {
        Sequence { ids, target_start, prompt_spans: Vec::new() }
    }
    /// Whether token `t` is scored / trained on.
    pub fn is_target(&self, t: usize) -> bool {
        t >= self.target_start && t < self.ids.len() && !self.prompt_spans.iter().any(|&(a, b)| t >= a && t < b)
    }
    pub fn target_len(&self) -> usize {
        (self.target_start..self.ids.len()).filter(|&t| self.is_target(t)).count()
    }
}

/// A causal LM's tokenizer (any format lorta-models reads: HF `tokenizer.json`, GGUF metadata,
/// llama2.c / SentencePiece) with the special ids the LLM families need.
#[derive(Clone)]
pub struct LmTokenizer {
    inner: Arc<dyn DynTokenizer>,
    pub eos_id: Option<u32>,
    /// Every end-of-sequence id (generation stops at any).
    pub eos_ids: Vec<u32>,
    pub bos_id: Option<u32>,
    pub pad_id: u32,
    pub source: String,
}

impl std::fmt::Debug for LmTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmTokenizer").field("source", &self.source).field("eos_id", &self.eos_id).finish()
    }
}

impl LmTokenizer {
    pub fn new(inner: Box<dyn DynTokenizer>) -> Self {
        let eos_ids = inner.eos_ids();
        let eos_id = eos_ids.first().copied();
        let bos_id = inner.bos_id();
        let pad_id = inner.pad_id().or(eos_id).unwrap_or(0);
        let source = inner.source().display().to_string();
        LmTokenizer { inner: Arc::from(inner), eos_id, eos_ids, bos_id, pad_id, source }
    }

    /// The tokenizer of a Hugging Face model folder (`tokenizer.json`, tokenizer_config.json).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        Ok(Self::new(Box::new(HfLmTokenizer::from_dir(dir)?)))
    }

    /// The chat template's rendering of `messages` (HF `apply_chat_template(tokenize=False)`).
    pub fn apply_chat(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        Ok(self.inner.apply_chat_template(messages, add_generation_prompt)?)
    }

    pub fn has_chat_template(&self) -> bool {
        self.inner.chat_template().is_some()
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Ids of `text`, with the tokenizer's special tokens (BOS for LLaMA-2) when `special`.
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        self.inner.encode(text, special).map_err(|e| anyhow!("{}: encoding {:?}: {e}", self.source, truncate(text)))
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(|e| anyhow!("{}: decoding: {e}", self.source))
    }

    /// prompt + continuation (+ EOS), left-truncated to `max_len` tokens (keeping a leading BOS),
    /// the continuation never cut. Errors when the continuation alone does not fit.
    pub fn sequence(&self, prompt: &str, continuation: &str, add_eos: bool, max_len: Option<usize>) -> Result<Sequence> {
        let p = self.encode(prompt, true)?;
        let mut full = self.encode(&format!("{prompt}{continuation}"), true)?;
        if add_eos {
            let eos = self.eos_id.ok_or_else(|| anyhow!("{}: no EOS token known (tokenizer_config.json eos_token)", self.source))?;
            full.push(eos);
        }
        let k = full.len().saturating_sub(p.len()).max(usize::from(add_eos)).min(full.len());
        let seq = Sequence::new(full.clone(), full.len() - k);
        self.truncate_left(seq, max_len)
    }

    /// prompt + continuation (+ EOS) fitted into `max_len` tokens for training: the prompt is
    /// first limited to `max_prompt` tokens (from the left, keeping BOS), then, when the whole
    /// is still too long, the continuation keeps at least half of `max_len` (its end is cut,
    /// TRL's `keep_start`) and the prompt loses tokens from its left.
    pub fn sequence_limited(&self, prompt: &str, continuation: &str, add_eos: bool, max_prompt: Option<usize>, max_len: usize) -> Result<Sequence> {
        let full = self.sequence(prompt, continuation, add_eos, None)?;
        let bos = usize::from(self.bos_id.is_some() && full.ids.first() == self.bos_id.as_ref());
        if max_len < 2 + bos {
            return Err(anyhow!("maximum length {max_len} leaves no room for a prompt and a response"));
        }
        let mut prompt_ids: Vec<u32> = full.ids[..full.target_start].to_vec();
        let mut target: Vec<u32> = full.ids[full.target_start..].to_vec();
        let cut_prompt = |p: &mut Vec<u32>, keep: usize| {
            if p.len() > keep {
                let keep = keep.max(bos);
                let tail = p.len() - (keep - bos);
                let mut out: Vec<u32> = p[..bos].to_vec();
                out.extend_from_slice(&p[tail..]);
                *p = out;
            }
        };
        if let Some(mp) = max_prompt {
            cut_prompt(&mut prompt_ids, mp.max(1 + bos));
        }
        if prompt_ids.len() + target.len() > max_len {
            let keep_t = target.len().min((max_len - prompt_ids.len().min(max_len)).max(max_len / 2)).max(1);
            target.truncate(keep_t);
            cut_prompt(&mut prompt_ids, max_len - keep_t);
        }
        let target_start = prompt_ids.len();
        prompt_ids.extend(target);
        Ok(Sequence::new(prompt_ids, target_start))
    }

    /// [`Self::sequence_limited`] without a separate prompt limit.
    pub fn sequence_clipped(&self, prompt: &str, continuation: &str, add_eos: bool, max_len: usize) -> Result<Sequence> {
        self.sequence_limited(prompt, continuation, add_eos, None, max_len)
    }

    /// A prompt alone (for generation), left-truncated to `max_len`.
    pub fn prompt(&self, prompt: &str, max_len: Option<usize>) -> Result<Vec<u32>> {
        let ids = self.encode(prompt, true)?;
        let n = ids.len();
        Ok(self.truncate_left(Sequence::new(ids, n), max_len)?.ids)
    }

    fn truncate_left(&self, seq: Sequence, max_len: Option<usize>) -> Result<Sequence> {
        let Some(max) = max_len else { return Ok(seq) };
        if seq.ids.len() <= max {
            return Ok(seq);
        }
        let keep_bos = self.bos_id.is_some() && seq.ids.first() == self.bos_id.as_ref();
        let budget = max - usize::from(keep_bos);
        let t = seq.target_len();
        if t >= budget {
            return Err(anyhow!("the continuation alone has {t} tokens, more than the maximum length {max}"));
        }
        let drop = seq.ids.len() - max;
        let mut ids = Vec::with_capacity(max);
        if keep_bos {
            ids.push(seq.ids[0]);
            ids.extend_from_slice(&seq.ids[1 + drop..]);
        } else {
            ids.extend_from_slice(&seq.ids[drop..]);
        }
        Ok(Sequence::new(ids.clone(), ids.len() - t))
    }

    /// Ids whose text contains a newline (generation of SQuAD/DROP answers stops at one), plus EOS.
    pub fn newline_stop_ids(&self) -> Vec<u32> {
        let mut out: Vec<u32> = (0..self.inner.vocab_size() as u32)
            .filter(|&i| self.inner.decode(&[i], false).map(|t| t.contains('\n')).unwrap_or(false))
            .collect();
        out.extend(self.eos_ids.iter().copied().filter(|e| !out.contains(e)).collect::<Vec<_>>());
        out
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Reads the tokenizer of a model folder, with the file in errors.
pub fn load_tokenizer(dir: &Path) -> Result<LmTokenizer> {
    LmTokenizer::from_dir(dir).with_context(|| format!("loading the tokenizer of {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LmTokenizer {
        LmTokenizer::from_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm/tiny-llama")).unwrap()
    }

    #[test]
    fn sequences_match_the_reference_tokenization() {
        let tok = tiny();
        assert_eq!((tok.bos_id, tok.eos_id, tok.pad_id), (Some(1), Some(2), 0));
        assert!(tok.has_chat_template());
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm/tiny-llama/reference.json")).unwrap()).unwrap();
        let ids = |v: &serde_json::Value| -> Vec<u32> { v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect() };
        let copa = &r["copa"][0];
        let prompt = copa["prompt"].as_str().unwrap();
        assert_eq!(tok.prompt(prompt, None).unwrap(), ids(&copa["prompt_ids"]));
        let cand = &copa["candidates"][0];
        let s = tok.sequence(prompt, "the sun was rising.", false, None).unwrap();
        assert_eq!(s.ids, ids(&cand["ids"]));
        assert_eq!(s.target_start, cand["prompt_len"].as_u64().unwrap() as usize);
        let sft = &r["sft"][0];
        let s = tok.sequence(sft["prompt"].as_str().unwrap(), sft["response"].as_str().unwrap(), true, None).unwrap();
        assert_eq!(s.ids, ids(&sft["ids"]));
        assert_eq!(*s.ids.last().unwrap(), 2);
    }

    #[test]
    fn left_truncation_keeps_bos_and_the_continuation() {
        let tok = tiny();
        let full = tok.sequence("I emptied my pockets so ", "I found a weapon.", true, None).unwrap();
        let t = tok.sequence("I emptied my pockets so ", "I found a weapon.", true, Some(full.target_len() + 3)).unwrap();
        assert_eq!(t.ids.len(), full.target_len() + 3);
        assert_eq!(t.ids[0], 1, "BOS kept");
        assert_eq!(&t.ids[t.target_start..], &full.ids[full.target_start..]);
        assert_eq!(&t.ids[1..t.target_start], &full.ids[full.target_start - 2..full.target_start]);
        let e = tok.sequence("I emptied my pockets so ", "I found a weapon.", true, Some(3)).unwrap_err().to_string();
        assert!(e.contains("continuation alone"), "{e}");
        // training truncation: prompt limit first, then the response keeps half the budget
        let l = tok.sequence_limited("I emptied my pockets so ", "I found a weapon.", true, Some(3), 100).unwrap();
        assert_eq!(l.target_start, 3);
        assert_eq!(l.ids[0], 1);
        assert_eq!(&l.ids[3..], &full.ids[full.target_start..]);
        let l = tok.sequence_limited("I emptied my pockets so ", "I found a weapon.", true, None, 6).unwrap();
        assert_eq!(l.ids.len(), 6);
        assert_eq!(l.target_len(), 3);
        assert_eq!(&l.ids[3..], &full.ids[full.target_start..full.target_start + 3]);
        let nl = tok.newline_stop_ids();
        assert!(nl.contains(&2) && nl.len() > 1, "{nl:?}");
    }
}
