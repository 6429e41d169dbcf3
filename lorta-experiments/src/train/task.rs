//! What the task-agnostic loop ([`super::fit`]) needs from an experiment family: its batches, the
//! loss of a batch, and the metrics of an evaluation pass. Data, prompts and metrics stay in the
//! family's folder (`glue/`, `superglue/`, `protein/`, …); the loop knows nothing else.
use std::collections::BTreeMap;

use anyhow::Result;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

/// Metric name → value of one evaluation pass.
pub type Metrics = BTreeMap<String, f64>;

/// One experiment family's training task.
pub trait Task<B: AutodiffBackend> {
    /// The trained model; its `valid()` (inner-backend) form is evaluated.
    type Model: AutodiffModule<B>;

    /// Short name for logs and progress bars (`rte`, `copa`, `fold`, …).
    fn name(&self) -> String;

    /// The batches of epoch `epoch` as lists of training-example indices. Must depend only on
    /// `(seed, epoch)`: a resumed run recomputes the plan and continues where it stopped.
    fn epoch_plan(&self, seed: u64, epoch: usize) -> Vec<Vec<usize>>;

    /// Mean loss of one batch, on the autodiff backend (training mode).
    fn loss(&self, model: &Self::Model, batch: &[usize], device: &B::Device) -> Result<Tensor<B, 1>>;

    /// Metrics of one evaluation pass.
    fn evaluate(&self, model: &<Self::Model as AutodiffModule<B>>::InnerModule, device: &B::Device) -> Result<Metrics>;

    /// Key of the main metric in [`evaluate`](Self::evaluate)'s map, and whether higher is better
    /// (it selects the best evaluation).
    fn main_metric(&self) -> (String, bool);

    /// Parameters trained at the head learning rate (by module path); the rest use the adapter
    /// learning rate.
    fn is_head_param(&self, _path: &str) -> bool {
        false
    }
}
