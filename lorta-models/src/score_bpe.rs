//! Score-ordered BPE over a piece vocabulary, the SentencePiece-BPE scheme of LLaMA-1/2
//! tokenizers as llama2.c (`run.c`'s `encode`/`decode`) and llama.cpp (`tokenizer.ggml.model =
//! "llama"`) run it: the text (with a leading space, spaces written as the vocabulary's space
//! symbol) is split into UTF-8 characters, characters missing from the vocabulary become their
//! bytes' `<0xXX>` pieces, then the adjacent pair whose concatenation is a piece with the highest
//! score is merged (leftmost on ties) until no pair merges.
//!
//! Sources: llama2.c's tokenizer `.bin` (`max_token_length: i32`, then per piece `score: f32`,
//! `len: i32`, `bytes`; pieces use a plain space) and GGUF metadata (pieces use `▁`).
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

/// SentencePiece's visible space.
pub const SPM_SPACE: &str = "\u{2581}";

/// What kind of piece an id is (GGUF's `tokenizer.ggml.token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceKind {
    Normal,
    Unknown,
    /// BOS/EOS and other special tokens: never produced by merges, dropped by
    /// `decode(.., skip_special = true)`.
    Control,
    UserDefined,
    Unused,
    /// `<0xXX>` byte-fallback pieces.
    Byte,
}

#[derive(Clone, Debug)]
pub struct ScoreBpeTokenizer {
    pieces: Vec<Vec<u8>>,
    scores: Vec<f32>,
    kinds: Vec<PieceKind>,
    lookup: HashMap<Vec<u8>, u32>,
    /// `byte_ids[b]`: the id of `<0xbb>`, if the vocabulary has byte fallback.
    byte_ids: [Option<u32>; 256],
    /// How a space is written in the pieces (`" "` in llama2.c files, `"▁"` in SentencePiece).
    space: String,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub unk_id: Option<u32>,
    /// Prepend a space to the text (SentencePiece's `add_dummy_prefix`).
    pub add_space_prefix: bool,
    /// Where the vocabulary came from, for messages.
    pub source: PathBuf,
}

/// A candidate merge of symbols `left` and `right` (indices into the symbol list).
#[derive(Debug)]
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Max-heap order: higher score first, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then_with(|| other.left.cmp(&self.left))
    }
}

/// One symbol of the text being merged: a byte range, or a byte-fallback id (never merged).
#[derive(Clone, Debug)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
    fallback: bool,
}

fn byte_piece(b: u8) -> Vec<u8> {
    format!("<0x{b:02X}>").into_bytes()
}

impl ScoreBpeTokenizer {
    pub fn new(pieces: Vec<Vec<u8>>, scores: Vec<f32>, kinds: Vec<PieceKind>, space: &str, source: impl Into<PathBuf>) -> Result<Self> {
        let source = source.into();
        if pieces.len() != scores.len() || pieces.len() != kinds.len() {
            return Err(ModelError::file(
                &source,
                format!("tokenizer: {} pieces, {} scores, {} token types", pieces.len(), scores.len(), kinds.len()),
            ));
        }
        let mut lookup = HashMap::with_capacity(pieces.len());
        let mut byte_ids = [None; 256];
        for (i, p) in pieces.iter().enumerate() {
            // first occurrence wins for duplicated pieces
            lookup.entry(p.clone()).or_insert(i as u32);
        }
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            *slot = lookup.get(&byte_piece(b as u8)).copied();
        }
        Ok(ScoreBpeTokenizer {
            pieces,
            scores,
            kinds,
            lookup,
            byte_ids,
            space: space.to_string(),
            bos_id: None,
            eos_id: None,
            unk_id: None,
            add_space_prefix: true,
            source,
        })
    }

    /// A llama2.c tokenizer file (`tokenizer.bin`, `tok512.bin`): BOS 1, EOS 2, `<unk>` 0, byte
    /// pieces `<0x00>`..`<0xFF>`; pieces carry plain spaces.
    pub fn from_llama2c_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        let err = |m: String| ModelError::file(path, format!("llama2.c tokenizer: {m}"));
        let take = |pos: &mut usize, n: usize, what: &str, piece: usize| -> Result<&[u8]> {
            let end = pos.checked_add(n).filter(|&e| e <= bytes.len()).ok_or_else(|| {
                err(format!("file truncated at byte {pos} while reading the {what} of piece {piece} (file has {} bytes)", bytes.len()))
            })?;
            let s = &bytes[*pos..end];
            *pos = end;
            Ok(s)
        };
        let i32_at = |b: &[u8]| i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let mut pos = 0usize;
        let max_len = i32_at(take(&mut pos, 4, "max_token_length", 0)?);
        if max_len <= 0 {
            return Err(err(format!("max_token_length {max_len} must be positive")));
        }
        let (mut pieces, mut scores) = (Vec::new(), Vec::new());
        // The format has no piece count: pieces run to the end of the file.
        while pos < bytes.len() {
            let i = pieces.len();
            let score = f32::from_bits(i32_at(take(&mut pos, 4, "score", i)?) as u32);
            let len = i32_at(take(&mut pos, 4, "length", i)?);
            if len < 0 || len > max_len {
                return Err(err(format!("piece {i} has length {len} (max_token_length {max_len})")));
            }
            pieces.push(take(&mut pos, len as usize, "bytes", i)?.to_vec());
            scores.push(score);
        }
        if pieces.len() < 3 {
            return Err(err(format!("only {} pieces", pieces.len())));
        }
        let kinds = pieces
            .iter()
            .enumerate()
            .map(|(i, p)| match i {
                0 => PieceKind::Unknown,
                1 | 2 => PieceKind::Control,
                _ if p.len() == 6 && p.starts_with(b"<0x") && p.ends_with(b">") => PieceKind::Byte,
                _ => PieceKind::Normal,
            })
            .collect();
        let mut t = Self::new(pieces, scores, kinds, " ", path)?;
        t.bos_id = Some(1);
        t.eos_id = Some(2);
        t.unk_id = Some(0);
        Ok(t)
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    pub fn piece(&self, id: u32) -> Option<&[u8]> {
        self.pieces.get(id as usize).map(Vec::as_slice)
    }

    pub fn kind(&self, id: u32) -> Option<PieceKind> {
        self.kinds.get(id as usize).copied()
    }

    pub fn piece_id(&self, piece: &str) -> Option<u32> {
        self.lookup.get(piece.as_bytes()).copied()
    }

    /// Token ids of `text` (BOS first when `add_bos` and the vocabulary has one).
    pub fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        if add_bos {
            if let Some(b) = self.bos_id {
                out.push(b);
            }
        }
        if text.is_empty() {
            return Ok(out);
        }
        let mut s = String::with_capacity(text.len() + self.space.len());
        if self.add_space_prefix {
            s.push(' ');
        }
        s.push_str(text);
        let s = if self.space == " " { s } else { s.replace(' ', &self.space) };
        let bytes = s.as_bytes();
        let mut syms: Vec<Symbol> = Vec::new();
        for (start, ch) in s.char_indices() {
            let len = ch.len_utf8();
            if self.lookup.contains_key(&bytes[start..start + len]) {
                syms.push(Symbol { start, len, prev: None, next: None, fallback: false });
            } else {
                for k in 0..len {
                    syms.push(Symbol { start: start + k, len: 1, prev: None, next: None, fallback: true });
                }
            }
        }
        let n = syms.len();
        for (i, sym) in syms.iter_mut().enumerate() {
            sym.prev = i.checked_sub(1);
            sym.next = (i + 1 < n).then_some(i + 1);
        }
        let mut heap = BinaryHeap::new();
        for i in 0..n.saturating_sub(1) {
            self.push_bigram(&syms, bytes, i, i + 1, &mut heap);
        }
        while let Some(bg) = heap.pop() {
            let (l, r) = (bg.left, bg.right);
            // stale entry: one side was merged away or grew since the pair was queued
            if syms[l].len == 0 || syms[r].len == 0 || syms[l].len + syms[r].len != bg.len || syms[l].next != Some(r) {
                continue;
            }
            syms[l].len += syms[r].len;
            syms[r].len = 0;
            syms[l].next = syms[r].next;
            if let Some(nx) = syms[r].next {
                syms[nx].prev = Some(l);
            }
            if let Some(p) = syms[l].prev {
                self.push_bigram(&syms, bytes, p, l, &mut heap);
            }
            if let Some(nx) = syms[l].next {
                self.push_bigram(&syms, bytes, l, nx, &mut heap);
            }
        }
        let mut i = (n > 0).then_some(0);
        while let Some(k) = i {
            let sym = &syms[k];
            let piece = &bytes[sym.start..sym.start + sym.len];
            if sym.fallback {
                let b = piece[0];
                match (self.byte_ids[b as usize], self.unk_id) {
                    (Some(id), _) | (None, Some(id)) => out.push(id),
                    (None, None) => {
                        return Err(ModelError::input(format!(
                            "{}: byte 0x{b:02X} of {text:?} has no piece and the vocabulary has no <unk>",
                            self.source.display()
                        )))
                    }
                }
            } else {
                out.push(self.lookup[piece]);
            }
            i = sym.next;
        }
        Ok(out)
    }

    fn push_bigram(&self, syms: &[Symbol], bytes: &[u8], l: usize, r: usize, heap: &mut BinaryHeap<Bigram>) {
        let (a, b) = (&syms[l], &syms[r]);
        if a.fallback || b.fallback {
            return;
        }
        let merged = &bytes[a.start..b.start + b.len];
        if let Some(&id) = self.lookup.get(merged) {
            if matches!(self.kinds[id as usize], PieceKind::Normal | PieceKind::UserDefined) {
                heap.push(Bigram { score: self.scores[id as usize], left: l, right: r, len: merged.len() });
            }
        }
    }

    /// Text of `ids`: byte pieces become raw bytes, the space symbol a space, and the space that
    /// encoding prepended (the first piece after BOS, or the first piece) is stripped, as
    /// llama2.c's `decode` and SentencePiece do. Invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let mut out: Vec<u8> = Vec::new();
        let mut prev: Option<u32> = None;
        for &id in ids {
            let piece = self.piece(id).ok_or_else(|| {
                ModelError::input(format!("{}: token id {id} out of range (vocabulary of {})", self.source.display(), self.vocab_size()))
            })?;
            let kind = self.kinds[id as usize];
            if skip_special && matches!(kind, PieceKind::Control | PieceKind::Unused) {
                prev = Some(id);
                continue;
            }
            let at_start = prev.is_none() || (self.bos_id.is_some() && prev == self.bos_id);
            let mut text: Vec<u8> = if kind == PieceKind::Byte {
                let hex = std::str::from_utf8(&piece[3..5]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => vec![b],
                    None => piece.to_vec(),
                }
            } else if self.space == " " {
                piece.to_vec()
            } else {
                String::from_utf8_lossy(piece).replace(&self.space, " ").into_bytes()
            };
            if at_start && self.add_space_prefix && kind != PieceKind::Byte && text.first() == Some(&b' ') {
                text.remove(0);
            }
            out.extend_from_slice(&text);
            prev = Some(id);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> ScoreBpeTokenizer {
        let mut pieces: Vec<Vec<u8>> = vec![b"<unk>".to_vec(), b"<s>".to_vec(), b"</s>".to_vec()];
        pieces.extend((0..=255u8).map(byte_piece));
        let words = [" ", "a", "b", "c", " a", "ab", " ab", "bc", "abc"];
        let base = pieces.len();
        pieces.extend(words.iter().map(|w| w.as_bytes().to_vec()));
        let mut scores = vec![0.0; pieces.len()];
        // merge scores: " a" < "ab" < " ab"; "bc" beats "ab" when both apply
        for (w, s) in [(" a", 1.0), ("ab", 2.0), (" ab", 3.0), ("bc", 2.5), ("abc", 0.5)] {
            scores[base + words.iter().position(|x| *x == w).unwrap()] = s;
        }
        let kinds = (0..pieces.len())
            .map(|i| match i {
                0 => PieceKind::Unknown,
                1 | 2 => PieceKind::Control,
                3..=258 => PieceKind::Byte,
                _ => PieceKind::Normal,
            })
            .collect();
        let mut t = ScoreBpeTokenizer::new(pieces, scores, kinds, " ", "toy").unwrap();
        t.bos_id = Some(1);
        t.eos_id = Some(2);
        t.unk_id = Some(0);
        t
    }

    #[test]
    fn merges_by_score_and_falls_back_to_bytes() {
        let t = toy();
        let id = |p: &str| t.piece_id(p).unwrap();
        // " ab": "ab" (2.0) merges before " a" (1.0), then " "+"ab" = " ab" (3.0)
        assert_eq!(t.encode("ab", true).unwrap(), vec![1, id(" ab")]);
        // " abc": "bc" (2.5) first, then nothing merges " a"? " "+"a" = " a" (1.0), " a"+"bc" no piece
        assert_eq!(t.encode("abc", false).unwrap(), vec![id(" a"), id("bc")]);
        // 'é' (0xC3 0xA9) is not a piece: its bytes
        assert_eq!(t.encode("é", false).unwrap(), vec![id(" "), 3 + 0xC3, 3 + 0xA9]);
        assert_eq!(t.decode(&t.encode("ab é", true).unwrap(), true).unwrap(), "ab é");
        assert_eq!(t.decode(&t.encode("ab", true).unwrap(), false).unwrap(), "<s>ab");
        assert_eq!(t.decode(&[1, id(" ab"), 2], true).unwrap(), "ab");
        assert!(t.decode(&[9999], false).is_err());
    }
}
