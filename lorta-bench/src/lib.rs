//! Shared workloads for the criterion benches (and the `profile` command's adapter part).
use burn::tensor::{backend::AutodiffBackend, backend::Backend, Distribution, Tensor};
use lorta_core::tuners::{AdapterConfig, AdapterSet, LortaConfig};
use lorta_core::{MatrixKind, ModelShape};

/// How an adapted layer stack computes its update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The method's own forward (rank space for LoRTA).
    Native,
    /// LoRTA with ΔW rebuilt densely on every step, as in the paper's PEFT code.
    LortaDenseRebuild,
}

/// A stack of `layers` frozen Q, K, V, O projections with an adapter set.
pub struct LayerStack<B: Backend> {
    pub shape: ModelShape,
    pub weights: Vec<Tensor<B, 2>>,
    pub adapter: AdapterSet<B>,
    pub path: Path,
}

impl<B: Backend> LayerStack<B> {
    pub fn new(shape: ModelShape, config: &AdapterConfig, path: Path, device: &B::Device) -> Self {
        let weights = shape
            .sites(&MatrixKind::ATTENTION)
            .iter()
            .map(|s| {
                let (i, o) = shape.dims(s.kind);
                Tensor::random([o, i], Distribution::Normal(0.0, 0.02), device)
            })
            .collect();
        let adapter = config.init::<B>(&shape, 0, device).expect("valid bench config");
        LayerStack { shape, weights, adapter, path }
    }

    /// Applies every adapted projection in turn (a residual chain, so each layer's input depends
    /// on the previous one and nothing can be skipped).
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut h = x;
        // shared factors are combined once per forward, as the models do
        let step = self.adapter.step();
        for (site, w) in self.shape.sites(&MatrixKind::ATTENTION).into_iter().zip(&self.weights) {
            let base = h.clone().matmul(w.clone().transpose());
            let y = match (self.path, &self.adapter) {
                (Path::LortaDenseRebuild, AdapterSet::Lorta(l)) => {
                    let dw = l.delta_weight_paper_style(site).expect("paper layout");
                    base + h.clone().matmul(dw.transpose())
                }
                _ => step.adapt_output(site, h.clone(), base),
            };
            h = h + y.mul_scalar(0.1);
        }
        h
    }
}

/// One training step's worth of work: forward, loss, backward (gradients of adapter params).
pub fn forward_backward<B: AutodiffBackend>(stack: &LayerStack<B>, x: Tensor<B, 2>) -> B::Gradients {
    stack.forward(x).powf_scalar(2.0).mean().backward()
}

pub fn lorta(r: usize) -> AdapterConfig {
    AdapterConfig::Lorta(LortaConfig::new(r, MatrixKind::ATTENTION.to_vec()))
}


