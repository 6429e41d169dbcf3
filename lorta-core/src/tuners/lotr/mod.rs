//! LoTR (Bershatsky et al. 2024), a Tucker-2 update: ΔW_i = s·L·G_i·Rᵀ with `L, R: [d, r]`
//! shared by all adapted matrices and a core `G_i: [r, r]` per matrix (zero-initialised).
//! Parameters 2dr + T·r². File keys `base_model.model.lotr.{core,left,right}`.
use burn::module::{Module};
use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::fact::{tucker_load, tucker_save, TuckerKeys};
use super::shared::{check_rank, check_square, check_targets, default_targets, one, site_index, tucker2_delta, tucker2_dense};
use super::{Adapter, BuildAdapter, Method, MethodConfig};
use crate::decomp::Tucker;
use crate::init::Init;
use crate::io::TensorMap;
use crate::site::{ArchNaming, MatrixKind, ModelShape, Site};
use crate::Result;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LotrConfig {
    pub r: usize,
    #[serde(default = "one")]
    pub scale: f64,
    #[serde(default = "default_targets")]
    pub targets: Vec<MatrixKind>,
}

impl LotrConfig {
    pub fn new(r: usize, targets: Vec<MatrixKind>) -> Self {
        LotrConfig { r, scale: 1.0, targets }
    }
    pub fn init<B: Backend>(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Lotr<B> {
        let (d, r) = (shape.hidden, self.r);
        let t = shape.layers * self.targets.len();
        let tucker = Tucker::tucker2(
            t,
            d,
            d,
            r,
            r,
            [Init::Zeros, Init::kaiming_sqrt5(d), Init::kaiming_sqrt5(d)],
            rng,
            device,
        );
        Lotr { tucker, layers: shape.layers, config: (self.clone()) }
    }
}

impl MethodConfig for LotrConfig {
    fn default_for(rank: usize, targets: &[MatrixKind]) -> Self {
        LotrConfig::new(rank, targets.to_vec())
    }
    fn method(&self) -> Method {
        Method::Lotr
    }
    fn rank(&self) -> Option<usize> {
        Some(self.r)
    }
    fn targets(&self) -> &[MatrixKind] {
        &self.targets
    }
    fn validate(&self, shape: &ModelShape) -> Result<()> {
        check_rank(self.r)?;
        check_targets(&self.targets, &MatrixKind::GATED_ATTENTION, "LoTR")?;
        check_square(shape, &self.targets, "LoTR")
    }
}

#[derive(Module, Debug)]
pub struct Lotr<B: Backend> {
    /// Tucker-2 over `[T, d_out, d_in]`: core G `[T, r, r]`, factors L (out) and R (in).
    pub tucker: Tucker<B>,
    layers: usize,
    #[module(skip)]
    pub config: LotrConfig,
}

const LOTR_KEYS: TuckerKeys =
    ("base_model.model.lotr.core", [None, Some("base_model.model.lotr.left"), Some("base_model.model.lotr.right")]);

impl<B: Backend> Lotr<B> {
    fn parts(&self, site: Site) -> Option<(Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>)> {
        let t = site_index(&self.config.targets, self.layers, site)?;
        let r = self.config.r;
        let n = self.tucker.core_dims()[0];
        let core = self.tucker.core.val().reshape([n, r, r]).narrow(0, t, 1).reshape([r, r]);
        let f = |m: usize| self.tucker.factors[m].as_ref().expect("factored").val();
        Some((f(1), core, f(2)))
    }
}

impl<B: Backend> Adapter<B> for Lotr<B> {
    fn method(&self) -> Method {
        Method::Lotr
    }
    fn targets(&self) -> &[MatrixKind] {
        &self.config.targets
    }
    fn delta(&self, site: Site, x: Tensor<B, 2>) -> Option<Tensor<B, 2>> {
        let (l, g, r) = self.parts(site)?;
        Some(tucker2_delta(x, l, g, r).mul_scalar(self.config.scale))
    }
    fn delta_weight(&self, site: Site) -> Option<Tensor<B, 2>> {
        let (l, g, r) = self.parts(site)?;
        Some(tucker2_dense(l, g, r).mul_scalar(self.config.scale))
    }
    fn save_tensors(&self, _naming: &ArchNaming) -> TensorMap {
        tucker_save(&self.tucker, LOTR_KEYS)
    }
    fn load_tensors(mut self, tensors: &mut TensorMap, _naming: &ArchNaming) -> Result<Self> {
        self.tucker = tucker_load(self.tucker, tensors, LOTR_KEYS)?;
        Ok(self)
    }
}

impl<B: Backend> BuildAdapter<B> for LotrConfig {
    type Set = Lotr<B>;
    fn build(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Result<Lotr<B>> {
        Ok(self.init(shape, rng, device))
    }
}
