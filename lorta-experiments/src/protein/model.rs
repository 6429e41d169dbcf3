//! lorta-models' ESMFold as the folding task's model: configs from a preset's sizes, the
//! [`Folder`] view and the methods' tunings.
use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Int, Tensor};
use lorta_core::{AdapterConfig, MatrixKind, Method};
use lorta_models::esm::EsmModel;
use lorta_models::esmfold::{EsmFold, EsmFoldConfig, FoldOptions};
use lorta_models::evoformer::{PairUpdate, TrunkConfig};
use lorta_models::load::LoadOptions;
use lorta_models::structure_module::StructureModuleConfig;
use lorta_models::tuning::{HeadTuning, Tuning};

use super::experiment::{FoldMethod, FoldModelSpec};
use super::task::{FoldPrediction, Folder};

/// The ESMFold config of a preset's sizes (`esm`: the language model's config, or none for the
/// learned residue embedding alone).
pub fn esmfold_config(spec: &FoldModelSpec, esm: Option<lorta_models::esm::EsmConfig>) -> EsmFoldConfig {
    let mut c = EsmFoldConfig::paper(false);
    c.esm = esm;
    c.trunk = TrunkConfig {
        num_blocks: spec.blocks,
        sequence_state_dim: spec.sequence_dim,
        pairwise_state_dim: spec.pair_dim,
        sequence_head_width: spec.sequence_head_width,
        pairwise_head_width: spec.pair_head_width,
        position_bins: spec.position_bins,
        pair_update: match spec.outer_product_mean {
            Some(dim) => PairUpdate::OuterProductMean { dim },
            None => PairUpdate::SequenceToPair,
        },
        ..TrunkConfig::paper()
    };
    if let Some(s) = &spec.structure {
        c.structure_module = StructureModuleConfig {
            sequence_dim: s.sequence_dim,
            pairwise_dim: s.pairwise_dim,
            ipa_dim: s.ipa_dim,
            resnet_dim: s.resnet_dim,
            num_heads_ipa: s.num_heads_ipa,
            num_qk_points: s.num_qk_points,
            num_v_points: s.num_v_points,
            num_blocks: s.num_blocks,
            ..StructureModuleConfig::default()
        };
    }
    c
}

/// The adapter of a method on every trunk attention projection (Q, K, V, O, gate); `None` for
/// full training.
pub fn adapter_of(m: &FoldMethod) -> Result<Option<AdapterConfig>> {
    let method = match m.method.as_str() {
        "lora" => Method::Lora,
        "lorta" => Method::Lorta,
        _ => return Ok(None),
    };
    let rank = m.rank.context("LoRA / LoRTA need a rank")?;
    Ok(Some(AdapterConfig::default_for(method, rank, &MatrixKind::GATED_ATTENTION)))
}

/// Adapters (or every trunk weight for `full`) plus the input embedding and distogram head.
pub fn tuning_of(m: &FoldMethod, seed: u64) -> Result<Tuning> {
    Ok(match adapter_of(m)? {
        Some(a) => Tuning { adapter: Some(a), head: HeadTuning::Full, seed, ..Default::default() },
        None => Tuning { full: true, head: HeadTuning::Full, seed, ..Default::default() },
    })
}

/// A fresh model with base weights drawn from `seed` (the same for every method) on `device`.
pub fn build_model<B: Backend>(config: &EsmFoldConfig, tuning: &Tuning, esm_dir: Option<&Path>, dtype: DType, seed: u64, device: &B::Device) -> Result<EsmFold<B>> {
    let esm = match esm_dir {
        Some(dir) => Some(
            // ESMFold keeps its language model frozen
            EsmModel::<B>::load(dir, &LoadOptions { tuning: Tuning::frozen(), dtype, ..Default::default() }, device)
                .with_context(|| format!("loading ESM-2 from {} (--esm)", dir.display()))?,
        ),
        None => None,
    };
    B::seed(device, seed);
    Ok(EsmFold::random(config, tuning, esm, dtype, device)?)
}

impl<B: Backend> Folder<B> for EsmFold<B> {
    fn fold(&self, aatype: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>, recycles: usize, structure: bool) -> FoldPrediction<B> {
        let out = self.forward(aatype, mask, FoldOptions { num_recycles: recycles, structure });
        // atom14 order starts N, CA, C for every residue type
        let backbone = out.structure.map(|s| {
            let [k, b, n, _, _] = s.positions.dims();
            s.positions.slice([0..k, 0..b, 0..n, 0..3, 0..3])
        });
        FoldPrediction { distogram_logits: out.distogram_logits, backbone }
    }
}

/// Parameters trained at the head learning rate: the input embedding, the ESM projection and the
/// distogram head.
pub const HEAD_PREFIXES: [&str; 3] = ["embedding", "esm_s_", "distogram_head"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protein::experiment::FoldPreset;
    use crate::protein::task::tests::fixture_task;
    use burn_ndarray::NdArray;

    /// Padding a batch to a multiple (what GPU backends do to bound the shapes they compile)
    /// must not change the loss or the metrics: every trunk, structure-module and loss term masks
    /// padded positions.
    #[test]
    fn padded_batches_give_the_same_loss_and_metrics() {
        type B = NdArray;
        let dev = Default::default();
        let preset = FoldPreset::get("smoke").unwrap();
        let config = esmfold_config(&preset.model, None);
        let m = &preset.methods[1];
        let model = build_model::<B>(&config, &tuning_of(m, 3).unwrap(), None, DType::F32, 3, &dev).unwrap();
        let run = |pad: usize, recycles: usize| {
            let mut task = fixture_task(20);
            task.config.pad_to_multiple = pad;
            task.config.fape_weight = 0.5;
            task.config.eval_structure = true;
            task.config.recycles = recycles;
            let batch = task.epoch_plan(0, 0)[0].clone();
            assert_eq!(task.batch(&batch, 0).len % pad, 0);
            let loss: f32 = task.loss(&model, &batch, 0, &dev).into_scalar();
            (loss as f64, task.evaluate(&model, &dev).unwrap())
        };
        for recycles in [0, 1] {
            let (l1, m1) = run(1, recycles);
            let (l16, m16) = run(16, recycles);
            assert!((l1 - l16).abs() <= 1e-4 * l1.abs(), "recycles {recycles}: loss {l1} unpadded vs {l16} padded");
            for (k, v) in &m1 {
                assert!((m16[k] - v).abs() <= 1e-4 * v.abs().max(1.0), "recycles {recycles}, {k}: {v} unpadded vs {} padded", m16[k]);
            }
        }
    }
}
