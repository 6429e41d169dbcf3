//! Loading GLUE splits from disk.
//!
//! Two on-disk layouts are understood:
//!
//! * **Original GLUE TSV** (as written by GLUE's `download_glue_data.py`):
//!   lines are split on TAB with *no* quote handling, because the files
//!   contain stray `"` characters that a quoting parser would merge across
//!   fields and lines. CoLA has no header (4 columns: source, label,
//!   original mark, sentence); every other file has a header and columns are
//!   found by name (`sentence`, `#1 String`/`#2 String`/`Quality` for MRPC,
//!   `sentence1`/`sentence2`/`score` for STS-B, `question`/`sentence` for
//!   QNLI, `question1`/`question2`/`is_duplicate` for QQP,
//!   `sentence1`/`sentence2`/`gold_label` for MNLI, ...).
//! * **Hugging Face export** (`datasets` `to_csv`/`to_json`): a header with
//!   the HF column names (`sentence`, `sentence1`, `sentence2`, `question`,
//!   `question1`, `question2`, `premise`, `hypothesis`, `label`, `idx`) as
//!   `.csv` (comma, CSV quoting), `.tsv` with an `idx` column (TAB, CSV
//!   quoting: this is what pandas writes) or `.jsonl` (one JSON object per
//!   line).
//!
//! A UTF-8 byte order mark at the start of a file is ignored (MRPC has one),
//! as is a `\r` before a line's `\n`. Malformed content is an error that
//! names the file and 1-based line. The only exception are *ragged rows*
//! (a wrong number of TAB-separated columns) in the original TSV files of the
//! pair tasks with free text from the web (RTE, QNLI, WNLI, MNLI, QQP), where
//! copies in circulation are known to carry a few stray TABs: those rows are
//! skipped, and each skip is recorded in [`Dataset::skipped`]. More than
//! [`MAX_RAGGED_ROWS`] of them in one file is an error.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::tasks::GlueTask;

/// Upper bound on ragged rows skipped in one original-layout file.
pub const MAX_RAGGED_ROWS: usize = 10;

/// Gold label of one example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Label {
    /// Class id (see [`GlueTask::label_names`]).
    Class(usize),
    /// Regression target (STS-B similarity, 0..=5).
    Score(f32),
}

impl Label {
    pub fn class(self) -> Option<usize> {
        match self {
            Label::Class(c) => Some(c),
            Label::Score(_) => None,
        }
    }

    /// The label as f64 (class id or score), for metrics.
    pub fn as_f64(self) -> f64 {
        match self {
            Label::Class(c) => c as f64,
            Label::Score(s) => s as f64,
        }
    }
}

/// One labelled GLUE example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text_a: String,
    pub text_b: Option<String>,
    pub label: Label,
}

/// Which split to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    /// The dev set; for MNLI the matched dev set (`dev_matched.tsv`).
    Dev,
    /// MNLI only: `dev_mismatched.tsv`.
    DevMismatched,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::DevMismatched => "dev_mismatched",
        })
    }
}

/// The file layout a dataset was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Original GLUE TSV, split on TAB without quoting.
    GlueTsv,
    /// Hugging Face export, TSV with CSV quoting.
    HfTsv,
    /// Hugging Face export, CSV.
    HfCsv,
    /// Hugging Face export, JSON lines.
    HfJsonl,
    /// MRPC rebuilt from `msr_paraphrase_train.txt` minus the dev ids.
    MrpcOriginal,
}

/// A loaded split.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub task: GlueTask,
    pub examples: Vec<Example>,
    /// File the examples were read from.
    pub source: PathBuf,
    pub layout: Layout,
    /// Rows left out, as (1-based line number, reason).
    pub skipped: Vec<(usize, String)>,
}

impl Dataset {
    /// One warning line for the rows this file left out (count, first line numbers, reason), or
    /// `None` when nothing was skipped.
    pub fn skip_warning(&self) -> Option<String> {
        const SHOWN: usize = 5;
        if self.skipped.is_empty() {
            return None;
        }
        let lines: Vec<String> = self.skipped.iter().take(SHOWN).map(|(l, _)| l.to_string()).collect();
        let more = if self.skipped.len() > SHOWN { ", …" } else { "" };
        Some(format!(
            "warning: {}: skipped {} row(s) (line {}{more}): {}",
            self.source.display(),
            self.skipped.len(),
            lines.join(", "),
            self.skipped[0].1
        ))
    }

    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// `--max-samples` helper: keeps the first `n` examples in file order
    /// (all of them for `None` or `n >= len`). Deterministic.
    pub fn take(mut self, n: Option<usize>) -> Self {
        if let Some(n) = n {
            self.examples.truncate(n);
        }
        self
    }

    /// Number of examples per class id (empty for regression tasks).
    pub fn label_counts(&self) -> BTreeMap<usize, usize> {
        let mut m = BTreeMap::new();
        for e in &self.examples {
            if let Label::Class(c) = e.label {
                *m.entry(c).or_insert(0) += 1;
            }
        }
        m
    }
}

/// Errors while locating or reading a split.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{task} {split} data not found: expected {expected} (also looked for: {tried})", tried = display_paths(.tried))]
    MissingFile {
        task: GlueTask,
        split: Split,
        expected: PathBuf,
        tried: Vec<PathBuf>,
    },
    #[error("{task} has no {split} split")]
    UnsupportedSplit { task: GlueTask, split: Split },
    #[error("{path}: I/O error: {source}", path = .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: file is empty (no header or data rows)", path = .path.display())]
    Empty { path: PathBuf },
    #[error("{path}:{line}: file has a header but no data rows", path = .path.display())]
    NoRows { path: PathBuf, line: usize },
    #[error("{path}:{line}: expected {expected} columns, found {found}", path = .path.display())]
    ColumnCount {
        path: PathBuf,
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("{path}:{line}: header has no {wanted} column (header: {header:?})", path = .path.display())]
    MissingColumn {
        path: PathBuf,
        line: usize,
        wanted: String,
        header: Vec<String>,
    },
    #[error("{path}:{line}: unparsable label {value:?}: {reason}", path = .path.display())]
    BadLabel {
        path: PathBuf,
        line: usize,
        value: String,
        reason: String,
    },
    #[error("{path}:{line}: unknown {task} label {value:?} (known: {known:?})", path = .path.display())]
    UnknownLabel {
        path: PathBuf,
        line: usize,
        task: GlueTask,
        value: String,
        known: Vec<&'static str>,
    },
    #[error("{path}:{line}: {what}", path = .path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        what: String,
    },
    #[error("{path}:{line}: more than {limit} ragged rows; the file looks corrupt (last: expected {expected} columns, found {found})", path = .path.display())]
    TooManyRagged {
        path: PathBuf,
        line: usize,
        limit: usize,
        expected: usize,
        found: usize,
    },
}

fn display_paths(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// File names tried for a split, in order of preference.
fn split_file_names(task: GlueTask, split: Split) -> Result<Vec<String>, DataError> {
    let stems: Vec<&str> = match (task, split) {
        (_, Split::Train) => vec!["train"],
        (GlueTask::Mnli, Split::Dev) => vec!["dev_matched", "validation_matched"],
        (GlueTask::Mnli, Split::DevMismatched) => vec!["dev_mismatched", "validation_mismatched"],
        (_, Split::Dev) => vec!["dev", "validation"],
        (_, Split::DevMismatched) => return Err(DataError::UnsupportedSplit { task, split }),
    };
    let mut names = Vec::new();
    for ext in ["tsv", "csv", "jsonl"] {
        for s in &stems {
            names.push(format!("{s}.{ext}"));
        }
    }
    Ok(names)
}

/// Candidate paths for a split, in the order they are tried. `dir` may be the
/// GLUE root (holding `RTE/`, `SST-2/`, ...) or a task folder itself.
pub fn split_candidates(
    dir: &Path,
    task: GlueTask,
    split: Split,
) -> Result<Vec<PathBuf>, DataError> {
    let names = split_file_names(task, split)?;
    let mut dirs = vec![dir.join(task.folder()), dir.join(task.name())];
    dirs.push(dir.to_path_buf());
    let mut out = Vec::new();
    for d in &dirs {
        for n in &names {
            out.push(d.join(n));
        }
    }
    Ok(out)
}

/// Finds the file holding `split` of `task` under `dir` (see [`split_candidates`]).
pub fn find_split_file(dir: &Path, task: GlueTask, split: Split) -> Result<PathBuf, DataError> {
    let cands = split_candidates(dir, task, split)?;
    if let Some(p) = cands.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    let expected = cands[0].clone();
    Err(DataError::MissingFile {
        task,
        split,
        expected,
        tried: cands[1..].to_vec(),
    })
}

/// Loads one split of a task from `dir` (GLUE root or task folder).
pub fn load_split(dir: &Path, task: GlueTask, split: Split) -> Result<Dataset, DataError> {
    let path = find_split_file(dir, task, split)?;
    load_file(&path, task)
}

/// Loads a file of `task`, detecting the layout from the extension and header.
pub fn load_file(path: &Path, task: GlueTask) -> Result<Dataset, DataError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "jsonl" | "json" => read_jsonl(path, task),
        "csv" => read_quoted(path, task, b',', Layout::HfCsv),
        _ => {
            // TSV (or .txt): look at the first line to pick the layout.
            let first = first_line(path)?;
            let header: Vec<&str> = first.split('\t').map(str::trim).collect();
            if header.contains(&"idx") {
                read_quoted(path, task, b'\t', Layout::HfTsv)
            } else {
                read_glue_tsv(path, task)
            }
        }
    }
}

fn first_line(path: &Path) -> Result<String, DataError> {
    let f = File::open(path).map_err(io_err(path))?;
    let mut r = BufReader::new(f);
    let mut buf = Vec::new();
    r.read_until(b'\n', &mut buf).map_err(io_err(path))?;
    if buf.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    let b = buf.strip_prefix(BOM).unwrap_or(&buf);
    let s = std::str::from_utf8(b).map_err(|_| DataError::Malformed {
        path: path.to_path_buf(),
        line: 1,
        what: "invalid UTF-8".into(),
    })?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

/// Column names accepted for (text_a, text_b, label), original names and HF names.
fn column_names(
    task: GlueTask,
) -> (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
) {
    match task {
        GlueTask::Sst2 | GlueTask::Cola => (&["sentence"], &[], &["label"]),
        GlueTask::Mrpc => (
            &["#1 String", "sentence1"],
            &["#2 String", "sentence2"],
            &["Quality", "label"],
        ),
        GlueTask::Stsb => (&["sentence1"], &["sentence2"], &["score", "label"]),
        GlueTask::Rte | GlueTask::Wnli => (&["sentence1"], &["sentence2"], &["label"]),
        GlueTask::Qnli => (&["question"], &["sentence"], &["label"]),
        GlueTask::Qqp => (&["question1"], &["question2"], &["is_duplicate", "label"]),
        GlueTask::Mnli => (
            &["sentence1", "premise"],
            &["sentence2", "hypothesis"],
            &["gold_label", "label"],
        ),
    }
}

#[derive(Debug, Clone, Copy)]
struct Columns {
    a: usize,
    b: Option<usize>,
    label: usize,
    n: usize,
}

fn resolve_columns(path: &Path, task: GlueTask, header: &[String]) -> Result<Columns, DataError> {
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| header.iter().position(|h| h == n))
    };
    let missing = |names: &[&str]| DataError::MissingColumn {
        path: path.to_path_buf(),
        line: 1,
        wanted: names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(" or "),
        header: header.to_vec(),
    };
    let (an, bn, ln) = column_names(task);
    let a = find(an).ok_or_else(|| missing(an))?;
    let b = if task.is_pair() {
        Some(find(bn).ok_or_else(|| missing(bn))?)
    } else {
        None
    };
    let label = find(ln).ok_or_else(|| missing(ln))?;
    Ok(Columns {
        a,
        b,
        label,
        n: header.len(),
    })
}

/// Parses a label field of `task`.
pub(crate) fn parse_label(
    path: &Path,
    line: usize,
    task: GlueTask,
    raw: &str,
) -> Result<Label, DataError> {
    let v = raw.trim();
    let bad = |reason: &str| DataError::BadLabel {
        path: path.to_path_buf(),
        line,
        value: raw.to_string(),
        reason: reason.to_string(),
    };
    if task.is_regression() {
        let s: f32 = v.parse().map_err(|_| bad("not a number"))?;
        if !s.is_finite() {
            return Err(bad("not a finite number"));
        }
        return Ok(Label::Score(s));
    }
    if let Some(c) = task.class_from_str(v) {
        return Ok(Label::Class(c));
    }
    if let Ok(i) = v.parse::<i64>() {
        if i == -1 {
            return Err(bad("-1 marks an unlabelled (test) row"));
        }
        return Err(bad(&format!(
            "class id out of range 0..{}",
            task.num_labels()
        )));
    }
    if v.parse::<f64>().is_ok() {
        return Err(bad("class label is not an integer"));
    }
    Err(DataError::UnknownLabel {
        path: path.to_path_buf(),
        line,
        task,
        value: raw.to_string(),
        known: task.label_names().to_vec(),
    })
}

fn tolerates_ragged_rows(task: GlueTask) -> bool {
    matches!(
        task,
        GlueTask::Rte | GlueTask::Qnli | GlueTask::Wnli | GlueTask::Mnli | GlueTask::Qqp
    )
}

/// Iterates over the lines of a file: (1-based line number, text without `\n`/`\r`,
/// BOM removed from line 1). A final line without `\n` is returned; an empty
/// tail after the last `\n` is not.
fn for_each_line(
    path: &Path,
    mut f: impl FnMut(usize, &str) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let mut b: &[u8] = &buf;
        if line_no == 1 {
            b = b.strip_prefix(BOM).unwrap_or(b);
        }
        if let Some(x) = b.strip_suffix(b"\n") {
            b = x;
        }
        if let Some(x) = b.strip_suffix(b"\r") {
            b = x;
        }
        let s = std::str::from_utf8(b).map_err(|e| DataError::Malformed {
            path: path.to_path_buf(),
            line: line_no,
            what: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        })?;
        f(line_no, s)?;
    }
    if line_no == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

fn read_glue_tsv(path: &Path, task: GlueTask) -> Result<Dataset, DataError> {
    let mut cols: Option<Columns> = None;
    let mut examples = Vec::new();
    let mut skipped = Vec::new();
    for_each_line(path, |line, s| {
        let fields: Vec<&str> = s.split('\t').collect();
        let c = match cols {
            Some(c) => c,
            None => {
                let header: Vec<String> = fields.iter().map(|f| f.trim().to_string()).collect();
                if task == GlueTask::Cola && !header.iter().any(|h| h == "sentence") {
                    // Original CoLA: no header; source, label, original mark, sentence.
                    let c = Columns {
                        a: 3,
                        b: None,
                        label: 1,
                        n: 4,
                    };
                    cols = Some(c);
                    c
                } else {
                    cols = Some(resolve_columns(path, task, &header)?);
                    return Ok(());
                }
            }
        };
        if fields.len() != c.n {
            if tolerates_ragged_rows(task) {
                if skipped.len() >= MAX_RAGGED_ROWS {
                    return Err(DataError::TooManyRagged {
                        path: path.to_path_buf(),
                        line,
                        limit: MAX_RAGGED_ROWS,
                        expected: c.n,
                        found: fields.len(),
                    });
                }
                skipped.push((
                    line,
                    format!(
                        "expected {} TAB-separated columns, found {} (stray TAB)",
                        c.n,
                        fields.len()
                    ),
                ));
                return Ok(());
            }
            return Err(DataError::ColumnCount {
                path: path.to_path_buf(),
                line,
                expected: c.n,
                found: fields.len(),
            });
        }
        let label = parse_label(path, line, task, fields[c.label])?;
        examples.push(Example {
            text_a: fields[c.a].to_string(),
            text_b: c.b.map(|b| fields[b].to_string()),
            label,
        });
        Ok(())
    })?;
    if examples.is_empty() && skipped.is_empty() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
            line: 1,
        });
    }
    Ok(Dataset {
        task,
        examples,
        source: path.to_path_buf(),
        layout: Layout::GlueTsv,
        skipped,
    })
}

/// A reader that drops a leading UTF-8 BOM.
fn open_without_bom(path: &Path) -> Result<Box<dyn Read>, DataError> {
    let f = File::open(path).map_err(io_err(path))?;
    let mut r = BufReader::new(f);
    let starts_with_bom = r.fill_buf().map_err(io_err(path))?.starts_with(BOM);
    if starts_with_bom {
        r.consume(BOM.len());
    }
    Ok(Box::new(r))
}

fn read_quoted(
    path: &Path,
    task: GlueTask,
    delim: u8,
    layout: Layout,
) -> Result<Dataset, DataError> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(true)
        .flexible(true)
        .from_reader(open_without_bom(path)?);
    let csv_err = |e: csv::Error| {
        let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
        match e.into_kind() {
            csv::ErrorKind::Io(source) => DataError::Io {
                path: path.to_path_buf(),
                source,
            },
            kind => DataError::Malformed {
                path: path.to_path_buf(),
                line,
                what: format!("CSV error: {kind:?}"),
            },
        }
    };
    let header: Vec<String> = rdr
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    let c = resolve_columns(path, task, &header)?;
    let mut examples = Vec::new();
    let mut rec = csv::StringRecord::new();
    while rdr.read_record(&mut rec).map_err(csv_err)? {
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        if rec.len() != c.n {
            return Err(DataError::ColumnCount {
                path: path.to_path_buf(),
                line,
                expected: c.n,
                found: rec.len(),
            });
        }
        let label = parse_label(path, line, task, &rec[c.label])?;
        examples.push(Example {
            text_a: rec[c.a].to_string(),
            text_b: c.b.map(|b| rec[b].to_string()),
            label,
        });
    }
    if examples.is_empty() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
            line: 1,
        });
    }
    Ok(Dataset {
        task,
        examples,
        source: path.to_path_buf(),
        layout,
        skipped: Vec::new(),
    })
}

fn read_jsonl(path: &Path, task: GlueTask) -> Result<Dataset, DataError> {
    let (an, bn, ln) = column_names(task);
    let mut examples = Vec::new();
    for_each_line(path, |line, s| {
        if s.trim().is_empty() {
            return Ok(()); // blank separator lines carry no row
        }
        let malformed = |what: String| DataError::Malformed {
            path: path.to_path_buf(),
            line,
            what,
        };
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| malformed(format!("invalid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| malformed("expected a JSON object".into()))?;
        let field = |names: &[&'static str]| -> Option<(&'static str, &serde_json::Value)> {
            names.iter().find_map(|&n| obj.get(n).map(|v| (n, v)))
        };
        let text = |names: &[&'static str]| -> Result<String, DataError> {
            match field(names) {
                Some((_, serde_json::Value::String(s))) => Ok(s.clone()),
                Some((n, other)) => Err(malformed(format!("field {n:?} is not a string: {other}"))),
                None => Err(malformed(format!("missing field {}", names.join(" or ")))),
            }
        };
        let text_a = text(an)?;
        let text_b = if task.is_pair() {
            Some(text(bn)?)
        } else {
            None
        };
        let raw = match field(ln) {
            Some((_, serde_json::Value::String(s))) => s.clone(),
            Some((_, serde_json::Value::Number(n))) => n.to_string(),
            Some((n, other)) => {
                return Err(malformed(format!(
                    "field {n:?} is not a number or string: {other}"
                )))
            }
            None => return Err(malformed(format!("missing field {}", ln.join(" or ")))),
        };
        let label = parse_label(path, line, task, &raw)?;
        examples.push(Example {
            text_a,
            text_b,
            label,
        });
        Ok(())
    })?;
    if examples.is_empty() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
            line: 1,
        });
    }
    Ok(Dataset {
        task,
        examples,
        source: path.to_path_buf(),
        layout: Layout::HfJsonl,
        skipped: Vec::new(),
    })
}

// ---------------------------------------------------------------------------
// MRPC rebuilt from the MSR release
// ---------------------------------------------------------------------------

fn first_existing(base: &Path, rels: &[&str]) -> Result<PathBuf, DataError> {
    rels.iter()
        .map(|r| base.join(r))
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::MissingFile {
            task: GlueTask::Mrpc,
            split: Split::Train,
            expected: base.join(rels[0]),
            tried: rels[1..].iter().map(|r| base.join(r)).collect(),
        })
}

/// Locations of the MSR release file and the GLUE dev-id list under an MRPC folder:
/// `original/…` (this project's shared data), or next to the split files as
/// `download_glue_data.py` leaves them.
pub(crate) const MRPC_RAW_TRAIN: &[&str] = &[
    "original/msr_paraphrase_train.txt",
    "msr_paraphrase_train.txt",
];
pub(crate) const MRPC_DEV_IDS: &[&str] =
    &["original/dev_ids.tsv", "dev_ids.tsv", "mrpc_dev_ids.tsv"];

fn mrpc_dir(dir: &Path) -> PathBuf {
    let sub = dir.join("MRPC");
    if sub.is_dir() {
        sub
    } else {
        dir.to_path_buf()
    }
}

/// Reads the (#1 ID, #2 ID) pairs of GLUE's MRPC dev set.
fn read_mrpc_dev_ids(path: &Path) -> Result<HashSet<(String, String)>, DataError> {
    let mut ids = HashSet::new();
    for_each_line(path, |line, s| {
        let f: Vec<&str> = s.split('\t').collect();
        if f.len() != 2 {
            return Err(DataError::ColumnCount {
                path: path.to_path_buf(),
                line,
                expected: 2,
                found: f.len(),
            });
        }
        ids.insert((f[0].trim().to_string(), f[1].trim().to_string()));
        Ok(())
    })?;
    Ok(ids)
}

/// Raw MRPC rows (`Quality`, `#1 ID`, `#2 ID`, `#1 String`, `#2 String`) of the
/// MSR release split into GLUE train and dev by the dev-id list, plus the
/// header line (BOM included, as GLUE's script copies it).
pub(crate) struct MrpcRaw {
    pub header: String,
    pub train: Vec<String>,
    pub dev: Vec<String>,
    pub train_lines: Vec<usize>,
    pub source: PathBuf,
}

pub(crate) fn split_mrpc_raw(dir: &Path) -> Result<MrpcRaw, DataError> {
    let d = mrpc_dir(dir);
    let raw = first_existing(&d, MRPC_RAW_TRAIN)?;
    let ids_path = first_existing(&d, MRPC_DEV_IDS)?;
    let ids = read_mrpc_dev_ids(&ids_path)?;
    let bytes = std::fs::read(&raw).map_err(io_err(&raw))?;
    let text = String::from_utf8(bytes).map_err(|e| DataError::Malformed {
        path: raw.clone(),
        line: 0,
        what: format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
    })?;
    let mut out = MrpcRaw {
        header: String::new(),
        train: vec![],
        dev: vec![],
        train_lines: vec![],
        source: raw.clone(),
    };
    for (i, l) in text.split_terminator('\n').enumerate() {
        let l = l.strip_suffix('\r').unwrap_or(l);
        if i == 0 {
            out.header = l.to_string();
            continue;
        }
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() != 5 {
            return Err(DataError::ColumnCount {
                path: raw.clone(),
                line: i + 1,
                expected: 5,
                found: f.len(),
            });
        }
        if ids.contains(&(f[1].to_string(), f[2].to_string())) {
            out.dev.push(l.to_string());
        } else {
            out.train.push(l.to_string());
            out.train_lines.push(i + 1);
        }
    }
    if out.header.is_empty() {
        return Err(DataError::Empty { path: raw });
    }
    Ok(out)
}

/// Rebuilds the official 3,668-row MRPC train split the way GLUE's
/// `download_glue_data.py` does: the rows of `msr_paraphrase_train.txt` whose
/// (#1 ID, #2 ID) pair is not in the GLUE dev-id list. `dir` is the GLUE root
/// or the MRPC folder; the raw files are looked up under `MRPC/original/`
/// first, then directly in `MRPC/` (`dev_ids.tsv` or `mrpc_dev_ids.tsv`).
///
/// Some circulating copies of `MRPC/train.tsv` (including the one in this
/// project's shared data) lack one row; this rebuild does not.
pub fn build_mrpc_train_from_original(dir: &Path) -> Result<Dataset, DataError> {
    let raw = split_mrpc_raw(dir)?;
    let mut examples = Vec::with_capacity(raw.train.len());
    for (l, &line) in raw.train.iter().zip(&raw.train_lines) {
        let f: Vec<&str> = l.split('\t').collect();
        let label = parse_label(&raw.source, line, GlueTask::Mrpc, f[0])?;
        examples.push(Example {
            text_a: f[3].to_string(),
            text_b: Some(f[4].to_string()),
            label,
        });
    }
    Ok(Dataset {
        task: GlueTask::Mrpc,
        examples,
        source: raw.source,
        layout: Layout::MrpcOriginal,
        skipped: Vec::new(),
    })
}

/// Writes GLUE-layout `train.tsv` and `dev.tsv` into `mrpc_dir` from the MSR
/// release file and the dev-id list found there (see
/// [`build_mrpc_train_from_original`]). Returns (train rows, dev rows).
pub fn write_mrpc_splits(mrpc_dir: &Path) -> Result<(usize, usize), DataError> {
    let raw = split_mrpc_raw(mrpc_dir)?;
    for (name, rows) in [("train.tsv", &raw.train), ("dev.tsv", &raw.dev)] {
        let path = mrpc_dir.join(name);
        let tmp = mrpc_dir.join(format!(".{name}.tmp"));
        let mut s = String::with_capacity(rows.iter().map(|r| r.len() + 1).sum::<usize>() + 64);
        s.push_str(&raw.header);
        s.push('\n');
        for r in rows.iter() {
            s.push_str(r);
            s.push('\n');
        }
        std::fs::write(&tmp, s).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    }
    Ok((raw.train.len(), raw.dev.len()))
}

// ---------------------------------------------------------------------------

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::env;

    /// Shared data folder for tests: `$LORTA_SHARED_DATA`, else
    /// `<CARGO_MANIFEST_DIR>/../../shared/data`. `None` (after printing a
    /// visible skip line) when absent.
    pub(crate) fn shared_glue(test: &str) -> Option<PathBuf> {
        let base = env::var_os("LORTA_SHARED_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
        let glue = base.join("glue");
        if glue.is_dir() {
            Some(glue)
        } else {
            println!(
                "skipping {test}: shared GLUE data not found at {} (set LORTA_SHARED_DATA)",
                glue.display()
            );
            None
        }
    }

    fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    fn classes(ds: &Dataset) -> Vec<usize> {
        ds.examples
            .iter()
            .map(|e| e.label.class().unwrap())
            .collect()
    }

    // ---- real data -------------------------------------------------------

    #[test]
    fn real_cola() {
        let Some(g) = shared_glue("real_cola") else {
            return;
        };
        let tr = load_split(&g, GlueTask::Cola, Split::Train).unwrap();
        assert_eq!(tr.len(), 8551);
        assert_eq!(tr.label_counts(), BTreeMap::from([(0, 2528), (1, 6023)]));
        assert_eq!(
            tr.examples[0].text_a,
            "Our friends won't buy this analysis, let alone the next one we propose."
        );
        assert_eq!(tr.examples[0].label, Label::Class(1));
        assert!(tr.examples[0].text_b.is_none());
        let dev = load_split(&g, GlueTask::Cola, Split::Dev).unwrap();
        assert_eq!(dev.len(), 1043); // last line has no trailing newline
        assert!(dev.skipped.is_empty() && tr.skipped.is_empty());
        assert_eq!(
            dev.examples[0].text_a,
            "The sailors rode the breeze clear of the rocks."
        );
        assert_eq!(
            dev.examples.last().unwrap().text_a,
            "John talked to Bill about himself."
        );
        assert_eq!(dev.layout, Layout::GlueTsv);
    }

    #[test]
    fn real_mrpc() {
        let Some(g) = shared_glue("real_mrpc") else {
            return;
        };
        let tr = load_split(&g, GlueTask::Mrpc, Split::Train).unwrap();
        assert_eq!(tr.len(), 3667); // shared copy is one row short of the official 3,668
        assert_eq!(tr.label_counts(), BTreeMap::from([(0, 1194), (1, 2473)]));
        let e = &tr.examples[0];
        assert_eq!(e.label, Label::Class(1));
        assert_eq!(
            e.text_a,
            "Amrozi accused his brother , whom he called \" the witness \" , of deliberately distorting his evidence ."
        );
        assert_eq!(
            e.text_b.as_deref(),
            Some("Referring to him as only \" the witness \" , Amrozi accused his brother of deliberately distorting his evidence .")
        );
        let dev = load_split(&g, GlueTask::Mrpc, Split::Dev).unwrap();
        assert_eq!(dev.len(), 408);
        assert_eq!(
            dev.examples[0].text_b.as_deref(),
            Some("\" The foodservice pie business does not fit our long-term growth strategy .")
        );
        let c = dev.label_counts();
        assert_eq!(c[&0] + c[&1], 408);
    }

    #[test]
    fn real_mrpc_rebuilt_train() {
        let Some(g) = shared_glue("real_mrpc_rebuilt_train") else {
            return;
        };
        let full = build_mrpc_train_from_original(&g).unwrap();
        assert_eq!(full.len(), 3668);
        assert_eq!(full.label_counts(), BTreeMap::from([(0, 1194), (1, 2474)]));
        assert!(full
            .examples
            .iter()
            .any(|e| e.text_a.starts_with("Officials at Brandeis said")));
        // Every row of the shipped 3,667-row copy is in the rebuild, in order.
        let shipped = load_split(&g, GlueTask::Mrpc, Split::Train).unwrap();
        let mut it = full.examples.iter();
        for e in &shipped.examples {
            assert!(it.any(|f| f == e), "row {:?} not found in order", e.text_a);
        }
        // The rebuilt dev part matches dev.tsv.
        let raw = split_mrpc_raw(&g).unwrap();
        assert_eq!(raw.dev.len(), 408);
    }

    #[test]
    fn real_rte() {
        let Some(g) = shared_glue("real_rte") else {
            return;
        };
        let tr = load_split(&g, GlueTask::Rte, Split::Train).unwrap();
        assert_eq!(tr.len(), 2490);
        assert!(tr.skipped.is_empty());
        assert_eq!(tr.label_counts(), BTreeMap::from([(0, 1249), (1, 1241)]));
        assert_eq!(
            tr.examples[0].text_a,
            "No Weapons of Mass Destruction Found in Iraq Yet."
        );
        assert_eq!(
            tr.examples[0].text_b.as_deref(),
            Some("Weapons of Mass Destruction Found in Iraq.")
        );
        assert_eq!(tr.examples[0].label, Label::Class(1));
        let dev = load_split(&g, GlueTask::Rte, Split::Dev).unwrap();
        assert_eq!(dev.len(), 277);
        assert_eq!(dev.label_counts(), BTreeMap::from([(0, 146), (1, 131)]));
        assert_eq!(dev.examples[1].label, Label::Class(0));
    }

    #[test]
    fn real_stsb() {
        let Some(g) = shared_glue("real_stsb") else {
            return;
        };
        let tr = load_split(&g, GlueTask::Stsb, Split::Train).unwrap();
        assert_eq!(tr.len(), 5749);
        assert_eq!(tr.examples[0].text_a, "A plane is taking off.");
        assert_eq!(
            tr.examples[0].text_b.as_deref(),
            Some("An air plane is taking off.")
        );
        assert_eq!(tr.examples[0].label, Label::Score(5.0));
        assert_eq!(tr.examples[1].label, Label::Score(3.8));
        let dev = load_split(&g, GlueTask::Stsb, Split::Dev).unwrap();
        assert_eq!(dev.len(), 1500);
        assert_eq!(dev.examples[1].label, Label::Score(4.75));
        for e in tr.examples.iter().chain(&dev.examples) {
            let Label::Score(s) = e.label else { panic!() };
            assert!((0.0..=5.0).contains(&s));
        }
        assert!(dev.label_counts().is_empty());
    }

    #[test]
    fn real_qnli_dev() {
        let Some(g) = shared_glue("real_qnli_dev") else {
            return;
        };
        let dev = load_split(&g, GlueTask::Qnli, Split::Dev).unwrap();
        assert_eq!(dev.len(), 5463);
        assert!(dev.skipped.is_empty());
        assert_eq!(dev.label_counts(), BTreeMap::from([(0, 2702), (1, 2761)]));
        assert_eq!(
            dev.examples[0].text_a,
            "What came into force after the new constitution was herald?"
        );
        assert_eq!(dev.examples[0].label, Label::Class(0));
        // Rows whose fields start with a stray quote keep it verbatim.
        assert!(dev
            .examples
            .iter()
            .any(|e| e.text_a.starts_with('"') || e.text_b.as_deref().unwrap().starts_with('"')));
        // QNLI train is not in the shared data: clear error with the path.
        let err = load_split(&g, GlueTask::Qnli, Split::Train).unwrap_err();
        assert!(matches!(err, DataError::MissingFile { .. }));
        assert!(err.to_string().contains("QNLI/train.tsv"), "{err}");
    }

    #[test]
    fn real_wnli() {
        let Some(g) = shared_glue("real_wnli") else {
            return;
        };
        let tr = load_split(&g, GlueTask::Wnli, Split::Train).unwrap();
        assert_eq!(tr.len(), 635);
        assert_eq!(tr.examples[0].label, Label::Class(1));
        assert_eq!(
            tr.examples[0].text_b.as_deref(),
            Some("The carrot had a hole.")
        );
        let dev = load_split(&g, GlueTask::Wnli, Split::Dev).unwrap();
        assert_eq!(dev.len(), 71);
        assert_eq!(dev.examples[0].label, Label::Class(0));
        let c = tr.label_counts();
        assert_eq!(c[&0] + c[&1], 635);
    }

    #[test]
    fn real_task_folder_accepted_directly() {
        let Some(g) = shared_glue("real_task_folder_accepted_directly") else {
            return;
        };
        let ds = load_split(&g.join("RTE"), GlueTask::Rte, Split::Dev).unwrap();
        assert_eq!(ds.len(), 277);
    }

    // ---- small in-test files ---------------------------------------------

    #[test]
    fn hf_tsv_with_quoting() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "RTE/train.tsv",
            b"sentence1\tsentence2\tlabel\tidx\nA\tB\t0\t0\n\"He said \"\"hi\"\"\tand\tleft.\"\tC\t1\t1\n",
        );
        let ds = load_split(d.path(), GlueTask::Rte, Split::Train).unwrap();
        assert_eq!(ds.layout, Layout::HfTsv);
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.examples[1].text_a, "He said \"hi\"\tand\tleft.");
        assert_eq!(ds.examples[1].label, Label::Class(1));
    }

    #[test]
    fn hf_csv_with_quoted_commas() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "SST-2/validation.csv",
            b"sentence,label,idx\n\"good, very good\",1,0\nbad,0,1\n\"a \"\"quoted\"\" word\",1,2\n",
        );
        let ds = load_split(d.path(), GlueTask::Sst2, Split::Dev).unwrap();
        assert_eq!(ds.layout, Layout::HfCsv);
        assert_eq!(classes(&ds), vec![1, 0, 1]);
        assert_eq!(ds.examples[0].text_a, "good, very good");
        assert_eq!(ds.examples[2].text_a, "a \"quoted\" word");
        // STS-B float labels in CSV
        write(
            d.path(),
            "stsb/train.csv",
            b"sentence1,sentence2,label,idx\n\"x, y\",z,3.25,0\n",
        );
        let s = load_split(d.path(), GlueTask::Stsb, Split::Train).unwrap();
        assert_eq!(s.examples[0].label, Label::Score(3.25));
        assert_eq!(s.examples[0].text_a, "x, y");
    }

    #[test]
    fn hf_jsonl() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "MNLI/validation_matched.jsonl",
            b"{\"premise\": \"P1\", \"hypothesis\": \"H1\", \"label\": 2, \"idx\": 0}\n{\"premise\": \"P2\", \"hypothesis\": \"H2\", \"label\": \"neutral\", \"idx\": 1}\n",
        );
        let ds = load_split(d.path(), GlueTask::Mnli, Split::Dev).unwrap();
        assert_eq!(ds.layout, Layout::HfJsonl);
        assert_eq!(classes(&ds), vec![2, 1]);
        assert_eq!(ds.examples[1].text_b.as_deref(), Some("H2"));
        write(
            d.path(),
            "MNLI/validation_mismatched.jsonl",
            b"{\"premise\": \"P\", \"label\": 0}\n",
        );
        let err = load_split(d.path(), GlueTask::Mnli, Split::DevMismatched)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("validation_mismatched.jsonl:1") && err.contains("hypothesis"),
            "{err}"
        );
        write(
            d.path(),
            "QQP/train.jsonl",
            b"{\"question1\": \"a\", \"question2\": \"b\", \"label\": -1}\n",
        );
        let err = load_split(d.path(), GlueTask::Qqp, Split::Train)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.jsonl:1") && err.contains("unlabelled"),
            "{err}"
        );
    }

    #[test]
    fn original_layouts_mnli_qqp_sst2() {
        let d = tempfile::tempdir().unwrap();
        let mnli_header = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n";
        let mnli = format!(
            "{mnli_header}0\t1\t1e\tgov\t(x)\t(y)\t(X)\t(Y)\tThe \"cat\tsat.\tneutral\tneutral\n"
        );
        write(d.path(), "MNLI/train.tsv", mnli.as_bytes());
        let ds = load_split(d.path(), GlueTask::Mnli, Split::Train).unwrap();
        assert_eq!(ds.examples[0].text_a, "The \"cat");
        assert_eq!(ds.examples[0].label, Label::Class(1));
        write(
            d.path(),
            "QQP/dev.tsv",
            b"id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t2\t3\tWhy \"x?\tWhy y?\t1\n",
        );
        let q = load_split(d.path(), GlueTask::Qqp, Split::Dev).unwrap();
        assert_eq!(q.examples[0].text_a, "Why \"x?");
        assert_eq!(q.examples[0].label, Label::Class(1));
        write(
            d.path(),
            "SST-2/train.tsv",
            b"sentence\tlabel\n\" a stray quote \t0\nok \t1\n",
        );
        let s = load_split(d.path(), GlueTask::Sst2, Split::Train).unwrap();
        assert_eq!(s.examples[0].text_a, "\" a stray quote ");
        assert_eq!(classes(&s), vec![0, 1]);
    }

    #[test]
    fn malformed_row_names_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "CoLA/dev.tsv",
            b"a\t1\t\tok.\nb\t0\t*\ttoo\tmany\n",
        );
        let err = load_split(d.path(), GlueTask::Cola, Split::Dev).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                DataError::ColumnCount {
                    line: 2,
                    expected: 4,
                    found: 5,
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.contains(&format!("{}:2", p.display())), "{msg}");

        write(d.path(), "CoLA/train.tsv", b"a\t1\t\tok.\nb\tx\t*\tbad.\n");
        let msg = load_split(d.path(), GlueTask::Cola, Split::Train)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("train.tsv:2") && msg.contains("\"x\""),
            "{msg}"
        );

        write(
            d.path(),
            "RTE/dev.tsv",
            b"index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n",
        );
        let err = load_split(d.path(), GlueTask::Rte, Split::Dev).unwrap_err();
        assert!(
            matches!(err, DataError::UnknownLabel { line: 2, .. }),
            "{err}"
        );

        write(
            d.path(),
            "STS-B/dev.tsv",
            b"index\tsentence1\tsentence2\tscore\n0\ta\tb\tfive\n",
        );
        let err = load_split(d.path(), GlueTask::Stsb, Split::Dev).unwrap_err();
        assert!(matches!(err, DataError::BadLabel { line: 2, .. }), "{err}");

        write(d.path(), "WNLI/dev.tsv", b"");
        let err = load_split(d.path(), GlueTask::Wnli, Split::Dev).unwrap_err();
        assert!(matches!(err, DataError::Empty { .. }), "{err}");

        write(d.path(), "SST-2/dev.tsv", b"text\tlabel\nx\t1\n");
        let msg = load_split(d.path(), GlueTask::Sst2, Split::Dev)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("dev.tsv:1") && msg.contains("\"sentence\""),
            "{msg}"
        );

        write(
            d.path(),
            "MRPC/dev.csv",
            b"sentence1,sentence2,label,idx\na,b,1\n",
        );
        let msg = load_split(d.path(), GlueTask::Mrpc, Split::Dev)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("dev.csv:2") && msg.contains("expected 4 columns, found 3"),
            "{msg}"
        );

        let msg = load_split(d.path(), GlueTask::Qqp, Split::Train)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("QQP/train.tsv"), "{msg}");
        let err = load_split(d.path(), GlueTask::Rte, Split::DevMismatched).unwrap_err();
        assert!(matches!(err, DataError::UnsupportedSplit { .. }));
    }

    #[test]
    fn ragged_rows_are_counted_not_silent() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "RTE/train.tsv",
            b"index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\textra\tb\tnot_entailment\n2\tc\td\tnot_entailment\n",
        );
        let ds = load_split(d.path(), GlueTask::Rte, Split::Train).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.skipped.len(), 1);
        assert_eq!(ds.skipped[0].0, 3);
        assert!(ds.skipped[0].1.contains("found 5"));
        let w = ds.skip_warning().unwrap();
        assert!(w.contains("skipped 1 row(s) (line 3)") && w.contains(&ds.source.display().to_string()) && w.contains("found 5"), "{w}");
        // Too many ragged rows: error.
        let mut s = String::from("index\tsentence1\tsentence2\tlabel\n");
        for i in 0..=MAX_RAGGED_ROWS {
            s.push_str(&format!("{i}\ta\tx\tb\t0\n"));
        }
        write(d.path(), "RTE/dev.tsv", s.as_bytes());
        let err = load_split(d.path(), GlueTask::Rte, Split::Dev).unwrap_err();
        assert!(matches!(err, DataError::TooManyRagged { .. }), "{err}");
    }

    #[test]
    fn bom_and_crlf() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "MRPC/train.tsv",
            "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t1\t2\tA .\tB .\r\n0\t3\t4\tC\tD".as_bytes(),
        );
        let ds = load_split(d.path(), GlueTask::Mrpc, Split::Train).unwrap();
        assert_eq!(classes(&ds), vec![1, 0]);
        assert_eq!(ds.examples[0].text_b.as_deref(), Some("B ."));
        assert_eq!(ds.examples[1].text_b.as_deref(), Some("D"));
        write(
            d.path(),
            "MRPC/dev.csv",
            "\u{feff}sentence1,sentence2,label,idx\nA,B,1,0\n".as_bytes(),
        );
        let ds = load_split(d.path(), GlueTask::Mrpc, Split::Dev).unwrap();
        assert_eq!(classes(&ds), vec![1]);
    }

    #[test]
    fn take_is_deterministic() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "SST-2/train.tsv",
            b"sentence\tlabel\na\t0\nb\t1\nc\t0\n",
        );
        let ds = load_split(d.path(), GlueTask::Sst2, Split::Train).unwrap();
        let t = ds.clone().take(Some(2));
        assert_eq!(t.examples, ds.examples[..2].to_vec());
        assert_eq!(ds.clone().take(None).len(), 3);
        assert_eq!(ds.take(Some(10)).len(), 3);
    }

    #[test]
    fn mrpc_rebuild_and_write() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "MRPC/msr_paraphrase_train.txt",
            "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t10\t11\ta\tb\n0\t20\t21\tc\td\n1\t30\t31\te\tf\n".as_bytes(),
        );
        write(d.path(), "MRPC/mrpc_dev_ids.tsv", b"20\t21\n");
        let ds = build_mrpc_train_from_original(d.path()).unwrap();
        assert_eq!(classes(&ds), vec![1, 1]);
        assert_eq!(write_mrpc_splits(&d.path().join("MRPC")).unwrap(), (2, 1));
        assert_eq!(
            load_split(d.path(), GlueTask::Mrpc, Split::Train)
                .unwrap()
                .len(),
            2
        );
        let dev = load_split(d.path(), GlueTask::Mrpc, Split::Dev).unwrap();
        assert_eq!(dev.examples[0].text_a, "c");
    }
}
