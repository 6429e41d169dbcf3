//! A protein chain as the folding task uses it: the sequence with gap positions, per-residue
//! pseudo-β (Cβ, Cα for glycine) and backbone (N, CA, C) coordinates, and their masks.
//!
//! Gaps (residues missing from the deposited coordinates) are found from the author residue
//! numbering, checked against geometry: between two consecutive observed residues numbered n and
//! m, `m − n − 1` positions are inserted (unknown residue `X`, every mask false) when m > n + 1
//! and their Cα atoms are more than [`BONDED_CA_MAX`] apart; a numbering jump between residues
//! that are bonded in space (Cα–Cα ≤ 4.2 Å) is renumbering, not a gap. A break with consecutive
//! numbers but Cα atoms further apart is counted (`breaks`) without inserting positions (its length
//! is unknown). SEQRES / `_entity_poly_seq` are not used: pdbtbx does not expose them, and several
//! sources here (BM5, Kortemme) are renumbered files without them.
use serde::{Deserialize, Serialize};

use super::structure::{ObservedResidue, StructureError};

/// Largest Cα–Cα distance (Å) of two residues bonded in sequence (3.8 Å plus slack for cis
/// peptides and coordinate error).
pub const BONDED_CA_MAX: f32 = 4.2;
/// Gaps longer than this many residues are shortened to it (a longer run of masked positions only
/// costs compute; it carries no supervision).
pub const MAX_GAP: usize = 64;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProteinChain {
    /// The structure file (relative to the data folder) and chain id.
    pub file: String,
    pub chain: String,
    /// One-letter codes; `X` at gap positions.
    pub sequence: String,
    /// The residue has coordinates (a CA atom) in the file.
    pub observed: Vec<bool>,
    /// Cβ (Cα for glycine) and whether it exists.
    pub pseudo_beta: Vec<[f32; 3]>,
    pub pseudo_beta_mask: Vec<bool>,
    /// N, CA, C, and whether all three exist.
    pub backbone: Vec<[[f32; 3]; 3]>,
    pub backbone_mask: Vec<bool>,
    /// Positions inserted for gaps, and chain breaks without a numbering gap.
    pub gap_positions: usize,
    pub breaks: usize,
}

fn dist(a: [f32; 3], b: [f32; 3]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

impl ProteinChain {
    pub fn len(&self) -> usize {
        self.sequence.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sequence.is_empty()
    }

    /// The observed residues' one-letter codes (what `index.tsv` lists).
    pub fn observed_sequence(&self) -> String {
        self.sequence.chars().zip(&self.observed).filter(|(_, o)| **o).map(|(c, _)| c).collect()
    }

    /// Builds the chain from the observed residues in file order.
    pub fn from_residues(file: &str, chain: &str, residues: &[ObservedResidue]) -> Result<ProteinChain, StructureError> {
        if residues.is_empty() {
            return Err(StructureError::NotProtein { file: file.into(), chain: chain.into() });
        }
        let mut c = ProteinChain {
            file: file.into(),
            chain: chain.into(),
            sequence: String::new(),
            observed: Vec::new(),
            pseudo_beta: Vec::new(),
            pseudo_beta_mask: Vec::new(),
            backbone: Vec::new(),
            backbone_mask: Vec::new(),
            gap_positions: 0,
            breaks: 0,
        };
        for (i, r) in residues.iter().enumerate() {
            for v in r.ca.iter().chain(r.n.iter().flatten()).chain(r.c.iter().flatten()).chain(r.cb.iter().flatten()) {
                if !v.is_finite() {
                    return Err(StructureError::Chain {
                        file: file.into(),
                        chain: chain.into(),
                        msg: format!("residue {}{} has a non-finite coordinate", r.number, r.insertion_code.as_deref().unwrap_or("")),
                    });
                }
            }
            if i > 0 {
                let prev = &residues[i - 1];
                let apart = dist(prev.ca, r.ca) > BONDED_CA_MAX;
                let jump = r.number - prev.number;
                if jump > 1 && apart {
                    let n = ((jump - 1) as usize).min(MAX_GAP);
                    for _ in 0..n {
                        c.push_missing();
                    }
                    c.gap_positions += n;
                } else if apart {
                    c.breaks += 1;
                }
            }
            c.push_observed(r);
        }
        Ok(c)
    }

    fn push_missing(&mut self) {
        self.sequence.push('X');
        self.observed.push(false);
        self.pseudo_beta.push([0.0; 3]);
        self.pseudo_beta_mask.push(false);
        self.backbone.push([[0.0; 3]; 3]);
        self.backbone_mask.push(false);
    }

    fn push_observed(&mut self, r: &ObservedResidue) {
        self.sequence.push(r.aa);
        self.observed.push(true);
        let pb = if r.aa == 'G' { Some(r.ca) } else { r.cb };
        self.pseudo_beta.push(pb.unwrap_or([0.0; 3]));
        self.pseudo_beta_mask.push(pb.is_some());
        match (r.n, r.c) {
            (Some(n), Some(c)) => {
                self.backbone.push([n, r.ca, c]);
                self.backbone_mask.push(true);
            }
            _ => {
                self.backbone.push([[0.0; 3], r.ca, [0.0; 3]]);
                self.backbone_mask.push(false);
            }
        }
    }

    /// The window `[start, start + len)` of the chain (a crop).
    pub fn slice(&self, start: usize, len: usize) -> ProteinChain {
        let end = (start + len).min(self.len());
        ProteinChain {
            file: self.file.clone(),
            chain: self.chain.clone(),
            sequence: self.sequence[start..end].to_string(),
            observed: self.observed[start..end].to_vec(),
            pseudo_beta: self.pseudo_beta[start..end].to_vec(),
            pseudo_beta_mask: self.pseudo_beta_mask[start..end].to_vec(),
            backbone: self.backbone[start..end].to_vec(),
            backbone_mask: self.backbone_mask[start..end].to_vec(),
            gap_positions: self.observed[start..end].iter().filter(|o| !**o).count(),
            breaks: 0,
        }
    }
}

/// Start of a crop of at most `crop` residues: uniform over all windows, from a value `u` in
/// [0, 1) drawn by the caller's seeded RNG. Chains no longer than `crop` are not cropped.
pub fn crop_start(len: usize, crop: usize, u: f64) -> usize {
    if len <= crop {
        return 0;
    }
    let windows = len - crop + 1;
    ((u * windows as f64) as usize).min(windows - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(number: i64, aa: char, ca: [f32; 3], cb: bool) -> ObservedResidue {
        ObservedResidue {
            number,
            insertion_code: None,
            name: "X".into(),
            aa,
            n: Some([ca[0] - 1.0, ca[1], ca[2]]),
            ca,
            c: Some([ca[0] + 1.0, ca[1], ca[2]]),
            cb: cb.then_some([ca[0], ca[1] + 1.5, ca[2]]),
        }
    }

    #[test]
    fn gaps_from_numbering_are_checked_against_geometry() {
        let r = vec![
            res(1, 'A', [0.0, 0.0, 0.0], true),
            res(2, 'G', [3.8, 0.0, 0.0], false),
            // numbering gap of 2 residues, Cα 11 Å away: a real gap
            res(5, 'L', [14.8, 0.0, 0.0], true),
            // numbering jump but bonded: renumbering, no gap
            res(100, 'K', [18.6, 0.0, 0.0], false),
            // consecutive numbers, 10 Å apart: a break of unknown length
            res(101, 'V', [28.6, 0.0, 0.0], true),
        ];
        let c = ProteinChain::from_residues("f.pdb", "A", &r).unwrap();
        assert_eq!(c.sequence, "AGXXLKV");
        assert_eq!(c.observed, vec![true, true, false, false, true, true, true]);
        assert_eq!(c.observed_sequence(), "AGLKV");
        // glycine uses CA; K has no CB → masked
        assert_eq!(c.pseudo_beta_mask, vec![true, true, false, false, true, false, true]);
        assert_eq!(c.pseudo_beta[1], [3.8, 0.0, 0.0]);
        assert_eq!(c.pseudo_beta[0], [0.0, 1.5, 0.0]);
        assert_eq!(c.gap_positions, 2);
        assert_eq!(c.breaks, 1);
        let s = c.slice(1, 3);
        assert_eq!(s.sequence, "GXX");
        assert_eq!(s.gap_positions, 2);
    }

    #[test]
    fn empty_chain_and_bad_coordinates_are_errors_naming_file_and_chain() {
        let e = ProteinChain::from_residues("f.pdb", "B", &[]).unwrap_err();
        assert!(e.to_string().contains("f.pdb") && e.to_string().contains("chain B"), "{e}");
        let mut r = res(1, 'A', [0.0; 3], true);
        r.ca[1] = f32::NAN;
        let e = ProteinChain::from_residues("g.cif", "C", &[r]).unwrap_err();
        assert!(e.to_string().contains("g.cif: chain C") && e.to_string().contains("non-finite"), "{e}");
    }

    #[test]
    fn crop_start_covers_every_window() {
        assert_eq!(crop_start(10, 20, 0.7), 0);
        assert_eq!(crop_start(10, 4, 0.0), 0);
        assert_eq!(crop_start(10, 4, 0.999_999), 6);
        let starts: std::collections::BTreeSet<usize> = (0..70).map(|i| crop_start(10, 4, i as f64 / 70.0)).collect();
        assert_eq!(starts.len(), 7);
    }
}
