//! FacT (Jie & Deng 2023): all adapted d×d weights stacked as a T×d×d tensor (T = L·M, slice
//! t = layer·M + matrix), factorised with shared `U_in: [d, r]` (FacT's U, the input side) and
//! `U_out: [d, r]` (FacT's Vᵀ, zero-initialised, so the update starts at zero):
//! - FacT-TT: a free core Σ_t `[r, r]` per slice → 2dr + T·r² parameters;
//! - FacT-TK: a shared core C `[r, r, r]` mixed per slice by P `[T, r]` → 2dr + T·r + r³.
//!
//! In `[out, in]` form: ΔW_t = s·U_out·G_t·U_inᵀ.
//! Both are [`Tucker`] tensors (Tucker-2 for TT, full Tucker for TK).
//! File keys (our own, PEFT style): `base_model.model.fact.{u_in,u_out,core,p}`.
use crate::matmul::matmul;
use burn::module::{Module};
use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::shared::{
    check_rank, check_square, check_targets, default_targets, one, tucker2_delta, tucker2_dense,
};
use super::{Adapter, BuildAdapter, Method, MethodConfig};
use crate::decomp::Tucker;
use crate::init::Init;
use crate::io::TensorMap;
use crate::site::{ArchNaming, MatrixKind, ModelShape, Site};
use crate::Result;

macro_rules! fact_config {
    ($name:ident, $method:expr, $label:literal) => {
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            pub r: usize,
            /// FacT's scale s.
            #[serde(default = "one")]
            pub scale: f64,
            #[serde(default = "default_targets")]
            pub targets: Vec<MatrixKind>,
        }
        impl $name {
            pub fn new(r: usize, targets: Vec<MatrixKind>) -> Self {
                $name { r, scale: 1.0, targets }
            }
        }
        impl MethodConfig for $name {
            fn default_for(rank: usize, targets: &[MatrixKind]) -> Self {
                $name::new(rank, targets.to_vec())
            }
            fn method(&self) -> Method {
                $method
            }
            fn rank(&self) -> Option<usize> {
                Some(self.r)
            }
            fn targets(&self) -> &[MatrixKind] {
                &self.targets
            }
            fn validate(&self, shape: &ModelShape) -> Result<()> {
                check_rank(self.r)?;
                check_targets(&self.targets, &MatrixKind::GATED_ATTENTION, $label)?;
                check_square(shape, &self.targets, $label)
            }
        }
    };
}

fact_config!(FactTtConfig, Method::FactTt, "FacT-TT");
fact_config!(FactTkConfig, Method::FactTk, "FacT-TK");

fn slice_index(targets: &[MatrixKind], layers: usize, site: Site) -> Option<usize> {
    super::shared::site_index(targets, layers, site)
}

impl FactTtConfig {
    pub fn init<B: Backend>(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> FactTt<B> {
        let (d, r) = (shape.hidden, self.r);
        let t = shape.layers * self.targets.len();
        let tucker = Tucker::tucker2(
            t,
            d,
            d,
            r,
            r,
            [Init::kaiming_sqrt5(r), Init::Zeros, Init::kaiming_sqrt5(d)],
            rng,
            device,
        );
        FactTt { tucker, layers: shape.layers, config: (self.clone()) }
    }
}

impl FactTkConfig {
    pub fn init<B: Backend>(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> FactTk<B> {
        let (d, r) = (shape.hidden, self.r);
        let t = shape.layers * self.targets.len();
        let core = Init::kaiming_sqrt5(r).tensor::<B, 2>([1, r * r * r], rng, device);
        let p = Init::kaiming_sqrt5(r).tensor::<B, 2>([t, r], rng, device);
        let u_out = Init::Zeros.tensor::<B, 2>([d, r], rng, device);
        let u_in = Init::kaiming_sqrt5(d).tensor::<B, 2>([d, r], rng, device);
        let tucker = Tucker::from_parts(core, vec![r, r, r], vec![Some(p), Some(u_out), Some(u_in)])
            .expect("consistent shapes");
        FactTk { tucker, layers: shape.layers, config: (self.clone()) }
    }
}

/// FacT-TT: Tucker-2 over `[T, d_out, d_in]` with core `[T, r, r]`.
#[derive(Module, Debug)]
pub struct FactTt<B: Backend> {
    pub tucker: Tucker<B>,
    layers: usize,
    #[module(skip)]
    pub config: FactTtConfig,
}

/// FacT-TK: Tucker over `[T, d_out, d_in]` with core `[r, r, r]` and factors P, U_out, U_in.
#[derive(Module, Debug)]
pub struct FactTk<B: Backend> {
    pub tucker: Tucker<B>,
    layers: usize,
    #[module(skip)]
    pub config: FactTkConfig,
}

fn factor<B: Backend>(t: &Tucker<B>, m: usize) -> Tensor<B, 2> {
    t.factors[m].as_ref().expect("factored mode").val()
}

impl<B: Backend> FactTt<B> {
    fn parts(&self, site: Site) -> Option<(Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>)> {
        let t = slice_index(&self.config.targets, self.layers, site)?;
        let r = self.config.r;
        let n = self.tucker.core_dims()[0];
        let core = self.tucker.core.val().reshape([n, r, r]).narrow(0, t, 1).reshape([r, r]);
        Some((factor(&self.tucker, 1), core, factor(&self.tucker, 2)))
    }
}

impl<B: Backend> FactTk<B> {
    fn parts(&self, site: Site) -> Option<(Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>)> {
        let t = slice_index(&self.config.targets, self.layers, site)?;
        let r = self.config.r;
        // G_t = Σ_k P[t, k]·C[k]
        let p_t = factor(&self.tucker, 0).narrow(0, t, 1); // [1, r]
        let core = matmul(p_t, self.tucker.core.val().reshape([r, r * r])).reshape([r, r]);
        Some((factor(&self.tucker, 1), core, factor(&self.tucker, 2)))
    }
}

macro_rules! fact_adapter {
    ($ty:ident, $method:expr, $keys:expr) => {
        impl<B: Backend> Adapter<B> for $ty<B> {
            fn method(&self) -> Method {
                $method
            }
            fn targets(&self) -> &[MatrixKind] {
                &self.config.targets
            }
            fn delta(&self, site: Site, x: Tensor<B, 2>) -> Option<Tensor<B, 2>> {
                let (u_out, core, u_in) = self.parts(site)?;
                Some(tucker2_delta(x, u_out, core, u_in).mul_scalar(self.config.scale))
            }
            fn delta_weight(&self, site: Site) -> Option<Tensor<B, 2>> {
                let (u_out, core, u_in) = self.parts(site)?;
                Some(tucker2_dense(u_out, core, u_in).mul_scalar(self.config.scale))
            }
            fn save_tensors(&self, _naming: &ArchNaming) -> TensorMap {
                tucker_save(&self.tucker, $keys)
            }
            fn load_tensors(mut self, tensors: &mut TensorMap, _naming: &ArchNaming) -> Result<Self> {
                self.tucker = tucker_load(self.tucker, tensors, $keys)?;
                Ok(self)
            }
        }
    };
}

/// Key names: core, then one per mode (None = unfactored mode).
pub(crate) type TuckerKeys = (&'static str, [Option<&'static str>; 3]);

const FACT_TT_KEYS: TuckerKeys = ("base_model.model.fact.core", [None, Some("base_model.model.fact.u_out"), Some("base_model.model.fact.u_in")]);
const FACT_TK_KEYS: TuckerKeys = (
    "base_model.model.fact.core",
    [Some("base_model.model.fact.p"), Some("base_model.model.fact.u_out"), Some("base_model.model.fact.u_in")],
);

fact_adapter!(FactTt, Method::FactTt, FACT_TT_KEYS);
fact_adapter!(FactTk, Method::FactTk, FACT_TK_KEYS);

pub(crate) fn tucker_save<B: Backend>(t: &Tucker<B>, keys: TuckerKeys) -> TensorMap {
    let mut map = TensorMap::new("adapter_model.safetensors");
    let cd = t.core_dims();
    map.insert_tensor::<B, 3>(keys.0, t.core.val().reshape([cd[0], cd[1], cd[2]]));
    for (m, key) in keys.1.iter().enumerate() {
        if let (Some(k), Some(f)) = (key, &t.factors[m]) {
            map.insert_tensor(*k, f.val());
        }
    }
    map
}

pub(crate) fn tucker_load<B: Backend>(t: Tucker<B>, tensors: &mut TensorMap, keys: TuckerKeys) -> Result<Tucker<B>> {
    let cd = t.core_dims().to_vec();
    let dev = t.core.device();
    let core = tensors.take_tensor::<B, 3>(keys.0, [cd[0], cd[1], cd[2]], &dev)?;
    let mut factors = Vec::new();
    for (m, key) in keys.1.iter().enumerate() {
        factors.push(match (key, &t.factors[m]) {
            (Some(k), Some(f)) => Some(tensors.take_tensor::<B, 2>(k, f.dims(), &dev)?),
            _ => None,
        });
    }
    let n = cd.iter().product();
    Tucker::from_parts(core.reshape([1, n]), cd, factors)
}

impl<B: Backend> BuildAdapter<B> for FactTtConfig {
    type Set = FactTt<B>;
    fn build(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Result<FactTt<B>> {
        Ok(self.init(shape, rng, device))
    }
}

impl<B: Backend> BuildAdapter<B> for FactTkConfig {
    type Set = FactTk<B>;
    fn build(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Result<FactTk<B>> {
        Ok(self.init(shape, rng, device))
    }
}
