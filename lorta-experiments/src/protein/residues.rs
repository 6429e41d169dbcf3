//! Amino-acid alphabet: three-letter residue names → one-letter codes → model token ids.
//!
//! Modified residues that are common in crystal structures are mapped to their parent amino acid
//! (selenomethionine MSE → M, phospho-serine SEP → S, ...), as the PDB's `_pdbx_poly_seq_scheme`
//! and gemmi's tabulated residues do; anything else is not part of the protein chain.

/// AlphaFold 2's residue order (`restypes`); index 20 is the unknown residue `X` (also used for
/// positions inside a gap of the observed chain).
pub const RESTYPES: &[u8; 20] = b"ARNDCQEGHILKMFPSTWYV";
/// Token id of an unknown residue (gap positions get it too).
pub const UNKNOWN_ID: usize = 20;
/// Size of the learned residue embedding's vocabulary (20 amino acids + `X`).
pub const VOCAB_SIZE: usize = 21;

/// One-letter code of a residue name, or `None` when it is not an amino acid we keep.
pub fn one_letter(name: &str) -> Option<char> {
    let c = match name.trim().to_ascii_uppercase().as_str() {
        "ALA" => 'A',
        "ARG" => 'R',
        "ASN" => 'N',
        "ASP" => 'D',
        "CYS" => 'C',
        "GLN" => 'Q',
        "GLU" => 'E',
        "GLY" => 'G',
        "HIS" => 'H',
        "ILE" => 'I',
        "LEU" => 'L',
        "LYS" => 'K',
        "MET" => 'M',
        "PHE" => 'F',
        "PRO" => 'P',
        "SER" => 'S',
        "THR" => 'T',
        "TRP" => 'W',
        "TYR" => 'Y',
        "VAL" => 'V',
        // modified residues → parent amino acid
        "MSE" | "MHO" | "MME" => 'M',
        "SEP" => 'S',
        "TPO" => 'T',
        "PTR" => 'Y',
        "MLY" | "M3L" | "KCX" | "LLP" | "ALY" => 'K',
        "CSO" | "CME" | "CSD" | "CSS" | "OCS" | "CAS" | "CSX" => 'C',
        "HYP" => 'P',
        "PCA" => 'E',
        "NLE" => 'L',
        "HIC" | "NEP" => 'H',
        _ => return None,
    };
    Some(c)
}

/// Token id of a one-letter code in [`RESTYPES`] order (unknown letters → [`UNKNOWN_ID`]).
pub fn token_id(c: char) -> usize {
    RESTYPES.iter().position(|&r| r as char == c).unwrap_or(UNKNOWN_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_maps_standard_and_modified_residues() {
        assert_eq!(one_letter("GLY"), Some('G'));
        assert_eq!(one_letter("mse"), Some('M'));
        assert_eq!(one_letter("HOH"), None);
        assert_eq!(one_letter("CA"), None);
        assert_eq!(token_id('A'), 0);
        assert_eq!(token_id('V'), 19);
        assert_eq!(token_id('X'), UNKNOWN_ID);
        for (i, &c) in RESTYPES.iter().enumerate() {
            assert_eq!(token_id(c as char), i);
        }
    }
}
