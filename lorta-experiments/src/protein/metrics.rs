//! Evaluation metrics of predicted distograms and structures, on host data:
//! - distogram cross-entropy (masked mean over pairs, natural log, as OpenFold's `distogram_loss`
//!   for one chain: Σ mask·CE / (ε + Σ mask), ε = 1e-6);
//! - long-range contact precision P@L, P@L/5 (PSICOV/CASP convention): pairs with |i − j| ≥ 24
//!   whose pseudo-β atoms both exist, ranked by predicted contact probability (summed probability
//!   of the distogram bins below 8 Å, [`super::distogram::contact_bins`]); a true contact is a
//!   pseudo-β distance < 8 Å; precision = true contacts among the top k / k with k = ⌊L/f⌋ (at
//!   least 1), L = the full sequence length; when fewer than k pairs qualify the missing ones count
//!   as wrong (as ESM's `compute_precisions` does);
//! - lDDT-Cα (AlphaFold 2's `lddt`, global): pairs i ≠ j with both Cα observed and true distance
//!   < 15 Å; score = mean over thresholds 0.5, 1, 2, 4 Å of |d_pred − d_true| < t.
use super::distogram::{contact_bins, CONTACT_DISTANCE, DISTOGRAM_BINS};

/// Minimum sequence separation of a long-range pair.
pub const LONG_RANGE_MIN_SEP: usize = 24;
pub const LDDT_CUTOFF: f32 = 15.0;

fn log_softmax_row(row: &[f32]) -> Vec<f64> {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
    row.iter().map(|&x| x as f64 - lse).collect()
}

/// Masked mean cross-entropy of row-major `[L, L, 64]` logits against bin targets; `None` when no
/// pair is masked in.
pub fn distogram_cross_entropy(logits: &[f32], bins: &[usize], mask: &[bool], l: usize) -> Option<f64> {
    assert_eq!(logits.len(), l * l * DISTOGRAM_BINS, "logits must be [L, L, {DISTOGRAM_BINS}]");
    let (mut sum, mut n) = (0.0f64, 0usize);
    for p in 0..l * l {
        if mask[p] {
            let lp = log_softmax_row(&logits[p * DISTOGRAM_BINS..(p + 1) * DISTOGRAM_BINS]);
            sum -= lp[bins[p]];
            n += 1;
        }
    }
    (n > 0).then(|| sum / (1e-6 + n as f64))
}

/// Row-major L×L contact probabilities from `[L, L, 64]` logits.
pub fn contact_probabilities(logits: &[f32], l: usize) -> Vec<f32> {
    let k = contact_bins();
    (0..l * l)
        .map(|p| {
            let lp = log_softmax_row(&logits[p * DISTOGRAM_BINS..(p + 1) * DISTOGRAM_BINS]);
            lp[..k].iter().map(|x| x.exp()).sum::<f64>() as f32
        })
        .collect()
}

/// Precision of the top ⌊L/`divisor`⌋ long-range pairs; `None` when no pair qualifies.
pub fn contact_precision(probs: &[f32], pseudo_beta: &[[f32; 3]], mask: &[bool], divisor: usize) -> Option<f64> {
    let l = pseudo_beta.len();
    let mut pairs: Vec<(f32, bool)> = Vec::new();
    for i in 0..l {
        for j in i + LONG_RANGE_MIN_SEP..l {
            if mask[i] && mask[j] {
                let (a, b) = (pseudo_beta[i], pseudo_beta[j]);
                let d2 = (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2);
                pairs.push((probs[i * l + j], d2 < CONTACT_DISTANCE * CONTACT_DISTANCE));
            }
        }
    }
    if pairs.is_empty() {
        return None;
    }
    // Stable sort: ties keep (i, j) order.
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let k = (l / divisor).max(1);
    let hits = pairs.iter().take(k).filter(|p| p.1).count();
    Some(hits as f64 / k as f64)
}

/// Global lDDT-Cα of predicted against true Cα positions; `None` when no pair is scored.
pub fn lddt_ca(pred: &[[f32; 3]], truth: &[[f32; 3]], mask: &[bool]) -> Option<f64> {
    let l = truth.len();
    let d = |x: &[[f32; 3]], i: usize, j: usize| -> f32 {
        ((x[i][0] - x[j][0]).powi(2) + (x[i][1] - x[j][1]).powi(2) + (x[i][2] - x[j][2]).powi(2)).sqrt()
    };
    let (mut score, mut n) = (0.0f64, 0usize);
    for i in 0..l {
        for j in 0..l {
            if i == j || !mask[i] || !mask[j] {
                continue;
            }
            let dt = d(truth, i, j);
            if dt >= LDDT_CUTOFF {
                continue;
            }
            let e = (d(pred, i, j) - dt).abs();
            score += 0.25 * [0.5f32, 1.0, 2.0, 4.0].iter().filter(|&&t| e < t).count() as f64;
            n += 1;
        }
    }
    (n > 0).then(|| score / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_counts_missing_pairs_as_wrong_and_ignores_short_range() {
        // 30 residues on a line 0.25 Å apart: every pair is a contact
        let pb: Vec<[f32; 3]> = (0..30).map(|i| [i as f32 * 0.25, 0.0, 0.0]).collect();
        let mask = vec![true; 30];
        let probs = vec![0.5f32; 900];
        // long-range pairs: (i, j) with j − i ≥ 24: 21 pairs, all contacts (distance ≤ 29·0.25 Å)
        assert_eq!(contact_precision(&probs, &pb, &mask, 1), Some(21.0 / 30.0));
        assert_eq!(contact_precision(&probs, &pb, &mask, 5), Some(1.0));
        let short = vec![true; 10];
        assert_eq!(contact_precision(&probs[..100], &pb[..10], &short, 1), None);
    }

    #[test]
    fn perfect_prediction_has_lddt_one() {
        let x: Vec<[f32; 3]> = (0..10).map(|i| [i as f32, (i * i) as f32 * 0.1, 0.0]).collect();
        assert_eq!(lddt_ca(&x, &x, &[true; 10]), Some(1.0));
        let moved: Vec<[f32; 3]> = x.iter().map(|p| [p[0] * 1.0 + 5.0, p[1] + 5.0, p[2]]).collect();
        assert_eq!(lddt_ca(&moved, &x, &[true; 10]), Some(1.0));
    }
}

/// Checks against `tests/fixtures/proteins/metrics.json` (numpy, `scripts/make_protein_fixtures.py`).
#[cfg(test)]
mod fixture_tests {
    use super::*;
    use crate::protein::chain::ProteinChain;
    use crate::protein::distogram::{boundaries, targets};

    fn case_logits(c: &serde_json::Value) -> Vec<f32> {
        let l = c["l"].as_u64().unwrap() as usize;
        let m = |k: &str| -> Vec<Vec<f64>> { serde_json::from_value(c[k].clone()).unwrap() };
        let (u, v, b) = (m("u"), m("v"), m("b"));
        let kc = contact_bins();
        let mut out = vec![0f32; l * l * DISTOGRAM_BINS];
        for i in 0..l {
            for j in 0..l {
                for k in 0..DISTOGRAM_BINS {
                    let mut x = u[i][k] * v[j][k] + u[j][k] * v[i][k];
                    if k < kc {
                        x += b[i][j];
                    }
                    out[(i * l + j) * DISTOGRAM_BINS + k] = x as f32;
                }
            }
        }
        out
    }

    #[test]
    fn metrics_match_numpy_reference() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proteins/metrics.json");
        let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(fx["contact_bins"].as_u64().unwrap() as usize, contact_bins());
        let want_b: Vec<f32> = serde_json::from_value(fx["boundaries"].clone()).unwrap();
        for (a, b) in boundaries().iter().zip(&want_b) {
            assert!((a - b).abs() < 1e-5, "boundary {a} vs {b}");
        }
        for c in fx["cases"].as_array().unwrap() {
            let l = c["l"].as_u64().unwrap() as usize;
            let pb: Vec<[f32; 3]> = serde_json::from_value(c["pseudo_beta"].clone()).unwrap();
            let mask: Vec<bool> = serde_json::from_value(c["mask"].clone()).unwrap();
            let chain = ProteinChain {
                file: "made-up".into(),
                chain: "A".into(),
                sequence: "A".repeat(l),
                observed: vec![true; l],
                pseudo_beta: pb.clone(),
                pseudo_beta_mask: mask.clone(),
                backbone: vec![[[0.0; 3]; 3]; l],
                backbone_mask: vec![false; l],
                gap_positions: 0,
                breaks: 0,
            };
            let (bins, pair_mask) = targets(&chain);
            let want_bins: Vec<usize> = serde_json::from_value(c["bins"].clone()).unwrap();
            for p in 0..l * l {
                if pair_mask[p] {
                    assert_eq!(bins[p], want_bins[p], "L={l} pair {p}");
                }
            }
            let logits = case_logits(c);
            let ce = distogram_cross_entropy(&logits, &bins, &pair_mask, l).unwrap();
            let want = c["cross_entropy"].as_f64().unwrap();
            assert!((ce - want).abs() < 1e-5 * want, "L={l} CE {ce} vs {want}");
            let probs = contact_probabilities(&logits, l);
            if let Some(w) = c["contact_prob_0_30"].as_f64() {
                assert!((probs[30] as f64 - w).abs() < 1e-5, "contact prob {} vs {w}", probs[30]);
            }
            for (div, key) in [(1, "p_at_l"), (5, "p_at_l5")] {
                let got = contact_precision(&probs, &pb, &mask, div);
                assert_eq!(got.map(|x| (x * 1e9).round()), c[key].as_f64().map(|x| (x * 1e9).round()), "L={l} {key}");
            }
            let tc: Vec<[f32; 3]> = serde_json::from_value(c["true_ca"].clone()).unwrap();
            let pc: Vec<[f32; 3]> = serde_json::from_value(c["pred_ca"].clone()).unwrap();
            let lddt = lddt_ca(&pc, &tc, &mask).unwrap();
            let want = c["lddt_ca"].as_f64().unwrap();
            assert!((lddt - want).abs() < 1e-6, "L={l} lDDT {lddt} vs {want}");
        }
    }
}
