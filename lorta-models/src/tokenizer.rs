//! Text tokenisation through the `tokenizers` crate: `tokenizer.json` when the folder has one,
//! else a BERT WordPiece tokenizer built from `vocab.txt` (BertNormalizer with `do_lower_case`
//! from tokenizer_config.json / config.json, default true; BertPreTokenizer; `[CLS] … [SEP]`
//! post-processing). Padding is done by the caller ([`pad_batch`]); truncation to `max_len`
//! (longest-first for pairs) is built in.
use std::path::Path;

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

use crate::error::{ModelError, Result};
use crate::hub::ModelDir;
use crate::json::JsonFile;

/// One encoded text (or text pair).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

pub struct TextTokenizer {
    inner: Tokenizer,
    pad_id: u32,
    source: String,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer").field("source", &self.source).field("pad_id", &self.pad_id).finish()
    }
}

fn tok_err(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::file(path, format!("tokenizer: {e}"))
}

impl TextTokenizer {
    /// The folder's tokenizer (`tokenizer.json`, else `vocab.txt`); `max_len` truncates.
    pub fn from_dir(dir: &Path, max_len: Option<usize>) -> Result<Self> {
        let md = ModelDir { path: dir.to_path_buf() };
        let config = md.config().ok();
        let tcfg = JsonFile::read(&dir.join("tokenizer_config.json")).ok();
        let (mut inner, source) = if let Some(p) = md.tokenizer_json() {
            (Tokenizer::from_file(&p).map_err(|e| tok_err(&p, e))?, p)
        } else if let Some(p) = md.vocab_txt() {
            let lower = tcfg
                .as_ref()
                .and_then(|t| t.opt_bool("do_lower_case").ok().flatten())
                .or_else(|| config.as_ref().and_then(|c| c.opt_bool("do_lower_case").ok().flatten()))
                .unwrap_or(true);
            (wordpiece_from_vocab(&p, lower)?, p)
        } else {
            return Err(ModelError::file(dir, "no tokenizer.json or vocab.txt in model folder (pass token ids instead)"));
        };
        inner.with_padding(None);
        let trunc = match max_len {
            Some(n) => Some(TruncationParams { max_length: n, strategy: TruncationStrategy::LongestFirst, ..Default::default() }),
            None => inner.get_truncation().cloned(),
        };
        inner.with_truncation(trunc).map_err(|e| tok_err(&source, e))?;
        let pad_id = find_pad_id(&inner, config.as_ref(), tcfg.as_ref());
        Ok(TextTokenizer { inner, pad_id, source: source.display().to_string() })
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Encodes one text with the tokenizer's special tokens.
    pub fn encode(&self, text: &str) -> Result<Encoded> {
        let e = self.inner.encode(text, true).map_err(|e| ModelError::input(format!("{}: encoding {text:?}: {e}", self.source)))?;
        Ok(Encoded { ids: e.get_ids().to_vec(), type_ids: e.get_type_ids().to_vec() })
    }

    /// Encodes a pair (`[CLS] a [SEP] b [SEP]` for BERT, token types 0 then 1).
    pub fn encode_pair(&self, a: &str, b: &str) -> Result<Encoded> {
        let e = self
            .inner
            .encode((a, b), true)
            .map_err(|e| ModelError::input(format!("{}: encoding pair: {e}", self.source)))?;
        Ok(Encoded { ids: e.get_ids().to_vec(), type_ids: e.get_type_ids().to_vec() })
    }

    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(|e| ModelError::input(format!("{}: decoding: {e}", self.source)))
    }
}

/// BERT WordPiece tokenizer from a `vocab.txt`.
pub fn wordpiece_from_vocab(vocab: &Path, lowercase: bool) -> Result<Tokenizer> {
    let text = std::fs::read_to_string(vocab).map_err(|e| ModelError::io(vocab, e))?;
    let mut map = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let tok = line.trim_end_matches('\r');
        if !tok.is_empty() {
            map.entry(tok.to_string()).or_insert(i as u32);
        }
    }
    let id = |t: &str| map.get(t).copied().ok_or_else(|| ModelError::file(vocab, format!("vocabulary lacks the special token `{t}`")));
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    id("[UNK]")?;
    let vocab_str = vocab.to_str().ok_or_else(|| ModelError::file(vocab, "path is not UTF-8"))?;
    let model = WordPiece::from_file(vocab_str)
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| tok_err(vocab, e))?;
    let mut tok = Tokenizer::new(model);
    tok.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)));
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    tok.with_post_processor(Some(BertProcessing::new(("[SEP]".into(), sep), ("[CLS]".into(), cls))));
    tok.with_decoder(Some(WordPieceDecoder::default()));
    Ok(tok)
}

fn find_pad_id(tok: &Tokenizer, config: Option<&JsonFile>, tcfg: Option<&JsonFile>) -> u32 {
    if let Some(id) = config.and_then(|c| c.ids("pad_token_id").ok()).and_then(|v| v.first().copied()) {
        return id;
    }
    if let Some(t) = tcfg.and_then(|c| c.opt_str("pad_token").ok().flatten()) {
        if let Some(id) = tok.token_to_id(&t) {
            return id;
        }
    }
    ["[PAD]", "<pad>", "<|pad|>"].iter().find_map(|t| tok.token_to_id(t)).unwrap_or(0)
}

/// A right-padded batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Padded {
    pub input_ids: Vec<Vec<u32>>,
    pub attention_mask: Vec<Vec<u32>>,
    pub token_type_ids: Vec<Vec<u32>>,
}

/// Right-pads sequences to the longest, with `pad_id` and mask 0.
pub fn pad_batch(seqs: &[Encoded], pad_id: u32) -> Padded {
    let n = seqs.iter().map(|s| s.ids.len()).max().unwrap_or(0);
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    let mut types = Vec::new();
    for s in seqs {
        let k = s.ids.len();
        ids.push(s.ids.iter().copied().chain(std::iter::repeat_n(pad_id, n - k)).collect());
        mask.push(std::iter::repeat_n(1, k).chain(std::iter::repeat_n(0, n - k)).collect());
        let tt: Vec<u32> = if s.type_ids.len() == k { s.type_ids.clone() } else { vec![0; k] };
        types.push(tt.into_iter().chain(std::iter::repeat_n(0, n - k)).collect());
    }
    Padded { input_ids: ids, attention_mask: mask, token_type_ids: types }
}
