//! LoRA (Hu et al. 2021): ΔW = (α/r)·B·A per adapted matrix, `A: [r, in]` kaiming-uniform
//! (a = √5), `B: [out, r]` zero. PEFT keys `base_model.model.<module>.lora_{A,B}.weight`.
use crate::matmul::matmul;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::shared::{check_rank, check_targets, default_alpha, default_targets, scaling, site_index};
use super::{Adapter, BuildAdapter, Method, MethodConfig};
use crate::init::Init;
use crate::io::TensorMap;
use crate::site::{ArchNaming, MatrixKind, ModelShape, Site};
use crate::Result;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub r: usize,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default = "default_targets")]
    pub targets: Vec<MatrixKind>,
}

impl LoraConfig {
    pub fn new(r: usize, targets: Vec<MatrixKind>) -> Self {
        LoraConfig { r, alpha: r as f64, use_rslora: false, targets }
    }
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }
    pub fn scaling(&self) -> f64 {
        scaling(self.alpha, self.r, self.use_rslora)
    }

    pub fn init<B: Backend>(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Lora<B> {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for site in shape.sites(&self.targets) {
            let (fan_in, fan_out) = shape.dims(site.kind);
            a.push(Param::from_tensor(Init::kaiming_sqrt5(fan_in).tensor::<B, 2>([self.r, fan_in], rng, device)));
            b.push(Param::from_tensor(Init::Zeros.tensor::<B, 2>([fan_out, self.r], rng, device)));
        }
        Lora { a, b, layers: shape.layers, config: (self.clone()) }
    }
}

impl MethodConfig for LoraConfig {
    fn default_for(rank: usize, targets: &[MatrixKind]) -> Self {
        LoraConfig::new(rank, targets.to_vec())
    }
    fn method(&self) -> Method {
        Method::Lora
    }
    fn rank(&self) -> Option<usize> {
        Some(self.r)
    }
    fn targets(&self) -> &[MatrixKind] {
        &self.targets
    }
    fn validate(&self, _shape: &ModelShape) -> Result<()> {
        check_rank(self.r)?;
        check_targets(&self.targets, &MatrixKind::GATED_ATTENTION, "LoRA")
    }
}

#[derive(Module, Debug)]
pub struct Lora<B: Backend> {
    /// Per site (layer-major), `[r, in]`.
    pub a: Vec<Param<Tensor<B, 2>>>,
    /// Per site, `[out, r]`.
    pub b: Vec<Param<Tensor<B, 2>>>,
    layers: usize,
    #[module(skip)]
    pub config: LoraConfig,
}

impl<B: Backend> Lora<B> {
    fn index(&self, site: Site) -> Option<usize> {
        site_index(&self.config.targets, self.layers, site)
    }
}

impl<B: Backend> Adapter<B> for Lora<B> {
    fn method(&self) -> Method {
        Method::Lora
    }
    fn targets(&self) -> &[MatrixKind] {
        &self.config.targets
    }
    fn delta(&self, site: Site, x: Tensor<B, 2>) -> Option<Tensor<B, 2>> {
        let i = self.index(site)?;
        let s = self.config.scaling();
        Some(matmul(matmul(x, self.a[i].val().transpose()), self.b[i].val().transpose()).mul_scalar(s))
    }
    fn delta_weight(&self, site: Site) -> Option<Tensor<B, 2>> {
        let i = self.index(site)?;
        Some(matmul(self.b[i].val(), self.a[i].val()).mul_scalar(self.config.scaling()))
    }
    fn save_tensors(&self, naming: &ArchNaming) -> TensorMap {
        let mut map = TensorMap::new("adapter_model.safetensors");
        for l in 0..self.layers {
            for &k in &self.config.targets {
                let site = Site::new(l, k);
                let i = self.index(site).expect("own site");
                let p = format!("base_model.model.{}", naming.module_path(site));
                map.insert_tensor(format!("{p}.lora_A.weight"), self.a[i].val());
                map.insert_tensor(format!("{p}.lora_B.weight"), self.b[i].val());
            }
        }
        map
    }
    fn load_tensors(mut self, tensors: &mut TensorMap, naming: &ArchNaming) -> Result<Self> {
        for l in 0..self.layers {
            for k in self.config.targets.clone() {
                let site = Site::new(l, k);
                let i = self.index(site).expect("own site");
                let p = format!("base_model.model.{}", naming.module_path(site));
                let dev = self.a[i].device();
                let a = tensors.take_tensor::<B, 2>(&format!("{p}.lora_A.weight"), self.a[i].dims(), &dev)?;
                let b = tensors.take_tensor::<B, 2>(&format!("{p}.lora_B.weight"), self.b[i].dims(), &dev)?;
                self.a[i] = Param::from_tensor(a);
                self.b[i] = Param::from_tensor(b);
            }
        }
        Ok(self)
    }
}

impl<B: Backend> BuildAdapter<B> for LoraConfig {
    type Set = Lora<B>;
    fn build(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Result<Lora<B>> {
        Ok(self.init(shape, rng, device))
    }
}
