//! VeRA (Kopiczko et al. 2024): ΔW = Λ_b·B·Λ_d·A with `A: [r, in]` and `B: [out, r]` frozen
//! random matrices shared by all layers (sliced to each matrix's size), and trainable
//! `λ_d: [r]` (init 0.1) and `λ_b: [out]` (init 0) per adapted matrix.
//! PEFT keys: `base_model.model.<module>.vera_lambda_{b,d}` and the shared projections
//! `base_model.vera_A`, `base_model.vera_B` (saved with `save_projection=True`).
use crate::matmul::matmul;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::shared::{check_rank, check_targets, default_targets, site_index};
use super::{Adapter, BuildAdapter, Method, MethodConfig};
use crate::init::Init;
use crate::io::TensorMap;
use crate::site::{ArchNaming, MatrixKind, ModelShape, Site};
use crate::Result;

fn d_initial() -> f64 {
    0.1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VeraConfig {
    pub r: usize,
    #[serde(default = "default_targets")]
    pub targets: Vec<MatrixKind>,
    /// Initial value of λ_d.
    #[serde(default = "d_initial")]
    pub d_initial: f64,
}

impl VeraConfig {
    pub fn new(r: usize, targets: Vec<MatrixKind>) -> Self {
        VeraConfig { r, targets, d_initial: d_initial() }
    }

    pub fn init<B: Backend>(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Vera<B> {
        let max_in = self.targets.iter().map(|&k| shape.dims(k).0).max().unwrap_or(0);
        let max_out = self.targets.iter().map(|&k| shape.dims(k).1).max().unwrap_or(0);
        let a = Init::kaiming_sqrt5(max_in).tensor::<B, 2>([self.r, max_in], rng, device);
        let b = Init::kaiming_sqrt5(self.r).tensor::<B, 2>([max_out, self.r], rng, device);
        let mut lambda_b = Vec::new();
        let mut lambda_d = Vec::new();
        for site in shape.sites(&self.targets) {
            let out = shape.dims(site.kind).1;
            lambda_b.push(Param::from_tensor(Init::Zeros.tensor::<B, 1>([out], rng, device)));
            lambda_d.push(Param::from_tensor(Init::Constant(self.d_initial).tensor::<B, 1>([self.r], rng, device)));
        }
        Vera {
            vera_a: a,
            vera_b: b,
            lambda_b,
            lambda_d,
            layers: shape.layers,
            dims: (self.targets.iter().map(|&k| shape.dims(k)).collect()),
            config: (self.clone()),
        }
    }
}

impl MethodConfig for VeraConfig {
    fn default_for(rank: usize, targets: &[MatrixKind]) -> Self {
        VeraConfig::new(rank, targets.to_vec())
    }
    fn method(&self) -> Method {
        Method::Vera
    }
    fn rank(&self) -> Option<usize> {
        Some(self.r)
    }
    fn targets(&self) -> &[MatrixKind] {
        &self.targets
    }
    fn validate(&self, _shape: &ModelShape) -> Result<()> {
        check_rank(self.r)?;
        check_targets(&self.targets, &MatrixKind::GATED_ATTENTION, "VeRA")
    }
}

#[derive(Module, Debug)]
pub struct Vera<B: Backend> {
    /// Frozen shared projection `[r, max in]` (a constant: no gradient, not counted).
    pub vera_a: Tensor<B, 2>,
    /// Frozen shared projection `[max out, r]`.
    pub vera_b: Tensor<B, 2>,
    pub lambda_b: Vec<Param<Tensor<B, 1>>>,
    pub lambda_d: Vec<Param<Tensor<B, 1>>>,
    layers: usize,
    /// (in, out) per target kind.
    #[module(skip)]
    dims: Vec<(usize, usize)>,
    #[module(skip)]
    pub config: VeraConfig,
}

impl<B: Backend> Vera<B> {
    fn index(&self, site: Site) -> Option<(usize, (usize, usize))> {
        let i = site_index(&self.config.targets, self.layers, site)?;
        Some((i, self.dims[i % self.config.targets.len()]))
    }
    fn a(&self, fan_in: usize) -> Tensor<B, 2> {
        self.vera_a.clone().narrow(1, 0, fan_in)
    }
    fn b(&self, fan_out: usize) -> Tensor<B, 2> {
        self.vera_b.clone().narrow(0, 0, fan_out)
    }
}

impl<B: Backend> Adapter<B> for Vera<B> {
    fn method(&self) -> Method {
        Method::Vera
    }
    fn targets(&self) -> &[MatrixKind] {
        &self.config.targets
    }
    fn delta(&self, site: Site, x: Tensor<B, 2>) -> Option<Tensor<B, 2>> {
        let (i, (fi, fo)) = self.index(site)?;
        let r = self.config.r;
        let z = matmul(x, self.a(fi).transpose()) * self.lambda_d[i].val().reshape([1, r]);
        Some(matmul(z, self.b(fo).transpose()) * self.lambda_b[i].val().reshape([1, fo]))
    }
    fn delta_weight(&self, site: Site) -> Option<Tensor<B, 2>> {
        let (i, (fi, fo)) = self.index(site)?;
        let r = self.config.r;
        let bd = self.b(fo) * self.lambda_d[i].val().reshape([1, r]);
        Some(matmul(bd, self.a(fi)) * self.lambda_b[i].val().reshape([fo, 1]))
    }
    fn save_tensors(&self, naming: &ArchNaming) -> TensorMap {
        let mut map = TensorMap::new("adapter_model.safetensors");
        map.insert_tensor("base_model.vera_A", self.vera_a.clone());
        map.insert_tensor("base_model.vera_B", self.vera_b.clone());
        for l in 0..self.layers {
            for &k in &self.config.targets {
                let site = Site::new(l, k);
                let (i, _) = self.index(site).expect("own site");
                let p = format!("base_model.model.{}", naming.module_path(site));
                map.insert_tensor(format!("{p}.vera_lambda_b"), self.lambda_b[i].val());
                map.insert_tensor(format!("{p}.vera_lambda_d"), self.lambda_d[i].val());
            }
        }
        map
    }
    fn load_tensors(mut self, tensors: &mut TensorMap, naming: &ArchNaming) -> Result<Self> {
        let dev = self.vera_a.device();
        self.vera_a = tensors.take_tensor::<B, 2>("base_model.vera_A", self.vera_a.dims(), &dev)?;
        self.vera_b = tensors.take_tensor::<B, 2>("base_model.vera_B", self.vera_b.dims(), &dev)?;
        for l in 0..self.layers {
            for k in self.config.targets.clone() {
                let site = Site::new(l, k);
                let (i, (_, fo)) = self.index(site).expect("own site");
                let p = format!("base_model.model.{}", naming.module_path(site));
                let r = self.config.r;
                self.lambda_b[i] = Param::from_tensor(tensors.take_tensor::<B, 1>(&format!("{p}.vera_lambda_b"), [fo], &dev)?);
                self.lambda_d[i] = Param::from_tensor(tensors.take_tensor::<B, 1>(&format!("{p}.vera_lambda_d"), [r], &dev)?);
            }
        }
        Ok(self)
    }
}

impl<B: Backend> BuildAdapter<B> for VeraConfig {
    type Set = Vera<B>;
    fn build(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Result<Vera<B>> {
        Ok(self.init(shape, rng, device))
    }
}
