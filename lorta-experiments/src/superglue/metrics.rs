//! EM/F1 as the official scripts compute them.
//!
//! SQuAD v1.1 (`evaluate-v1.1.py`): normalise = lower-case, drop ASCII punctuation
//! (`string.punctuation`), replace the articles a/an/the (as whole words) by a space, collapse
//! whitespace; EM = equality of the normalised strings; F1 = token-multiset overlap; both the
//! maximum over the gold answers.
//!
//! DROP (`drop_eval.py`): every answer is a bag of spans; each span is split on spaces and
//! hyphens, each token lower-cased, stripped of punctuation unless it parses as a number,
//! numbers rewritten as Python's `str(float(token))` ("3" → "3.0", "1,000" → "1000.0"), articles
//! removed. EM = same set of normalised spans and same count; F1 = per-span token-set F1 (0 when
//! the gold span has numbers and the prediction shares none), spans aligned one-to-one to
//! maximise the total (the official script's `linear_sum_assignment`), averaged over
//! max(#gold, #predicted) spans and rounded to 2 decimals; maximum over the gold answers.
//! Simplified: Python's `float()` also accepts non-ASCII digits (e.g. "٣"), which are not
//! treated as numbers here; everything else (signs, exponents, "inf"/"nan", underscores between
//! digits, the `repr` of floats) follows Python.
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use regex::Regex;

const PUNCT: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

fn is_punct(c: char) -> bool {
    PUNCT.contains(c)
}

fn articles() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    // `\b` is Unicode-aware in both Python 3's `re` and the regex crate.
    R.get_or_init(|| Regex::new(r"\b(a|an|the)\b").expect("valid regex"))
}

/// Python's `" ".join(s.split())`.
fn white_space_fix(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// SQuAD's `normalize_answer`.
pub fn squad_normalize(s: &str) -> String {
    let lower = s.to_lowercase();
    let no_punc: String = lower.chars().filter(|&c| !is_punct(c)).collect();
    white_space_fix(&articles().replace_all(&no_punc, " "))
}

/// SQuAD v1.1 token F1 of one prediction against one gold answer.
pub fn squad_f1_single(prediction: &str, gold: &str) -> f64 {
    let p = squad_normalize(prediction);
    let g = squad_normalize(gold);
    let pt: Vec<&str> = p.split_whitespace().collect();
    let gt: Vec<&str> = g.split_whitespace().collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &gt {
        *counts.entry(t).or_default() += 1;
    }
    let mut same = 0usize;
    for t in &pt {
        if let Some(c) = counts.get_mut(t) {
            if *c > 0 {
                *c -= 1;
                same += 1;
            }
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / pt.len() as f64;
    let recall = same as f64 / gt.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// SQuAD v1.1 (EM, F1) of a prediction, the maximum over `golds`.
pub fn squad_em_f1(prediction: &str, golds: &[String]) -> (f64, f64) {
    let np = squad_normalize(prediction);
    let em = golds.iter().any(|g| squad_normalize(g) == np);
    let f1 = golds.iter().map(|g| squad_f1_single(prediction, g)).fold(0.0, f64::max);
    (if em { 1.0 } else { 0.0 }, f1)
}

/// Python's `float(text)` (ASCII only, see the module docs).
pub fn py_float(text: &str) -> Option<f64> {
    // Python strips whitespace (and accepts "1_000": underscores only between digits).
    let t = text.trim_matches(|c: char| c.is_whitespace());
    if t.is_empty() {
        return None;
    }
    let b = t.as_bytes();
    let mut cleaned = String::with_capacity(t.len());
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let ok = i > 0 && i + 1 < b.len() && b[i - 1].is_ascii_digit() && b[i + 1].is_ascii_digit();
            if !ok {
                return None;
            }
        } else {
            cleaned.push(c as char);
        }
    }
    if !cleaned.is_ascii() {
        return None;
    }
    // Rust accepts the same grammar otherwise ("1.", ".5", "1e5", "+inf", "NaN", "infinity").
    cleaned.parse::<f64>().ok()
}

/// Python's `repr(float)`: shortest round-trip digits, scientific when the exponent is < -4 or
/// ≥ 16, always a ".0" otherwise.
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let sci = format!("{x:e}"); // shortest digits: "1.5e-7", "-3e16"
    let (mant, exp) = sci.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    if !(-4..16).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let s = format!("{x}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

fn drop_normalize_token(token: &str) -> String {
    let lower = token.to_lowercase();
    let no_punc = if py_float(&lower).is_some() { lower } else { lower.chars().filter(|&c| !is_punct(c)).collect() };
    let num = match py_float(&no_punc) {
        Some(v) => py_float_repr(v),
        None => no_punc,
    };
    white_space_fix(&articles().replace_all(&num, " "))
}

/// DROP's `_normalize_answer` of one span.
pub fn drop_normalize(text: &str) -> String {
    let parts: Vec<String> = text.split([' ', '-']).map(drop_normalize_token).filter(|p| !p.trim().is_empty()).collect();
    parts.join(" ").trim().to_string()
}

fn drop_bags(spans: &[String]) -> (Vec<String>, Vec<BTreeSet<String>>) {
    let norm: Vec<String> = spans.iter().map(|s| drop_normalize(s)).collect();
    let bags = norm.iter().map(|n| n.split_whitespace().map(str::to_string).collect()).collect();
    (norm, bags)
}

fn bag_f1(pred: &BTreeSet<String>, gold: &BTreeSet<String>) -> f64 {
    let inter = gold.intersection(pred).count() as f64;
    let precision = if pred.is_empty() { 1.0 } else { inter / pred.len() as f64 };
    let recall = if gold.is_empty() { 1.0 } else { inter / gold.len() as f64 };
    if precision == 0.0 && recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

fn numbers_match(gold: &BTreeSet<String>, pred: &BTreeSet<String>) -> bool {
    let g: BTreeSet<&String> = gold.iter().filter(|w| py_float(w).is_some()).collect();
    if g.is_empty() {
        return true;
    }
    pred.iter().any(|w| py_float(w).is_some() && g.contains(w))
}

/// Maximum total of a one-to-one assignment of rows to columns (exact, bitmask DP over the
/// smaller side; answer bags are small).
fn max_assignment(scores: &[Vec<f64>]) -> f64 {
    let rows = scores.len();
    let cols = scores.first().map_or(0, Vec::len);
    if rows == 0 || cols == 0 {
        return 0.0;
    }
    let (r, c, get): (usize, usize, Box<dyn Fn(usize, usize) -> f64>) = if cols <= rows {
        (rows, cols, Box::new(|i, j| scores[i][j]))
    } else {
        (cols, rows, Box::new(|i, j| scores[j][i]))
    };
    assert!(c <= 20, "answer bag too large for the exact alignment ({c} spans)");
    // best[mask] = best total having used the small-side items in `mask`, over the first rows
    let mut best = vec![f64::NEG_INFINITY; 1 << c];
    best[0] = 0.0;
    for i in 0..r {
        let mut next = best.clone();
        for mask in 0..(1usize << c) {
            if best[mask] == f64::NEG_INFINITY {
                continue;
            }
            for j in 0..c {
                if mask & (1 << j) == 0 {
                    let m = mask | (1 << j);
                    let v = best[mask] + get(i, j);
                    if v > next[m] {
                        next[m] = v;
                    }
                }
            }
        }
        best = next;
    }
    best.into_iter().fold(0.0, f64::max)
}

/// Python's `round(x, 2)` (round-half-even on the binary value).
fn round2(x: f64) -> f64 {
    let y = x * 100.0;
    let r = y.round();
    let r = if (y - y.trunc()).abs() == 0.5 && r % 2.0 != 0.0 { r - y.signum() } else { r };
    r / 100.0
}

/// DROP (EM, F1) of predicted spans against one gold answer (`get_metrics`).
pub fn drop_em_f1_single(predicted: &[String], gold: &[String]) -> (f64, f64) {
    let (pn, pb) = drop_bags(predicted);
    let (gn, gb) = drop_bags(gold);
    let ps: BTreeSet<&String> = pn.iter().collect();
    let gs: BTreeSet<&String> = gn.iter().collect();
    let em = if ps == gs && pn.len() == gn.len() { 1.0 } else { 0.0 };
    let scores: Vec<Vec<f64>> = gb.iter().map(|g| pb.iter().map(|p| if numbers_match(g, p) { bag_f1(p, g) } else { 0.0 }).collect()).collect();
    let f1 = max_assignment(&scores) / gb.len().max(pb.len()) as f64;
    (em, round2(f1))
}

/// DROP (EM, F1) of a prediction (one string) against every gold answer: the maxima.
pub fn drop_em_f1(prediction: &str, golds: &[Vec<String>]) -> (f64, f64) {
    let pred = vec![prediction.to_string()];
    let mut best = (0.0f64, 0.0f64);
    for g in golds {
        let (em, f1) = drop_em_f1_single(&pred, g);
        best = (best.0.max(em), best.1.max(f1));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_semantics() {
        for (s, v) in [("3", 3.0), ("1_000", 1000.0), (" 2.5 ", 2.5), ("1e5", 1e5), (".5", 0.5), ("1.", 1.0), ("-7", -7.0)] {
            assert_eq!(py_float(s), Some(v), "{s}");
        }
        assert!(py_float("inf").unwrap().is_infinite() && py_float("nan").unwrap().is_nan());
        for s in ["", "1__0", "_1", "1,000", "abc", "٣"] {
            assert_eq!(py_float(s), None, "{s}");
        }
        for (x, s) in [(3.0, "3.0"), (0.1, "0.1"), (1e16, "1e+16"), (1.5e-7, "1.5e-07"), (123456789012345.0, "123456789012345.0"), (0.0001, "0.0001"), (-2.5, "-2.5")] {
            assert_eq!(py_float_repr(x), s);
        }
        assert_eq!(round2(0.125), 0.12);
        assert_eq!(round2(0.67), 0.67);
    }

    #[test]
    fn alignment_is_optimal() {
        // greedy would take 0.9 then 0.0; optimal is 0.8 + 0.7
        let s = vec![vec![0.9, 0.8], vec![0.7, 0.0]];
        assert!((max_assignment(&s) - 1.5).abs() < 1e-12);
        assert_eq!(max_assignment(&[vec![0.2], vec![0.5], vec![0.1]]), 0.5);
    }

    /// Expected values computed by the official scripts (scripts/make_llm_fixtures.py runs the
    /// SQuAD v1.1 and DROP evaluators shipped in the allennlp-models wheel).
    #[test]
    fn matches_the_official_scripts() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm/qa_metrics.json");
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let strs = |x: &serde_json::Value| -> Vec<String> { x.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect() };
        let mut n = 0;
        for c in v["squad"].as_array().unwrap() {
            let pred = c["prediction"].as_str().unwrap();
            let golds = strs(&c["golds"]);
            let (em, f1) = squad_em_f1(pred, &golds);
            assert_eq!(squad_normalize(pred), c["normalized"].as_str().unwrap(), "{pred:?}");
            assert_eq!(em, c["em"].as_f64().unwrap(), "EM {pred:?} vs {golds:?}");
            assert!((f1 - c["f1"].as_f64().unwrap()).abs() < 1e-12, "F1 {pred:?} vs {golds:?}: {f1} vs {}", c["f1"]);
            n += 1;
        }
        for c in v["drop"].as_array().unwrap() {
            let pred = c["prediction"].as_str().unwrap();
            let golds: Vec<Vec<String>> = c["golds"].as_array().unwrap().iter().map(strs).collect();
            let (em, f1) = drop_em_f1(pred, &golds);
            assert_eq!(drop_normalize(pred), c["normalized"].as_str().unwrap(), "{pred:?}");
            assert_eq!(em, c["em"].as_f64().unwrap(), "EM {pred:?} vs {golds:?}");
            assert!((f1 - c["f1"].as_f64().unwrap()).abs() < 1e-12, "F1 {pred:?} vs {golds:?}: {f1} vs {}", c["f1"]);
            n += 1;
        }
        for c in v["drop_multi"].as_array().unwrap() {
            let (em, f1) = drop_em_f1_single(&strs(&c["predicted"]), &strs(&c["gold"]));
            assert_eq!(em, c["em"].as_f64().unwrap(), "{c}");
            assert!((f1 - c["f1"].as_f64().unwrap()).abs() < 1e-12, "{c}: {f1}");
            n += 1;
        }
        assert!(n >= 30, "only {n} cases");
    }
}
