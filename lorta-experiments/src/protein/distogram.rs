//! Distogram targets as ESMFold / OpenFold define them: 64 bins of pseudo-β distance with 63
//! boundaries evenly spaced from 2.3125 Å to 21.6875 Å (`torch.linspace(2.3125, 21.6875, 63)`);
//! the bin of a distance d is the number of boundaries b with d² > b² (OpenFold's
//! `distogram_loss`, equal to `torch.bucketize(d, boundaries)`): bin 0 is d ≤ 2.3125 Å, bin 63 is
//! d > 21.6875 Å.
use super::chain::ProteinChain;

pub const DISTOGRAM_BINS: usize = 64;
pub const MIN_BIN: f32 = 2.3125;
pub const MAX_BIN: f32 = 21.6875;
/// Contact threshold of the contact-prediction literature (Cβ–Cβ < 8 Å).
pub const CONTACT_DISTANCE: f32 = 8.0;

/// The 63 bin boundaries in Å.
pub fn boundaries() -> Vec<f32> {
    let n = DISTOGRAM_BINS - 1;
    let step = (MAX_BIN - MIN_BIN) / (n - 1) as f32;
    (0..n).map(|k| MIN_BIN + step * k as f32).collect()
}

/// Number of leading bins whose upper boundary is ≤ 8 Å (bins 0..=18, upper edge 7.9375 Å):
/// a pair's contact probability is the summed probability of these bins.
pub fn contact_bins() -> usize {
    boundaries().iter().filter(|&&b| b <= CONTACT_DISTANCE).count()
}

/// Bin of a squared distance.
pub fn bin_of_squared(d2: f32, squared_boundaries: &[f32]) -> usize {
    squared_boundaries.iter().filter(|&&b| d2 > b).count()
}

/// Row-major L×L bin targets and the pair mask (both pseudo-β atoms exist) of a chain.
pub fn targets(chain: &ProteinChain) -> (Vec<usize>, Vec<bool>) {
    let l = chain.len();
    let sq: Vec<f32> = boundaries().iter().map(|b| b * b).collect();
    let mut bins = vec![0usize; l * l];
    let mut mask = vec![false; l * l];
    for i in 0..l {
        for j in 0..l {
            if chain.pseudo_beta_mask[i] && chain.pseudo_beta_mask[j] {
                let (a, b) = (chain.pseudo_beta[i], chain.pseudo_beta[j]);
                let d2 = (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2);
                bins[i * l + j] = bin_of_squared(d2, &sq);
                mask[i * l + j] = true;
            }
        }
    }
    (bins, mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_match_esmfold() {
        let b = boundaries();
        assert_eq!(b.len(), 63);
        assert!((b[0] - 2.3125).abs() < 1e-6 && (b[62] - 21.6875).abs() < 1e-5);
        assert!((b[1] - b[0] - 0.3125).abs() < 1e-6);
        assert_eq!(contact_bins(), 19);
        let sq: Vec<f32> = b.iter().map(|x| x * x).collect();
        assert_eq!(bin_of_squared(0.0, &sq), 0);
        assert_eq!(bin_of_squared(2.3125f32.powi(2), &sq), 0); // on a boundary: the lower bin
        assert_eq!(bin_of_squared(2.4f32.powi(2), &sq), 1);
        assert_eq!(bin_of_squared(7.9f32.powi(2), &sq), 18);
        assert_eq!(bin_of_squared(8.0f32.powi(2), &sq), 19);
        assert_eq!(bin_of_squared(30.0f32.powi(2), &sq), 63);
    }
}
