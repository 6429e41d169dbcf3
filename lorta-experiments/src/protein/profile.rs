//! `fold --profile`: the cost of one training step of the folding trunk per method (median wall
//! time of `steps` device-synchronised steps after `warmup` untimed ones, peak device memory),
//! on random weights and inputs of a fixed length. One step = trunk forward (+ structure module
//! when FAPE is on), distogram cross-entropy on random bins (+ FAPE), backward, AdamW on the
//! trainable parameters (the adapters only for LoRA / LoRTA; every weight for full) — the same
//! step `scripts/gpu_fold_reference.py` times in PyTorch + PEFT.
use std::time::Instant;

use anyhow::{bail, Result};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, Distribution, Int, Tensor};
use lorta_models::esmfold::{EsmFold, EsmFoldConfig};
use serde::{Deserialize, Serialize};

use super::experiment::FoldMethod;
use super::loss::{backbone_fape, distogram_loss};
use super::model::{build_model, tuning_of};
use super::task::Folder;
use crate::profile::timing::{time_steps, MemoryProbe, MemoryReader};
use crate::profile::step_optim::StepOptimizer;

#[derive(Clone, Debug)]
pub struct FoldProfileSpec {
    pub config: EsmFoldConfig,
    pub methods: Vec<FoldMethod>,
    pub length: usize,
    pub batch: usize,
    pub dtype: DType,
    pub steps: usize,
    pub warmup: usize,
    /// Run the structure module and add FAPE to the loss.
    pub structure: bool,
    pub backend: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldProfileRow {
    pub method: String,
    pub rank: Option<usize>,
    pub trainable_params: usize,
    pub ms_median: f64,
    pub ms_min: f64,
    pub ms_max: f64,
    pub steps: usize,
    pub warmup: usize,
    /// Host CPU milliseconds per timed step: the stepping thread, the whole process (see
    /// `profile::cpu`; `None` off Linux or in rows written before they were recorded).
    #[serde(default)]
    pub main_thread_cpu_ms_per_step: Option<f64>,
    #[serde(default)]
    pub process_cpu_ms_per_step: Option<f64>,
    pub peak_memory_bytes: Option<u64>,
    pub peak_reserved_bytes: Option<u64>,
    pub length: usize,
    pub batch: usize,
    pub blocks: usize,
    pub pair_update: String,
    pub structure: bool,
    pub dtype: String,
    pub backend: String,
}

/// Profiles every method of `spec`; `memory()` reads (bytes in use, bytes reserved) of the device.
pub fn profile_fold<B: AutodiffBackend>(
    spec: &FoldProfileSpec,
    device: &B::Device,
    memory: MemoryReader<'_>,
    report: &mut dyn FnMut(&FoldProfileRow),
) -> Result<Vec<FoldProfileRow>> {
    if spec.steps == 0 || spec.length < 2 || spec.batch == 0 {
        bail!("--profile needs --profile-steps ≥ 1, --length ≥ 2 and --batch-size ≥ 1");
    }
    let mut rows = Vec::new();
    for m in &spec.methods {
        let row = profile_one::<B>(spec, m, device, memory)?;
        report(&row);
        rows.push(row);
    }
    Ok(rows)
}

fn profile_one<B: AutodiffBackend>(spec: &FoldProfileSpec, m: &FoldMethod, device: &B::Device, memory: MemoryReader<'_>) -> Result<FoldProfileRow> {
    let label = m.label();
    let t_build = Instant::now();
    let mut tuning = tuning_of(m, 0)?;
    if !tuning.full {
        // adapters only, as the PEFT reference (its distogram head is frozen too)
        tuning.head = lorta_models::tuning::HeadTuning::Frozen;
    }
    let model: EsmFold<B> = build_model(&spec.config, &tuning, None, spec.dtype, 0, device)?;
    B::sync(device).map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"))?;
    eprintln!("[fold profile] {label}: model built in {:.1}s", t_build.elapsed().as_secs_f64());
    let trainable = model.trainable_params();
    // `full` trains every trunk weight: burn's per-tensor AdamW (no f32 copy of the trunk)
    let mut optim = StepOptimizer::<B, EsmFold<B>>::new(tuning.full);
    let (b, l) = (spec.batch, spec.length);
    B::seed(device, 1);
    let aatype = Tensor::<B, 2, Int>::random([b, l], Distribution::Uniform(0.0, 20.0), device);
    let mask = Tensor::<B, 2, Int>::ones([b, l], device);
    let bins = Tensor::<B, 3, Int>::random([b, l, l], Distribution::Uniform(0.0, 64.0), device);
    let pair_mask = Tensor::<B, 3>::ones([b, l, l], device);
    let true_backbone = Tensor::<B, 4>::random([b, l, 3, 3], Distribution::Normal(0.0, 10.0), device);
    let backbone_mask = Tensor::<B, 2>::ones([b, l], device);

    let step = |model: EsmFold<B>, probe: &mut MemoryProbe<'_, B>| {
        let p = model.fold(aatype.clone(), mask.clone(), 0, spec.structure);
        let mut loss = distogram_loss(p.distogram_logits, bins.clone(), pair_mask.clone());
        if let Some(bb) = p.backbone {
            loss = loss + backbone_fape(bb, true_backbone.clone(), backbone_mask.clone());
        }
        probe.sample();
        let grads = loss.backward();
        probe.sample();
        let grads = GradientsParams::from_grads(grads, &model);
        let model = optim.step(model, grads);
        probe.sample();
        model
    };
    let (model, times) = time_steps::<B, _>(device, memory, model, (spec.warmup, spec.steps), &format!("[fold profile] {label}"), step)?;
    drop(model.valid());
    let (lo, hi) = times.min_max_ms();
    let t = &spec.config.trunk;
    Ok(FoldProfileRow {
        method: m.method.clone(),
        rank: m.rank.filter(|_| m.method != "full"),
        trainable_params: trainable,
        ms_median: times.median_ms(),
        ms_min: lo,
        ms_max: hi,
        steps: spec.steps,
        warmup: spec.warmup,
        main_thread_cpu_ms_per_step: times.cpu_ms.0,
        process_cpu_ms_per_step: times.cpu_ms.1,
        peak_memory_bytes: times.device_peak.map(|p| p.0),
        peak_reserved_bytes: times.device_peak.map(|p| p.1),
        length: l,
        batch: b,
        blocks: t.num_blocks,
        pair_update: format!("{:?}", t.pair_update),
        structure: spec.structure,
        dtype: format!("{:?}", spec.dtype),
        backend: spec.backend.clone(),
    })
}
