//! LoReTTA_rep (Yang et al. 2024): a LoRA whose A (`in → r`) and B (`r → out`) are each a
//! tensor train. The input dimension is reshaped into `factors` modes (768 → [8, 8, 12]); A is
//! a TT over `[8, 8, 12, r]`, B a TT over `[r, 8, 8, 12]`, internal TT rank `tt_rank` (default 5).
//! Update Δy = s·B(A(x)), s = α/r; B's first core is zero so the update starts at zero.
//! File keys `base_model.model.<module>.loretta_{A,B}.cores.{k}`.
use crate::matmul::matmul;
use burn::module::{Module};
use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::shared::{check_rank, check_targets, default_alpha, default_targets, scaling, site_index};
use super::{Adapter, BuildAdapter, Method, MethodConfig};
use crate::decomp::TtTensor;
use crate::init::Init;
use crate::io::TensorMap;
use crate::site::{ArchNaming, MatrixKind, ModelShape, Site};
use crate::{CoreError, Result};

fn default_tt_rank() -> usize {
    5
}
fn default_modes() -> usize {
    3
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LorettaRepConfig {
    pub r: usize,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default = "default_tt_rank")]
    pub tt_rank: usize,
    /// Number of modes the feature dimensions are reshaped into.
    #[serde(default = "default_modes")]
    pub modes: usize,
    #[serde(default = "default_targets")]
    pub targets: Vec<MatrixKind>,
}

/// Splits `n` into `k` factors as equal as possible (768, 3 → [8, 8, 12]).
pub fn balanced_factors(n: usize, k: usize) -> Vec<usize> {
    let mut primes = Vec::new();
    let mut m = n;
    let mut p = 2;
    while p * p <= m {
        while m % p == 0 {
            primes.push(p);
            m /= p;
        }
        p += 1;
    }
    if m > 1 {
        primes.push(m);
    }
    primes.sort_unstable_by(|a, b| b.cmp(a));
    let mut bins = vec![1usize; k.max(1)];
    for p in primes {
        let i = (0..bins.len()).min_by_key(|&i| bins[i]).expect("non-empty");
        bins[i] *= p;
    }
    bins.sort_unstable();
    bins
}

/// Per-core initialisers giving entries of the full tensor a standard deviation ≈ `std`.
fn tt_inits(dims: &[usize], tt_rank: usize, std: f64) -> Vec<Init> {
    let n = dims.len();
    (0..n)
        .map(|k| if k + 1 == n { Init::Normal { std } } else { Init::Normal { std: 1.0 / (tt_rank as f64).sqrt() } })
        .collect()
}

impl LorettaRepConfig {
    pub fn new(r: usize, targets: Vec<MatrixKind>) -> Self {
        LorettaRepConfig { r, alpha: r as f64, tt_rank: 5, modes: 3, targets }
    }
    pub fn scaling(&self) -> f64 {
        scaling(self.alpha, self.r, false)
    }
    fn a_dims(&self, fan_in: usize) -> Vec<usize> {
        let mut d = balanced_factors(fan_in, self.modes);
        d.push(self.r);
        d
    }
    fn b_dims(&self, fan_out: usize) -> Vec<usize> {
        let mut d = vec![self.r];
        d.extend(balanced_factors(fan_out, self.modes));
        d
    }

    pub fn init<B: Backend>(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Result<LorettaRep<B>> {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for site in shape.sites(&self.targets) {
            let (fi, fo) = shape.dims(site.kind);
            let ad = self.a_dims(fi);
            let ranks_a = vec![self.tt_rank; ad.len() - 1];
            a.push(TtTensor::init(&ad, &ranks_a, &tt_inits(&ad, self.tt_rank, 1.0 / (fi as f64).sqrt()), rng, device));
            let bd = self.b_dims(fo);
            let ranks_b = vec![self.tt_rank; bd.len() - 1];
            let mut inits = tt_inits(&bd, self.tt_rank, 1.0);
            inits[0] = Init::Zeros;
            b.push(TtTensor::init(&bd, &ranks_b, &inits, rng, device));
        }
        Ok(LorettaRep { a, b, layers: shape.layers, config: (self.clone()) })
    }
}

impl MethodConfig for LorettaRepConfig {
    fn default_for(rank: usize, targets: &[MatrixKind]) -> Self {
        LorettaRepConfig::new(rank, targets.to_vec())
    }
    fn method(&self) -> Method {
        Method::LorettaRep
    }
    fn rank(&self) -> Option<usize> {
        Some(self.r)
    }
    fn targets(&self) -> &[MatrixKind] {
        &self.targets
    }
    fn validate(&self, _shape: &ModelShape) -> Result<()> {
        check_rank(self.r)?;
        if self.tt_rank == 0 || self.modes == 0 {
            return Err(CoreError::config("LoReTTA: tt_rank and modes must be at least 1"));
        }
        check_targets(&self.targets, &MatrixKind::GATED_ATTENTION, "LoReTTA_rep")
    }
}

#[derive(Module, Debug)]
pub struct LorettaRep<B: Backend> {
    /// Per site: TT over `[in factors…, r]`.
    pub a: Vec<TtTensor<B>>,
    /// Per site: TT over `[r, out factors…]`.
    pub b: Vec<TtTensor<B>>,
    layers: usize,
    #[module(skip)]
    pub config: LorettaRepConfig,
}

impl<B: Backend> LorettaRep<B> {
    fn index(&self, site: Site) -> Option<usize> {
        site_index(&self.config.targets, self.layers, site)
    }
}

impl<B: Backend> Adapter<B> for LorettaRep<B> {
    fn method(&self) -> Method {
        Method::LorettaRep
    }
    fn targets(&self) -> &[MatrixKind] {
        &self.config.targets
    }
    fn delta(&self, site: Site, x: Tensor<B, 2>) -> Option<Tensor<B, 2>> {
        let i = self.index(site)?;
        let na = self.a[i].dims().len();
        let in_modes: Vec<usize> = (0..na - 1).collect();
        let z = self.a[i].contract(x, &in_modes).expect("input width checked by layout");
        let y = self.b[i].contract(z, &[0]).expect("rank mode");
        Some(y.mul_scalar(self.config.scaling()))
    }
    fn delta_weight(&self, site: Site) -> Option<Tensor<B, 2>> {
        let i = self.index(site)?;
        let r = self.config.r;
        let fi: usize = self.a[i].dims()[..self.a[i].dims().len() - 1].iter().product();
        let fo: usize = self.b[i].dims()[1..].iter().product();
        let a = self.a[i].reconstruct().reshape([fi, r]);
        let b = self.b[i].reconstruct().reshape([r, fo]);
        Some(matmul(a, b).transpose().mul_scalar(self.config.scaling()))
    }
    fn save_tensors(&self, naming: &ArchNaming) -> TensorMap {
        let mut map = TensorMap::new("adapter_model.safetensors");
        for l in 0..self.layers {
            for &k in &self.config.targets {
                let site = Site::new(l, k);
                let i = self.index(site).expect("own site");
                let p = format!("base_model.model.{}", naming.module_path(site));
                for (name, tt) in [("loretta_A", &self.a[i]), ("loretta_B", &self.b[i])] {
                    for (c, core) in tt.cores.iter().enumerate() {
                        map.insert_tensor(format!("{p}.{name}.cores.{c}"), core.val());
                    }
                }
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
                for name in ["loretta_A", "loretta_B"] {
                    let tt = if name == "loretta_A" { &self.a[i] } else { &self.b[i] };
                    let dev = tt.cores[0].device();
                    let mut cores = Vec::new();
                    for (c, core) in tt.cores.iter().enumerate() {
                        cores.push(tensors.take_tensor::<B, 3>(&format!("{p}.{name}.cores.{c}"), core.dims(), &dev)?);
                    }
                    let new = TtTensor::from_cores(cores)?;
                    if name == "loretta_A" {
                        self.a[i] = new;
                    } else {
                        self.b[i] = new;
                    }
                }
            }
        }
        Ok(self)
    }
}


impl<B: Backend> BuildAdapter<B> for LorettaRepConfig {
    type Set = LorettaRep<B>;
    fn build(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Result<LorettaRep<B>> {
        self.init(shape, rng, device)
    }
}

#[cfg(test)]
mod tests {
    use super::balanced_factors;
    #[test]
    fn factorisations_match_the_paper() {
        assert_eq!(balanced_factors(768, 3), vec![8, 8, 12]);
        assert_eq!(balanced_factors(4096, 3), vec![16, 16, 16]);
        assert_eq!(balanced_factors(7, 3), vec![1, 1, 7]);
        assert_eq!(balanced_factors(32, 3).iter().product::<usize>(), 32);
    }
}
