//! Batches of (cropped) chains for the folding model: right-padded residue tokens and masks,
//! distogram targets and pair masks, and the true backbone for FAPE.
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use rand::{RngExt, SeedableRng};

use super::chain::{crop_start, ProteinChain};
use super::distogram::targets;
use super::residues::token_id;

/// Host-side batch, row-major, padded to the longest chain rounded up to a multiple of `pad_to`.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldBatch {
    pub batch: usize,
    pub len: usize,
    /// AlphaFold residue indices (`X` = 20); 0 on padding.
    pub aatype: Vec<i64>,
    /// 1 for sequence positions (gap positions included), 0 for padding.
    pub mask: Vec<i64>,
    /// `[b, L, L]` distogram bins and pair masks (both pseudo-β atoms exist).
    pub bins: Vec<i64>,
    pub pair_mask: Vec<f32>,
    /// `[b, L, 3, 3]` N, CA, C and `[b, L]` whether all three exist.
    pub backbone: Vec<f32>,
    pub backbone_mask: Vec<f32>,
}

/// Device tensors of a [`FoldBatch`].
pub struct FoldTensors<B: Backend> {
    pub aatype: Tensor<B, 2, Int>,
    pub mask: Tensor<B, 2, Int>,
    pub bins: Tensor<B, 3, Int>,
    pub pair_mask: Tensor<B, 3>,
    pub backbone: Tensor<B, 4>,
    pub backbone_mask: Tensor<B, 2>,
}

impl FoldBatch {
    /// `pad_to` > 1 bounds the distinct lengths a GPU backend compiles and tunes kernels for
    /// (every training crop shorter than the crop length would otherwise be a new shape); padded
    /// positions are masked everywhere, so real positions do not see them.
    pub fn new(chains: &[&ProteinChain], pad_to: usize) -> FoldBatch {
        let b = chains.len();
        let l = chains.iter().map(|c| c.len()).max().unwrap_or(0).next_multiple_of(pad_to.max(1));
        let mut fb = FoldBatch {
            batch: b,
            len: l,
            aatype: vec![0; b * l],
            mask: vec![0; b * l],
            bins: vec![0; b * l * l],
            pair_mask: vec![0.0; b * l * l],
            backbone: vec![0.0; b * l * 9],
            backbone_mask: vec![0.0; b * l],
        };
        for (n, c) in chains.iter().enumerate() {
            let (bins, pm) = targets(c);
            let lc = c.len();
            for (i, ch) in c.sequence.chars().enumerate() {
                fb.aatype[n * l + i] = token_id(ch) as i64;
                fb.mask[n * l + i] = 1;
                fb.backbone_mask[n * l + i] = if c.backbone_mask[i] { 1.0 } else { 0.0 };
                for a in 0..3 {
                    for x in 0..3 {
                        fb.backbone[((n * l + i) * 3 + a) * 3 + x] = c.backbone[i][a][x];
                    }
                }
                for j in 0..lc {
                    fb.bins[(n * l + i) * l + j] = bins[i * lc + j] as i64;
                    fb.pair_mask[(n * l + i) * l + j] = if pm[i * lc + j] { 1.0 } else { 0.0 };
                }
            }
        }
        fb
    }

    pub fn to_tensors<B: Backend>(&self, device: &B::Device) -> FoldTensors<B> {
        let (b, l) = (self.batch, self.len);
        FoldTensors {
            aatype: Tensor::from_data(TensorData::new(self.aatype.clone(), [b, l]), device),
            mask: Tensor::from_data(TensorData::new(self.mask.clone(), [b, l]), device),
            bins: Tensor::from_data(TensorData::new(self.bins.clone(), [b, l, l]), device),
            pair_mask: Tensor::from_data(TensorData::new(self.pair_mask.clone(), [b, l, l]), device),
            backbone: Tensor::from_data(TensorData::new(self.backbone.clone(), [b, l, 3, 3]), device),
            backbone_mask: Tensor::from_data(TensorData::new(self.backbone_mask.clone(), [b, l]), device),
        }
    }
}

/// The crop of `chain` used for training example `example` in epoch `epoch`: a uniformly drawn
/// window of at most `crop` residues; depends only on (seed, epoch, example).
pub fn training_crop(chain: &ProteinChain, crop: usize, seed: u64, epoch: usize, example: usize) -> ProteinChain {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (example as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    let u: f64 = rng.random();
    chain.slice(crop_start(chain.len(), crop, u), crop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(seq: &str) -> ProteinChain {
        let n = seq.len();
        ProteinChain {
            file: "f".into(),
            chain: "A".into(),
            sequence: seq.into(),
            observed: seq.chars().map(|c| c != 'X').collect(),
            pseudo_beta: (0..n).map(|i| [i as f32 * 3.0, 0.0, 0.0]).collect(),
            pseudo_beta_mask: seq.chars().map(|c| c != 'X').collect(),
            backbone: (0..n).map(|i| [[i as f32, 1.0, 0.0], [i as f32, 0.0, 0.0], [i as f32, 0.0, 1.0]]).collect(),
            backbone_mask: seq.chars().map(|c| c != 'X').collect(),
            gap_positions: 0,
            breaks: 0,
        }
    }

    #[test]
    fn batch_pads_and_masks() {
        let (a, b) = (chain("AXG"), chain("VW"));
        let fb = FoldBatch::new(&[&a, &b], 1);
        assert_eq!((fb.batch, fb.len), (2, 3));
        assert_eq!(fb.aatype, vec![0, 20, 7, 19, 17, 0]);
        assert_eq!(fb.mask, vec![1, 1, 1, 1, 1, 0]);
        // chain a: pairs with the gap position are masked; 0–2 is 6 Å → bin 12
        assert_eq!(fb.pair_mask[0..9], [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
        assert_eq!(fb.bins[2], 12);
        // chain b padded: row/column 2 masked
        assert_eq!(fb.pair_mask[9..18], [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(fb.backbone_mask, vec![1.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
        assert_eq!(fb.backbone[18..27], [2.0, 1.0, 0.0, 2.0, 0.0, 0.0, 2.0, 0.0, 1.0]);
        assert_eq!(fb.backbone[36..45], [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
        assert!(fb.backbone[45..54].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn crops_are_seeded_and_bounded() {
        let c = chain(&"A".repeat(50));
        let x = training_crop(&c, 16, 7, 3, 2);
        assert_eq!(x.len(), 16);
        assert_eq!(x, training_crop(&c, 16, 7, 3, 2));
        let starts: std::collections::BTreeSet<u32> = (0..20).map(|e| training_crop(&c, 16, 7, e, 2).pseudo_beta[0][0] as u32).collect();
        assert!(starts.len() > 5, "crops should vary across epochs: {starts:?}");
        assert_eq!(training_crop(&chain("AG"), 16, 1, 0, 0).len(), 2);
    }
}
