//! IA3 (Liu et al. 2022): learned vectors (init 1) rescale the key and value outputs and the
//! input of the feed-forward down projection. Parameters L·(d_k + d_v + d_ff).
//! PEFT keys `base_model.model.<module>.ia3_l`, shape `[out, 1]` for K/V and `[1, in]` for the
//! feed-forward module (PEFT's `feedforward_modules`).
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::shared::{check_targets, site_index};
use super::{Adapter, BuildAdapter, Method, MethodConfig};
use crate::io::TensorMap;
use crate::site::{ArchNaming, MatrixKind, ModelShape, Site};
use crate::Result;

fn ia3_targets() -> Vec<MatrixKind> {
    vec![MatrixKind::Key, MatrixKind::Value, MatrixKind::FfnDown]
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ia3Config {
    #[serde(default = "ia3_targets")]
    pub targets: Vec<MatrixKind>,
}

impl Default for Ia3Config {
    fn default() -> Self {
        Ia3Config { targets: ia3_targets() }
    }
}

impl Ia3Config {
    /// Feed-forward sites scale their input; the others their output.
    fn scales_input(kind: MatrixKind) -> bool {
        kind == MatrixKind::FfnDown
    }
    fn width(shape: &ModelShape, kind: MatrixKind) -> usize {
        let (i, o) = shape.dims(kind);
        if Self::scales_input(kind) {
            i
        } else {
            o
        }
    }
    pub fn init<B: Backend>(&self, shape: &ModelShape, device: &B::Device) -> Ia3<B> {
        let scales = shape
            .sites(&self.targets)
            .into_iter()
            .map(|s| Param::from_tensor(Tensor::ones([Self::width(shape, s.kind)], device)))
            .collect();
        Ia3 { scales, layers: shape.layers, config: (self.clone()) }
    }
}

impl MethodConfig for Ia3Config {
    fn default_for(_rank: usize, _targets: &[MatrixKind]) -> Self {
        Ia3Config::default()
    }
    fn method(&self) -> Method {
        Method::Ia3
    }
    fn rank(&self) -> Option<usize> {
        None
    }
    fn targets(&self) -> &[MatrixKind] {
        &self.targets
    }
    fn validate(&self, _shape: &ModelShape) -> Result<()> {
        check_targets(
            &self.targets,
            &[MatrixKind::Query, MatrixKind::Key, MatrixKind::Value, MatrixKind::Output, MatrixKind::FfnDown, MatrixKind::Gate],
            "IA3",
        )
    }
}

#[derive(Module, Debug)]
pub struct Ia3<B: Backend> {
    pub scales: Vec<Param<Tensor<B, 1>>>,
    layers: usize,
    #[module(skip)]
    pub config: Ia3Config,
}

impl<B: Backend> Ia3<B> {
    fn scale(&self, site: Site) -> Option<Tensor<B, 1>> {
        site_index(&self.config.targets, self.layers, site).map(|i| self.scales[i].val())
    }
}

impl<B: Backend> Adapter<B> for Ia3<B> {
    fn method(&self) -> Method {
        Method::Ia3
    }
    fn targets(&self) -> &[MatrixKind] {
        &self.config.targets
    }
    fn delta(&self, _site: Site, _x: Tensor<B, 2>) -> Option<Tensor<B, 2>> {
        None
    }
    fn delta_weight(&self, _site: Site) -> Option<Tensor<B, 2>> {
        None
    }
    fn scale_input(&self, site: Site, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self.scale(site) {
            Some(l) if Ia3Config::scales_input(site.kind) => {
                let n = l.dims()[0];
                x * l.reshape([1, n])
            }
            _ => x,
        }
    }
    fn adapt_output(&self, site: Site, _x: Tensor<B, 2>, base: Tensor<B, 2>) -> Tensor<B, 2> {
        match self.scale(site) {
            Some(l) if !Ia3Config::scales_input(site.kind) => {
                let n = l.dims()[0];
                base * l.reshape([1, n])
            }
            _ => base,
        }
    }
    fn merge_weight(&self, site: Site, w: Tensor<B, 2>) -> Tensor<B, 2> {
        match self.scale(site) {
            Some(l) => {
                let n = l.dims()[0];
                if Ia3Config::scales_input(site.kind) {
                    w * l.reshape([1, n])
                } else {
                    w * l.reshape([n, 1])
                }
            }
            None => w,
        }
    }
    fn save_tensors(&self, naming: &ArchNaming) -> TensorMap {
        let mut map = TensorMap::new("adapter_model.safetensors");
        for l in 0..self.layers {
            for &k in &self.config.targets {
                let site = Site::new(l, k);
                let v = self.scale(site).expect("own site");
                let n = v.dims()[0];
                let shaped = if Ia3Config::scales_input(k) { v.reshape([1, n]) } else { v.reshape([n, 1]) };
                map.insert_tensor(format!("base_model.model.{}.ia3_l", naming.module_path(site)), shaped);
            }
        }
        map
    }
    fn load_tensors(mut self, tensors: &mut TensorMap, naming: &ArchNaming) -> Result<Self> {
        for l in 0..self.layers {
            for k in self.config.targets.clone() {
                let site = Site::new(l, k);
                let i = site_index(&self.config.targets, self.layers, site).expect("own site");
                let n = self.scales[i].dims()[0];
                let dev = self.scales[i].device();
                let key = format!("base_model.model.{}.ia3_l", naming.module_path(site));
                let shape = if Ia3Config::scales_input(k) { [1, n] } else { [n, 1] };
                let t = tensors.take_tensor::<B, 2>(&key, shape, &dev)?;
                self.scales[i] = Param::from_tensor(t.reshape([n]));
            }
        }
        Ok(self)
    }
}

impl<B: Backend> BuildAdapter<B> for Ia3Config {
    type Set = Ia3<B>;
    fn build(&self, shape: &ModelShape, _rng: &mut StdRng, device: &B::Device) -> Result<Ia3<B>> {
        Ok(self.init(shape, device))
    }
}
