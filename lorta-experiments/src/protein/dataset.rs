//! The structure data folder (`../shared/data/proteins/pdb`): `index.tsv` (one row per chain:
//! file, source, pdb_id, chain, n_residues_with_CA, sequence, sha256), split files
//! (`splits/val_psicov150.tsv`, `splits/train.tsv`: file, chain, n_residues_with_CA, source), and
//! loading the chains of a split with a parse cache.
//!
//! Every chain read is checked against `index.tsv`: its observed residues must spell the indexed
//! sequence. A chain that cannot be used (unreadable or truncated file, chain missing, not a
//! protein, sequence mismatch) is an error naming file and chain, or — with
//! [`OnBadChain::Skip`] — a skip that is counted and listed in the [`LoadReport`].
//!
//! Cache: one JSON file per structure file, `<cache>/<sha256 of the stored bytes>.json`, holding
//! every protein chain of the file as [`ProteinChain`]s (gaps inserted, masks built), so a second
//! run hashes the files but does not parse them.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chain::ProteinChain;
use super::structure::{parse_structure_bytes, StructureError};
use crate::report::write_atomic;

/// Bumped whenever parsing or chain building changes, so older cache files are ignored.
pub const CACHE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitEntry {
    pub file: String,
    pub chain: String,
    pub n_residues: usize,
    pub source: String,
}

/// What to do with a chain that cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnBadChain {
    Error,
    Skip,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedChain {
    pub file: String,
    pub chain: String,
    pub reason: String,
}

/// What loading a split did (kept in the run's results).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub split: String,
    pub requested: usize,
    pub loaded: usize,
    pub skipped: Vec<SkippedChain>,
    pub files_from_cache: usize,
    pub files_parsed: usize,
    pub residues: usize,
    pub gap_positions: usize,
    pub chain_breaks: usize,
    /// Observed residues without a pseudo-β atom (non-glycine without CB).
    pub missing_pseudo_beta: usize,
}

impl LoadReport {
    /// One summary line.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} of {} chains loaded ({} residues, {} gap positions inserted, {} chain breaks, {} residues without Cβ; {} files parsed, {} from cache)",
            self.split,
            self.loaded,
            self.requested,
            self.residues,
            self.gap_positions,
            self.chain_breaks,
            self.missing_pseudo_beta,
            self.files_parsed,
            self.files_from_cache
        );
        if !self.skipped.is_empty() {
            s.push_str(&format!("; {} skipped:", self.skipped.len()));
            for k in &self.skipped {
                s.push_str(&format!("\n  skipped {} chain {}: {}", k.file, k.chain, k.reason));
            }
        }
        s
    }
}

#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub cache_dir: Option<PathBuf>,
    pub on_bad_chain: Option<OnBadChain>,
    /// Keep only the first N entries of the split (file order).
    pub max_chains: Option<usize>,
}

fn tsv_rows(path: &Path) -> Result<(Vec<String>, Vec<(usize, Vec<String>)>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<String> = match lines.next() {
        Some((_, h)) => h.split('\t').map(|s| s.trim().to_string()).collect(),
        None => bail!("{}: empty file (expected a header line)", path.display()),
    };
    let rows = lines.map(|(i, l)| (i + 1, l.split('\t').map(|s| s.trim().to_string()).collect())).collect();
    Ok((header, rows))
}

fn column(header: &[String], name: &str, path: &Path) -> Result<usize> {
    header.iter().position(|h| h == name).with_context(|| format!("{}: no column `{name}` in the header ({})", path.display(), header.join(", ")))
}

/// Reads a split file (columns file, chain, n_residues_with_CA; source optional).
pub fn read_split(path: &Path) -> Result<Vec<SplitEntry>> {
    let (header, rows) = tsv_rows(path)?;
    let (f, c, n) = (column(&header, "file", path)?, column(&header, "chain", path)?, column(&header, "n_residues_with_CA", path)?);
    let s = header.iter().position(|h| h == "source");
    rows.into_iter()
        .map(|(line, r)| {
            let get = |i: usize| r.get(i).cloned().with_context(|| format!("{}:{line}: missing column {}", path.display(), header[i]));
            let n_residues = get(n)?.parse().with_context(|| format!("{}:{line}: n_residues_with_CA is not a number", path.display()))?;
            Ok(SplitEntry { file: get(f)?, chain: get(c)?, n_residues, source: s.and_then(|i| r.get(i).cloned()).unwrap_or_default() })
        })
        .collect()
}

/// `index.tsv`: (file, chain) → indexed sequence of the residues with a CA atom.
pub fn read_index(path: &Path) -> Result<HashMap<(String, String), String>> {
    let (header, rows) = tsv_rows(path)?;
    let (f, c, s) = (column(&header, "file", path)?, column(&header, "chain", path)?, column(&header, "sequence", path)?);
    let mut map = HashMap::new();
    for (line, r) in rows {
        match (r.get(f), r.get(c), r.get(s)) {
            (Some(f), Some(c), Some(s)) => {
                map.insert((f.clone(), c.clone()), s.clone());
            }
            _ => bail!("{}:{line}: expected at least {} columns", path.display(), header.len()),
        }
    }
    Ok(map)
}

/// Resolves a split name (`val_psicov150`, `train`) or a path to a split file.
pub fn split_path(data_dir: &Path, split: &str) -> PathBuf {
    let p = Path::new(split);
    if p.is_file() {
        return p.to_path_buf();
    }
    data_dir.join("splits").join(format!("{split}.tsv"))
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    chains: Vec<ProteinChain>,
    other_chains: Vec<String>,
}

/// Every protein chain of one file, from the cache or parsed (and then cached).
fn file_chains(data_dir: &Path, file: &str, cache_dir: Option<&Path>, report: &mut LoadReport) -> Result<CacheFile, StructureError> {
    let path = data_dir.join(file);
    let bytes = std::fs::read(&path).map_err(|e| StructureError::Io { file: file.into(), msg: e.to_string() })?;
    let key = format!("{:x}", Sha256::digest(&bytes));
    let cache_path = cache_dir.map(|d| d.join(format!("{key}.json")));
    if let Some(cp) = &cache_path {
        if let Ok(text) = std::fs::read_to_string(cp) {
            if let Ok(mut c) = serde_json::from_str::<CacheFile>(&text) {
                if c.version == CACHE_VERSION {
                    for ch in &mut c.chains {
                        ch.file = file.to_string();
                    }
                    report.files_from_cache += 1;
                    return Ok(c);
                }
            }
        }
    }
    let s = parse_structure_bytes(&bytes, &path, file)?;
    let mut chains = Vec::new();
    for (id, residues) in &s.chains {
        chains.push(ProteinChain::from_residues(file, id, residues)?);
    }
    let c = CacheFile { version: CACHE_VERSION, chains, other_chains: s.other_chains };
    report.files_parsed += 1;
    if let (Some(cp), Some(dir)) = (&cache_path, cache_dir) {
        // A cache that cannot be written only costs time; say so once per file.
        let written = std::fs::create_dir_all(dir)
            .map_err(anyhow::Error::from)
            .and_then(|_| serde_json::to_vec(&c).map_err(anyhow::Error::from))
            .and_then(|b| write_atomic(cp, &b));
        if let Err(e) = written {
            eprintln!("warning: parse cache not written: {e:#}");
        }
    }
    Ok(c)
}

/// Loads the chains of `split` (a name under `data_dir/splits/` or a path). Default policy: skip
/// (counted and reported) for the training split, error for anything else.
pub fn load_split(data_dir: &Path, split: &str, opts: &LoadOptions) -> Result<(Vec<ProteinChain>, LoadReport)> {
    let sp = split_path(data_dir, split);
    let entries = read_split(&sp)?;
    let index_path = data_dir.join("index.tsv");
    let index = read_index(&index_path)?;
    let on_bad = opts.on_bad_chain.unwrap_or(if split == "train" { OnBadChain::Skip } else { OnBadChain::Error });
    let entries: Vec<SplitEntry> = entries.into_iter().take(opts.max_chains.unwrap_or(usize::MAX)).collect();
    let mut report = LoadReport { split: split.to_string(), requested: entries.len(), ..Default::default() };
    let mut out = Vec::new();
    let mut files: HashMap<String, std::result::Result<CacheFile, StructureError>> = HashMap::new();
    for e in &entries {
        if !files.contains_key(&e.file) {
            let parsed = file_chains(data_dir, &e.file, opts.cache_dir.as_deref(), &mut report);
            files.insert(e.file.clone(), parsed);
        }
        let chain: std::result::Result<ProteinChain, String> = match &files[&e.file] {
            Err(err) => Err(err.to_string()),
            Ok(cf) => match cf.chains.iter().find(|c| c.chain == e.chain) {
                Some(c) => {
                    let seq = c.observed_sequence();
                    match index.get(&(e.file.clone(), e.chain.clone())) {
                        None => Err(format!("{} chain {}: not listed in {}", e.file, e.chain, index_path.display())),
                        Some(s) if *s != seq => Err(format!(
                            "{} chain {}: observed sequence ({} residues) differs from {} ({} residues)",
                            e.file,
                            e.chain,
                            seq.len(),
                            index_path.display(),
                            s.len()
                        )),
                        Some(_) => Ok(c.clone()),
                    }
                }
                None if cf.other_chains.contains(&e.chain) => {
                    Err(StructureError::NotProtein { file: e.file.clone(), chain: e.chain.clone() }.to_string())
                }
                None => Err(StructureError::MissingChain {
                    file: e.file.clone(),
                    chain: e.chain.clone(),
                    available: cf.chains.iter().map(|c| c.chain.as_str()).collect::<Vec<_>>().join(", "),
                }
                .to_string()),
            },
        };
        match chain {
            Ok(c) => {
                report.loaded += 1;
                report.residues += c.observed.iter().filter(|o| **o).count();
                report.gap_positions += c.gap_positions;
                report.chain_breaks += c.breaks;
                report.missing_pseudo_beta += c.observed.iter().zip(&c.pseudo_beta_mask).filter(|(o, m)| **o && !**m).count();
                out.push(c);
            }
            Err(reason) => match on_bad {
                OnBadChain::Error => bail!("{reason} (split {}; pass --on-bad-chain skip to leave such chains out)", sp.display()),
                OnBadChain::Skip => report.skipped.push(SkippedChain { file: e.file.clone(), chain: e.chain.clone(), reason }),
            },
        }
    }
    Ok((out, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proteins/data")
    }

    #[test]
    fn fixture_splits_load_and_match_the_index_then_come_from_cache() {
        let cache = tempfile::tempdir().unwrap();
        let opts = LoadOptions { cache_dir: Some(cache.path().to_path_buf()), ..Default::default() };
        for (split, n) in [("train", 4), ("val_psicov150", 3)] {
            let (chains, rep) = load_split(&data_dir(), split, &opts).unwrap();
            assert_eq!((chains.len(), rep.loaded, rep.requested), (n, n, n), "{}", rep.summary());
            assert!(rep.skipped.is_empty());
            assert_eq!(rep.files_parsed, n);
            let entries = read_split(&split_path(&data_dir(), split)).unwrap();
            for (c, e) in chains.iter().zip(&entries) {
                assert_eq!(c.observed.iter().filter(|o| **o).count(), e.n_residues, "{} {}", c.file, c.chain);
            }
            let (again, rep2) = load_split(&data_dir(), split, &opts).unwrap();
            assert_eq!(again, chains);
            assert_eq!((rep2.files_from_cache, rep2.files_parsed), (n, 0));
        }
    }

    #[test]
    fn bad_chains_are_errors_or_counted_skips() {
        let dir = tempfile::tempdir().unwrap();
        let src = data_dir();
        let copy = |rel: &str| {
            let to = dir.path().join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(src.join(rel), &to).unwrap();
        };
        copy("index.tsv");
        copy("kortemme_covariation_pfam40/1BXY_A.pdb.gz");
        // truncated copy of another file
        let bytes = std::fs::read(src.join("kortemme_covariation_pfam40/1UCS_A.pdb.gz")).unwrap();
        std::fs::create_dir_all(dir.path().join("kortemme_covariation_pfam40")).unwrap();
        std::fs::write(dir.path().join("kortemme_covariation_pfam40/1UCS_A.pdb.gz"), &bytes[..bytes.len() / 2]).unwrap();
        std::fs::create_dir_all(dir.path().join("splits")).unwrap();
        let split = "file\tchain\tn_residues_with_CA\tsource\n\
            kortemme_covariation_pfam40/1BXY_A.pdb.gz\tA\t60\tk\n\
            kortemme_covariation_pfam40/1BXY_A.pdb.gz\tZ\t60\tk\n\
            kortemme_covariation_pfam40/1UCS_A.pdb.gz\tA\t64\tk\n\
            kortemme_covariation_pfam40/missing.pdb.gz\tA\t64\tk\n";
        std::fs::write(dir.path().join("splits/mixed.tsv"), split).unwrap();
        let e = load_split(dir.path(), "mixed", &LoadOptions::default()).unwrap_err().to_string();
        assert!(e.contains("1BXY_A.pdb.gz: chain Z not found"), "{e}");
        let opts = LoadOptions { on_bad_chain: Some(OnBadChain::Skip), ..Default::default() };
        let (chains, rep) = load_split(dir.path(), "mixed", &opts).unwrap();
        assert_eq!(chains.len(), 1);
        assert_eq!(rep.skipped.len(), 3, "{}", rep.summary());
        assert!(rep.skipped[1].reason.contains("gzip"), "{:?}", rep.skipped[1]);
        assert!(rep.skipped[2].reason.contains("missing.pdb.gz"), "{:?}", rep.skipped[2]);
        assert!(rep.summary().contains("1 of 4 chains loaded"), "{}", rep.summary());
    }

    /// Every chain of both real splits (when ../shared/data is present): it parses, and its
    /// observed residues spell index.tsv's sequence. (~2 s for all 545 chains.)
    #[test]
    fn shared_splits_parse_completely() {
        let base = std::env::var_os("LORTA_SHARED_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
        let dir = base.join("proteins/pdb");
        if !dir.is_dir() {
            println!("skipping: {} not found", dir.display());
            return;
        }
        for split in ["val_psicov150", "train"] {
            let opts = LoadOptions { on_bad_chain: Some(OnBadChain::Skip), ..Default::default() };
            let (_, rep) = load_split(&dir, split, &opts).unwrap();
            println!("{}", rep.summary());
            assert!(rep.skipped.is_empty(), "{}", rep.summary());
        }
    }
}
