//! Reading one PDB or mmCIF file (optionally gzipped) into per-chain lists of observed amino-acid
//! residues with their backbone and Cβ atoms (first model, first alternate location).
//!
//! Parsing is pdbtbx's; gzip is decompressed here with flate2 first, so a truncated archive is
//! reported as such (and the bytes can be hashed for the cache). pdbtbx panics on a few malformed
//! mmCIF rows (`expect` on required columns); those panics are caught and turned into errors
//! naming the file.
use std::io::Read;
use std::path::Path;

use pdbtbx::{Format, ReadOptions, StrictnessLevel};
use serde::{Deserialize, Serialize};

use super::residues::one_letter;

/// Why a file or chain could not be read. Every variant names the file (and chain).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StructureError {
    #[error("{file}: cannot read: {msg}")]
    Io { file: String, msg: String },
    #[error("{file}: corrupt or truncated gzip data: {msg}")]
    Gzip { file: String, msg: String },
    #[error("{file}: unknown structure format (expected .pdb, .cif, .mmcif, optionally .gz)")]
    Format { file: String },
    #[error("{file}: not a readable {format} file: {msg}")]
    Parse { file: String, format: String, msg: String },
    #[error("{file}: the file has no model with atoms")]
    NoModel { file: String },
    #[error("{file}: chain {chain} not found in the first model (chains with amino acids: {available})")]
    MissingChain { file: String, chain: String, available: String },
    #[error("{file}: chain {chain} is not a protein chain (no amino-acid residue with a CA atom)")]
    NotProtein { file: String, chain: String },
    #[error("{file}: chain {chain}: {msg}")]
    Chain { file: String, chain: String, msg: String },
}

/// One observed amino-acid residue (it has a CA atom); coordinates in Å.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservedResidue {
    /// Author residue number and insertion code.
    pub number: i64,
    pub insertion_code: Option<String>,
    pub name: String,
    pub aa: char,
    pub n: Option<[f32; 3]>,
    pub ca: [f32; 3],
    pub c: Option<[f32; 3]>,
    pub cb: Option<[f32; 3]>,
}

/// The amino-acid residues of every chain of the first model, in file order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StructureFile {
    pub chains: Vec<(String, Vec<ObservedResidue>)>,
    /// Chains of the first model without any amino-acid residue (nucleic acids, ligands, water).
    pub other_chains: Vec<String>,
}

impl StructureFile {
    /// Residues of `chain`, or an error naming the file and what is there.
    pub fn chain(&self, file: &str, chain: &str) -> Result<&[ObservedResidue], StructureError> {
        if let Some((_, r)) = self.chains.iter().find(|(id, _)| id == chain) {
            return Ok(r);
        }
        if self.other_chains.iter().any(|c| c == chain) {
            return Err(StructureError::NotProtein { file: file.into(), chain: chain.into() });
        }
        let available = self.chains.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(", ");
        Err(StructureError::MissingChain { file: file.into(), chain: chain.into(), available })
    }
}

/// Format from the file name: `.pdb`/`.ent` or `.cif`/`.mmcif`, each optionally followed by `.gz`.
pub fn format_of(path: &Path) -> Option<(Format, bool)> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let (stem, gz) = match name.strip_suffix(".gz") {
        Some(s) => (s.to_string(), true),
        None => (name, false),
    };
    if stem.ends_with(".pdb") || stem.ends_with(".ent") {
        Some((Format::Pdb, gz))
    } else if stem.ends_with(".cif") || stem.ends_with(".mmcif") {
        Some((Format::Mmcif, gz))
    } else {
        None
    }
}

/// Decompresses `bytes` when `gz`; errors name `file`.
pub fn decompress(bytes: &[u8], gz: bool, file: &str) -> Result<Vec<u8>, StructureError> {
    if !gz {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| StructureError::Gzip { file: file.into(), msg: e.to_string() })?;
    Ok(out)
}

/// Reads and parses one file.
pub fn read_structure(path: &Path) -> Result<StructureFile, StructureError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| StructureError::Io { file: file.clone(), msg: e.to_string() })?;
    parse_structure_bytes(&bytes, path, &file)
}

/// Parses the (possibly gzipped) bytes of the file at `path` (its name gives the format).
pub fn parse_structure_bytes(bytes: &[u8], path: &Path, file: &str) -> Result<StructureFile, StructureError> {
    let (format, gz) = format_of(path).ok_or_else(|| StructureError::Format { file: file.into() })?;
    let text = decompress(bytes, gz, file)?;
    parse_structure(&text, format, file)
}

/// Parses uncompressed PDB or mmCIF text.
pub fn parse_structure(text: &[u8], format: Format, file: &str) -> Result<StructureFile, StructureError> {
    let format_name = match format {
        Format::Pdb => "PDB",
        Format::Mmcif => "mmCIF",
        Format::Auto => "structure",
    };
    let parse_err = |msg: String| StructureError::Parse { file: file.into(), format: format_name.into(), msg };
    if text.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(parse_err("the file is empty".into()));
    }
    match parse_with_pdbtbx(text, format, file, format_name) {
        // Columns 77-80 of PDB atom records (element, charge) are not used here; some cleaned
        // files (BM5) shift text into them, which pdbtbx rejects. Retry with them blank.
        Err(first) if matches!(format, Format::Pdb) => {
            let trimmed = trim_element_and_charge(text);
            parse_with_pdbtbx(&trimmed, format, file, format_name).map_err(|second| match (first, second) {
                (StructureError::Parse { file, format, msg }, StructureError::Parse { msg: m2, .. }) => {
                    StructureError::Parse { file, format, msg: format!("{msg} (without element/charge columns: {m2})") }
                }
                (first, _) => first,
            })
        }
        other => other,
    }
}

/// Atom records with columns 77-80 (element symbol, charge) blanked and anything after cut.
fn trim_element_and_charge(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for line in text.split(|&b| b == b'\n') {
        let atom = line.starts_with(b"ATOM  ") || line.starts_with(b"HETATM");
        if atom && line.len() > 76 {
            out.extend_from_slice(&line[..76]);
            out.extend_from_slice(b"    ");
        } else {
            out.extend_from_slice(line);
        }
        out.push(b'\n');
    }
    out
}

fn parse_with_pdbtbx(text: &[u8], format: Format, file: &str, format_name: &str) -> Result<StructureFile, StructureError> {
    let parse_err = |msg: String| StructureError::Parse { file: file.into(), format: format_name.into(), msg };
    let result = std::panic::catch_unwind(|| {
        let mut opts = ReadOptions::new();
        // Coordinates only (ATOM/HETATM/MODEL/TER/END): pdbtbx rejects real headers (MASTER
        // checksums, REMARK numbers) that nothing here uses.
        opts.set_format(format).set_level(StrictnessLevel::Loose).set_only_first_model(true).set_only_atomic_coords(true);
        opts.read_raw(std::io::BufReader::new(text))
    });
    let pdb = match result {
        Ok(Ok((pdb, _warnings))) => pdb,
        Ok(Err(errors)) => {
            let failing: Vec<_> = errors.iter().filter(|e| e.fails(StrictnessLevel::Loose)).collect();
            let shown = if failing.is_empty() { errors.iter().collect() } else { failing };
            let msgs: Vec<String> = shown
                .into_iter()
                .take(3)
                .map(|e| format!("{}: {}", e.short_description(), e.long_description()))
                .collect();
            return Err(parse_err(msgs.join("; ")));
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the parser panicked".into());
            return Err(parse_err(format!("malformed record ({msg})")));
        }
    };
    let model = pdb.model(0).ok_or_else(|| StructureError::NoModel { file: file.into() })?;
    let mut chains: Vec<(String, Vec<ObservedResidue>)> = Vec::new();
    let mut other_chains = Vec::new();
    for chain in model.chains() {
        let residues: Vec<ObservedResidue> = chain.residues().filter_map(observed_residue).collect();
        let id = chain.id().to_string();
        if residues.is_empty() {
            other_chains.push(id);
        } else if let Some((_, r)) = chains.iter_mut().find(|(c, _)| *c == id) {
            // pdbtbx may split one chain id into two blocks (e.g. after a TER); keep file order.
            r.extend(residues);
        } else {
            chains.push((id, residues));
        }
    }
    if chains.is_empty() && other_chains.is_empty() {
        return Err(StructureError::NoModel { file: file.into() });
    }
    Ok(StructureFile { chains, other_chains })
}

/// The residue's amino acid and atoms of the first alternate location: atoms without an altloc
/// label plus those of the first label seen in the residue. `None` for non-amino-acids and for
/// residues without CA.
fn observed_residue(res: &pdbtbx::Residue) -> Option<ObservedResidue> {
    let first_conf = res.conformers().next()?;
    let name = first_conf.name().to_string();
    let aa = one_letter(&name)?;
    let first_alt = res.conformers().find_map(|c| c.alternative_location().map(str::to_string));
    let atom = |want: &str| -> Option<[f32; 3]> {
        res.conformers()
            .filter(|c| c.alternative_location().is_none() || c.alternative_location() == first_alt.as_deref())
            .flat_map(|c| c.atoms())
            .find(|a| a.name().trim() == want)
            .map(|a| {
                let (x, y, z) = a.pos();
                [x as f32, y as f32, z as f32]
            })
    };
    let ca = atom("CA")?;
    Some(ObservedResidue {
        number: res.serial_number() as i64,
        insertion_code: res.insertion_code().map(str::to_string),
        name,
        aa,
        n: atom("N"),
        ca,
        c: atom("C"),
        cb: atom("CB"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protein::chain::ProteinChain;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proteins").join(name)
    }

    /// `synthetic.pdb` / `.cif` (scripts/make_protein_fixtures.py): gap, glycine, MSE, missing CB,
    /// altlocs listed B first, waters, a DNA chain, a second model.
    #[test]
    fn synthetic_pdb_and_mmcif_give_the_expected_chain() {
        let want: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("synthetic.json")).unwrap()).unwrap();
        for name in ["synthetic.pdb", "synthetic.cif"] {
            let s = read_structure(&fixture(name)).unwrap();
            let file = format!("{name}");
            let res = s.chain(&file, "A").unwrap();
            let c = ProteinChain::from_residues(&file, "A", res).unwrap();
            assert_eq!(c.sequence, want["sequence"].as_str().unwrap(), "{name}");
            assert_eq!(serde_json::to_value(&c.observed).unwrap(), want["observed"], "{name}");
            assert_eq!(serde_json::to_value(&c.pseudo_beta_mask).unwrap(), want["pseudo_beta_mask"], "{name}");
            let pb: Vec<[f32; 3]> = serde_json::from_value(want["pseudo_beta"].clone()).unwrap();
            for (i, (a, b)) in c.pseudo_beta.iter().zip(&pb).enumerate() {
                if c.pseudo_beta_mask[i] {
                    for k in 0..3 {
                        assert!((a[k] - b[k]).abs() < 1e-4, "{name} residue {i}: {a:?} vs {b:?}");
                    }
                }
            }
            assert_eq!(c.gap_positions, 3);
            assert!(c.backbone_mask.iter().zip(&c.observed).all(|(b, o)| b == o));
            let e = s.chain(&file, "B").unwrap_err();
            assert!(matches!(e, StructureError::NotProtein { .. }), "{name}: {e}");
            assert!(e.to_string().contains(name) && e.to_string().contains("chain B"), "{e}");
            let e = s.chain(&file, "Q").unwrap_err();
            assert!(e.to_string().contains("chain Q not found") && e.to_string().contains("A"), "{e}");
        }
    }

    #[test]
    fn corrupt_truncated_and_empty_files_are_errors_naming_the_file() {
        let pdb = std::fs::read(fixture("synthetic.pdb")).unwrap();
        let mut gz = Vec::new();
        {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::default());
            enc.write_all(&pdb).unwrap();
            enc.finish().unwrap();
        }
        // the whole archive parses
        assert!(parse_structure_bytes(&gz, Path::new("x.pdb.gz"), "x.pdb.gz").is_ok());
        // truncated archive
        let e = parse_structure_bytes(&gz[..gz.len() / 2], Path::new("x.pdb.gz"), "x.pdb.gz").unwrap_err();
        assert!(matches!(e, StructureError::Gzip { .. }) && e.to_string().starts_with("x.pdb.gz:"), "{e}");
        // not gzip at all
        let e = parse_structure_bytes(b"hello", Path::new("y.cif.gz"), "y.cif.gz").unwrap_err();
        assert!(matches!(e, StructureError::Gzip { .. }), "{e}");
        // empty and garbage text
        let e = parse_structure_bytes(b"", Path::new("z.pdb"), "z.pdb").unwrap_err();
        assert!(e.to_string().starts_with("z.pdb:"), "{e}");
        let e = parse_structure_bytes(b"data_x\nloop_\n_atom_site.id\n_atom_site.Cartn_x\n1\n", Path::new("w.cif"), "w.cif").unwrap_err();
        assert!(e.to_string().starts_with("w.cif:"), "{e}");
        // a PDB cut in the middle of an ATOM line: either an error or fewer atoms, never a panic
        let cut = &pdb[..pdb.len() / 3];
        match parse_structure(cut, Format::Pdb, "cut.pdb") {
            Ok(s) => assert!(s.chains[0].1.len() < 7),
            Err(e) => assert!(e.to_string().starts_with("cut.pdb:"), "{e}"),
        }
        // junk in the element/charge columns (as in BM5's cleaned files) is ignored
        let text = String::from_utf8(pdb.clone()).unwrap();
        let junk: String = text
            .lines()
            .map(|l| if l.starts_with("ATOM  ") { format!("{}A     SD   \n", &l[..72]) } else { format!("{l}\n") })
            .collect();
        assert!(parse_with_pdbtbx(junk.as_bytes(), Format::Pdb, "junk.pdb", "PDB").is_err(), "pdbtbx accepts the junk now");
        let s = parse_structure(junk.as_bytes(), Format::Pdb, "junk.pdb").unwrap();
        assert_eq!(s.chains[0].1.len(), 7);
        let e = parse_structure_bytes(b"x", Path::new("v.txt"), "v.txt").unwrap_err();
        assert!(matches!(e, StructureError::Format { .. }), "{e}");
    }
}
