//! The optimizer of a timed training step (`profile`, `fold --profile`): AdamW at a constant
//! learning rate of 1e-4 without weight decay, either `train`'s AdamW over flat buffers (all
//! parameters in a few operations per step, as PyTorch's multi-tensor AdamW) or burn's per-tensor
//! AdamW (for a model trained whole, where the flat buffers would add an f32 copy of every
//! weight; `LORTA_GROUPED_ADAMW=0` forces it for A/B runs).
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;

use crate::train::optim::{AdamW, GroupLr};

const LR: f64 = 1e-4;

pub enum StepOptimizer<B: AutodiffBackend, M: AutodiffModule<B>> {
    Grouped(AdamW<B::InnerBackend>),
    PerTensor(OptimizerAdaptor<burn::optim::AdamW, M, B>),
}

impl<B: AutodiffBackend, M: AutodiffModule<B>> StepOptimizer<B, M> {
    /// Flat buffers unless `per_tensor` or `LORTA_GROUPED_ADAMW=0`.
    pub fn new(per_tensor: bool) -> Self {
        let grouped = !per_tensor && std::env::var("LORTA_GROUPED_ADAMW").map_or(true, |v| v.trim() != "0");
        if grouped {
            StepOptimizer::Grouped(AdamW::new(crate::train::optim::AdamWConfig::default()))
        } else {
            StepOptimizer::PerTensor(AdamWConfig::new().with_weight_decay(0.0).init::<B, M>())
        }
    }

    pub fn step(&mut self, model: M, grads: GradientsParams) -> M {
        match self {
            StepOptimizer::Grouped(adamw) => adamw.step::<B, _, _>(model, grads, &|_: &str| GroupLr { lr: LR, weight_decay: 0.0 }, None).0,
            StepOptimizer::PerTensor(adamw) => adamw.step(LR, model, grads),
        }
    }
}
