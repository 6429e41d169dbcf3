//! The folding experiment as a training task: seeded cropped batches of training chains, the loss
//! (distogram cross-entropy + weighted backbone FAPE), and evaluation on the validation chains
//! (PSICOV-150): long-range P@L, P@L/5, distogram cross-entropy and lDDT-Cα.
//!
//! Example indices of [`FoldTask::epoch_plan`] encode the epoch (`epoch · n_train + chain`), so a
//! batch's crops depend only on (seed, epoch, chain) and a resumed run sees the same crops.
use std::collections::BTreeMap;

use anyhow::{bail, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::batch::{training_crop, FoldBatch};
use super::chain::ProteinChain;
use super::distogram::{targets, DISTOGRAM_BINS};
use super::loss::{backbone_fape, distogram_loss};
use super::metrics::{contact_precision, contact_probabilities, distogram_cross_entropy, lddt_ca};
use crate::train::task::{Metrics, Task};

/// What a folding model returns for the task.
pub struct FoldPrediction<B: Backend> {
    /// `[b, L, L, 64]`.
    pub distogram_logits: Tensor<B, 4>,
    /// Predicted N, CA, C of every structure-module iteration `[k, b, L, 3, 3]`, when the model
    /// has a structure module and it was asked for.
    pub backbone: Option<Tensor<B, 5>>,
}

/// A model the folding task can train and evaluate.
pub trait Folder<B: Backend> {
    /// Folds `aatype [b, L]` (AlphaFold indices) with `mask [b, L]` (1 = residue).
    fn fold(&self, aatype: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>, recycles: usize, structure: bool) -> FoldPrediction<B>;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldTaskConfig {
    /// Training crop length (residues).
    pub crop: usize,
    pub batch_size: usize,
    /// Recycling passes during training and evaluation (0 = one trunk pass).
    pub recycles: usize,
    /// Weight of the backbone FAPE term; 0 trains the distogram only (no structure module run).
    pub fape_weight: f64,
    /// Evaluate chains longer than this on their first `eval_max_len` residues (memory bound on
    /// small machines); `None` evaluates whole chains.
    pub eval_max_len: Option<usize>,
    /// Compute lDDT-Cα (runs the structure module at evaluation).
    pub eval_structure: bool,
    /// Pad batch lengths (training and evaluation) up to a multiple of this (16 on GPU backends).
    pub pad_to_multiple: usize,
}

pub struct FoldTask {
    pub train: Vec<ProteinChain>,
    pub val: Vec<ProteinChain>,
    pub config: FoldTaskConfig,
}

/// Mean of the `Some` values and how many there were.
fn mean(v: &[Option<f64>]) -> (f64, usize) {
    let xs: Vec<f64> = v.iter().flatten().copied().collect();
    if xs.is_empty() {
        (f64::NAN, 0)
    } else {
        (xs.iter().sum::<f64>() / xs.len() as f64, xs.len())
    }
}

impl FoldTask {
    pub fn new(train: Vec<ProteinChain>, val: Vec<ProteinChain>, config: FoldTaskConfig) -> Result<FoldTask> {
        if train.is_empty() {
            bail!("the training split has no usable chain");
        }
        if val.is_empty() {
            bail!("the validation split has no usable chain");
        }
        if config.crop < 2 || config.batch_size == 0 {
            bail!("--crop must be at least 2 and --batch-size at least 1");
        }
        Ok(FoldTask { train, val, config })
    }

    /// Shuffled batches of epoch `epoch` (last batch may be smaller); indices encode the epoch.
    pub fn epoch_plan(&self, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
        let n = self.train.len();
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (epoch as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
        order.shuffle(&mut rng);
        order.chunks(self.config.batch_size).map(|c| c.iter().map(|&i| epoch * n + i).collect()).collect()
    }

    /// The cropped chains of a batch of encoded indices.
    pub fn batch(&self, batch: &[usize], seed: u64) -> FoldBatch {
        let n = self.train.len();
        let crops: Vec<ProteinChain> =
            batch.iter().map(|&idx| training_crop(&self.train[idx % n], self.config.crop, seed, idx / n, idx % n)).collect();
        FoldBatch::new(&crops.iter().collect::<Vec<_>>(), self.config.pad_to_multiple)
    }

    /// Training loss of one batch: distogram CE + fape_weight · FAPE.
    pub fn loss<B: Backend, M: Folder<B>>(&self, model: &M, batch: &[usize], seed: u64, device: &B::Device) -> Tensor<B, 1> {
        let t = self.batch(batch, seed).to_tensors::<B>(device);
        let structure = self.config.fape_weight > 0.0;
        let p = model.fold(t.aatype, t.mask, self.config.recycles, structure);
        let mut loss = distogram_loss(p.distogram_logits, t.bins, t.pair_mask);
        if let (true, Some(bb)) = (structure, p.backbone) {
            loss = loss + backbone_fape(bb, t.backbone, t.backbone_mask).mul_scalar(self.config.fape_weight);
        }
        loss
    }

    /// Metrics on the validation chains, one chain per forward: `p_at_l`, `p_at_l5`,
    /// `distogram_ce` (means over chains), `lddt_ca` (when asked for and available), and the
    /// number of chains each mean covers (`n_*`).
    pub fn evaluate<B: Backend, M: Folder<B>>(&self, model: &M, device: &B::Device) -> Result<BTreeMap<String, f64>> {
        let (mut pl, mut pl5, mut ce, mut lddt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for chain in &self.val {
            let c = match self.config.eval_max_len {
                Some(m) if chain.len() > m => chain.slice(0, m),
                _ => chain.clone(),
            };
            let l = c.len();
            let t = FoldBatch::new(&[&c], self.config.pad_to_multiple).to_tensors::<B>(device);
            let p = model.fold(t.aatype, t.mask, self.config.recycles, self.config.eval_structure);
            let logits: Vec<f32> = p
                .distogram_logits
                .slice([0..1, 0..l, 0..l, 0..DISTOGRAM_BINS])
                .cast(burn::tensor::DType::F32)
                .into_data()
                .to_vec()
                .map_err(|e| anyhow::anyhow!("reading distogram logits of {} chain {}: {e:?}", c.file, c.chain))?;
            if logits.len() != l * l * DISTOGRAM_BINS {
                bail!("the model returned {} distogram values for a chain of {l} residues", logits.len());
            }
            if logits.iter().any(|x| !x.is_finite()) {
                bail!("non-finite distogram logits on {} chain {}", c.file, c.chain);
            }
            let (bins, mask) = targets(&c);
            ce.push(distogram_cross_entropy(&logits, &bins, &mask, l));
            let probs = contact_probabilities(&logits, l);
            pl.push(contact_precision(&probs, &c.pseudo_beta, &c.pseudo_beta_mask, 1));
            pl5.push(contact_precision(&probs, &c.pseudo_beta, &c.pseudo_beta_mask, 5));
            if let (true, Some(bb)) = (self.config.eval_structure, p.backbone) {
                let [k, _, _, _, _] = bb.dims();
                let last: Vec<f32> = bb
                    .slice([k - 1..k, 0..1, 0..l, 1..2, 0..3])
                    .cast(burn::tensor::DType::F32)
                    .into_data()
                    .to_vec()
                    .map_err(|e| anyhow::anyhow!("reading predicted positions: {e:?}"))?;
                let pred: Vec<[f32; 3]> = last.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
                let truth: Vec<[f32; 3]> = c.backbone.iter().map(|b| b[1]).collect();
                lddt.push(lddt_ca(&pred, &truth, &c.observed));
            }
        }
        let mut m = BTreeMap::new();
        for (name, v) in [("p_at_l", &pl), ("p_at_l5", &pl5), ("distogram_ce", &ce), ("lddt_ca", &lddt)] {
            let (x, n) = mean(v);
            if n > 0 {
                m.insert(name.to_string(), x);
            }
            m.insert(format!("n_{name}"), n as f64);
        }
        Ok(m)
    }

    /// Main metric and whether higher is better.
    pub fn main_metric() -> (String, bool) {
        ("p_at_l".to_string(), true)
    }
}

/// [`FoldTask`] with the run's seed (for the crops), as the shared loop's [`Task`] for any
/// folding model `M` (lorta-models' ESMFold in the `fold` command).
pub struct FoldTrainTask<M> {
    pub task: FoldTask,
    pub seed: u64,
    /// Parameter-path prefixes trained at the head learning rate.
    pub head_prefixes: Vec<String>,
    pub _model: std::marker::PhantomData<fn() -> M>,
}

impl<M> FoldTrainTask<M> {
    pub fn new(task: FoldTask, seed: u64, head_prefixes: &[&str]) -> Self {
        FoldTrainTask { task, seed, head_prefixes: head_prefixes.iter().map(|s| s.to_string()).collect(), _model: std::marker::PhantomData }
    }
}

impl<B, M> Task<B> for FoldTrainTask<M>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Folder<B>,
    M::InnerModule: Folder<B::InnerBackend>,
{
    type Model = M;

    fn name(&self) -> String {
        "fold".into()
    }
    fn epoch_plan(&self, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
        self.task.epoch_plan(seed, epoch)
    }
    fn loss(&self, model: &M, batch: &[usize], device: &B::Device) -> Result<Tensor<B, 1>> {
        Ok(self.task.loss(model, batch, self.seed, device))
    }
    fn evaluate(&self, model: &M::InnerModule, device: &B::Device) -> Result<Metrics> {
        self.task.evaluate(model, device)
    }
    fn main_metric(&self) -> (String, bool) {
        FoldTask::main_metric()
    }
    fn is_head_param(&self, path: &str) -> bool {
        self.head_prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::backend::NdArray;
    use crate::protein::dataset::{load_split, LoadOptions};
    use burn::module::{Module, Param};
    use burn::tensor::module::embedding;

    /// A tiny test-only folder: logits[i, j] = e[a_i] + e[a_j] + p[min(|i − j|, 31)].
    #[derive(Module, Debug)]
    pub struct PairProbe<B: Backend> {
        pub residue: Param<Tensor<B, 2>>,
        pub separation: Param<Tensor<B, 2>>,
    }

    impl<B: Backend> PairProbe<B> {
        pub fn new(device: &B::Device) -> Self {
            PairProbe {
                residue: Param::from_tensor(Tensor::zeros([21, DISTOGRAM_BINS], device)),
                separation: Param::from_tensor(Tensor::zeros([32, DISTOGRAM_BINS], device)),
            }
        }
    }

    impl<B: Backend> Folder<B> for PairProbe<B> {
        fn fold(&self, aatype: Tensor<B, 2, Int>, _mask: Tensor<B, 2, Int>, _r: usize, _s: bool) -> FoldPrediction<B> {
            let [b, l] = aatype.dims();
            let e = embedding(self.residue.val(), aatype); // [b, L, 64]
            let pair = e.clone().reshape([b, l, 1, DISTOGRAM_BINS]) + e.reshape([b, 1, l, DISTOGRAM_BINS]);
            let idx = Tensor::<B, 1, Int>::arange(0..l as i64, &pair.device());
            let sep = (idx.clone().reshape([1, l]) - idx.reshape([l, 1])).abs().clamp_max(31);
            let s = embedding(self.separation.val(), sep).reshape([1, l, l, DISTOGRAM_BINS]);
            FoldPrediction { distogram_logits: pair + s, backbone: None }
        }
    }

    pub fn fixture_task(crop: usize) -> FoldTask {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proteins/data");
        let (train, _) = load_split(&dir, "train", &LoadOptions::default()).unwrap();
        let (val, _) = load_split(&dir, "val_psicov150", &LoadOptions::default()).unwrap();
        let config = FoldTaskConfig { crop, batch_size: 2, recycles: 0, fape_weight: 0.0, eval_max_len: None, eval_structure: false, pad_to_multiple: 1 };
        FoldTask::new(train, val, config).unwrap()
    }

    #[test]
    fn epoch_plans_cover_every_chain_and_encode_the_epoch() {
        let task = fixture_task(16);
        let p0 = task.epoch_plan(1, 0);
        let p1 = task.epoch_plan(1, 1);
        let mut all: Vec<usize> = p0.concat();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3]);
        assert!(p1.concat().iter().all(|&i| (4..8).contains(&i)));
        assert_eq!(p0, task.epoch_plan(1, 0));
        let b = task.batch(&p1[0], 1);
        assert_eq!((b.batch, b.len), (2, 16));
        assert_eq!(b, task.batch(&p1[0], 1));
    }

    #[test]
    fn untrained_probe_scores_uniform_logits_and_loss_is_ln_64() {
        type B = NdArray;
        let dev = Default::default();
        let task = fixture_task(16);
        let model = PairProbe::<B>::new(&dev);
        let loss: f32 = task.loss(&model, &task.epoch_plan(0, 0)[0], 0, &dev).into_scalar();
        assert!((loss as f64 - (64f64).ln()).abs() < 1e-4, "{loss}");
        let m = task.evaluate(&model, &dev).unwrap();
        assert!((m["distogram_ce"] - (64f64).ln()).abs() < 1e-4, "{m:?}");
        assert_eq!(m["n_p_at_l"], 3.0);
        assert!(m["p_at_l"] >= 0.0 && m["p_at_l"] <= 1.0);
        assert!(!m.contains_key("lddt_ca"));
    }

    #[test]
    fn probe_trains_with_the_shared_loop_and_resumes_exactly() {
        use crate::train::fit::{fit, FitConfig, RunOptions};
        type AB = burn_autodiff::Autodiff<NdArray>;
        let dev = Default::default();
        let cfg = FitConfig {
            label: "probe".into(),
            epochs: 1,
            max_steps: Some(8),
            lr: 0.05,
            head_lr: 0.05,
            weight_decay: 0.0,
            warmup_ratio: 0.0,
            lr_scheduler: Default::default(),
            max_grad_norm: Some(1.0),
            seed: 5,
            eval_every: Some(4),
        };
        let run = |dir: &std::path::Path, opts: &RunOptions| {
            let task = FoldTrainTask::<PairProbe<AB>>::new(fixture_task(24), 5, &[]);
            fit(&task, PairProbe::<AB>::new(&dev), &cfg, &serde_json::json!({"probe": 1}), dir, opts, &dev).unwrap()
        };
        let tmp = tempfile::tempdir().unwrap();
        let quiet = RunOptions { quiet: true, ..Default::default() };
        let full = run(&tmp.path().join("full"), &quiet);
        assert_eq!(full.log.len(), 2);
        let (first, last) = (full.log[0].train_loss, full.log[1].train_loss);
        assert!(last < first && first < (64f64).ln(), "training loss should fall: {first} → {last}");
        assert!(full.log[1].metrics["distogram_ce"] < (64f64).ln());
        let part = tmp.path().join("part");
        assert!(!run(&part, &RunOptions { stop_after: Some(3), save_every: Some(1), ..quiet.clone() }).finished);
        let resumed = run(&part, &RunOptions { resume: true, ..quiet });
        // Same steps; losses and metrics equal to float rounding: on ndarray the resumed run is
        // not bit-identical here (relative differences ~1e-7 from the first resumed step on).
        assert_eq!(resumed.log.len(), full.log.len());
        for (a, b) in resumed.log.iter().zip(&full.log) {
            assert_eq!(a.step, b.step);
            assert!((a.train_loss - b.train_loss).abs() <= 1e-5 * b.train_loss.abs(), "{} vs {}", a.train_loss, b.train_loss);
            for (k, v) in &b.metrics {
                assert!((a.metrics[k] - v).abs() <= 1e-5 * v.abs().max(1.0), "{k}: {} vs {v}", a.metrics[k]);
            }
        }
    }
}
