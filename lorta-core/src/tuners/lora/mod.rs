//! LoRA (Hu et al. 2021): ΔW = (α/r)·B·A per adapted matrix, `A: [r, in]` kaiming-uniform
//! (a = √5), `B: [out, r]` zero. PEFT keys `base_model.model.<module>.lora_{A,B}.weight`.
use crate::fused::{block_selectors, linear, stacked_columns};
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

/// `LORTA_STACKED_LORA=0` turns [`Lora::deltas`]'s stacking off (site by site), for A/B runs.
fn stacking_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("LORTA_STACKED_LORA").map_or(true, |v| v != "0"))
}

impl<B: Backend> Lora<B> {
    fn index(&self, site: Site) -> Option<usize> {
        site_index(&self.config.targets, self.layers, site)
    }

    /// [`Adapter::delta`] of several sites that read the same `x` (Q, K, V and G of an
    /// attention): one product of `x` with the sites' stacked A factors `[k·r, in]` instead of k,
    /// so the forward reads `x` once and the backward forms all their A gradients (and the
    /// gradient of `x`) in one product over the rows — the folding trunk's pair sites have 65,536.
    /// The scaling goes on the `[n, Σ r]` projection rather than on each `[n, out]` result.
    pub fn deltas(&self, sites: &[Site], x: Tensor<B, 2>) -> Vec<Option<Tensor<B, 2>>> {
        let index: Vec<Option<usize>> = sites.iter().map(|&s| self.index(s)).collect();
        let used: Vec<usize> = index.iter().flatten().copied().collect();
        if used.len() < 2 || !stacking_enabled() {
            return sites.iter().map(|&s| self.delta(s, x.clone())).collect();
        }
        let ranks: Vec<usize> = used.iter().map(|&i| self.a[i].dims()[0]).collect();
        let stacked = Tensor::cat(used.iter().map(|&i| self.a[i].val()).collect(), 0);
        // scaled once here rather than per site (fewer operations and kernels per GPU step)
        // (`linear`: the stacked gradient comes out row-major, so each site's rows are a view)
        let z = linear(x, stacked).mul_scalar(self.config.scaling()); // [n, Σ r]
        let n = z.dims()[0];
        // equal ranks: each site's columns through `stacked_columns` (one-kernel backward)
        let selectors = if ranks.iter().all(|&r| r == ranks[0]) { block_selectors::<B>(ranks.len(), &z.device(), z.dtype()) } else { None };
        // one [n, k, r] view for every site: their gradients accumulate in that shape (fused)
        let z3 = selectors.as_ref().map(|_| z.clone().reshape([n, ranks.len(), ranks[0]]));
        let mut start = 0;
        let mut k = 0;
        index
            .iter()
            .map(|i| {
                let i = (*i)?;
                let zi = match (&selectors, &z3) {
                    (Some(selectors), Some(z3)) => stacked_columns(z3.clone(), selectors, k),
                    _ => z.clone().slice([0..n, start..start + ranks[k]]),
                };
                start += ranks[k];
                k += 1;
                Some(linear(zi, self.b[i].val()))
            })
            .collect()
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
        // the scaling on the rank-r intermediate, not on the [n, out] result
        Some(linear(linear(x, self.a[i].val()).mul_scalar(s), self.b[i].val()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, device, to_f64, TestAutodiff, TestBackend};
    use burn::tensor::{Distribution, Tensor};
    use rand::SeedableRng;

    /// Stacked-A deltas equal site-by-site ones, in value and in every gradient.
    #[test]
    fn shared_input_deltas_equal_site_by_site() {
        let shape = ModelShape::new(12, 3, 2, 24);
        let cfg = LoraConfig::new(2, vec![MatrixKind::Query, MatrixKind::Value, MatrixKind::Output]).with_alpha(4.0);
        let dev = device();
        let lora: Lora<TestAutodiff> = cfg.init(&shape, &mut StdRng::seed_from_u64(3), &dev);
        // B starts at zero: give it values so the test sees it
        let lora = Lora { b: lora.b.iter().map(|b| Param::from_tensor(Tensor::random(b.dims(), Distribution::Normal(0.0, 1.0), &dev).require_grad())).collect(), ..lora };
        let x = Tensor::<TestAutodiff, 2>::random([5, 12], Distribution::Normal(0.0, 1.0), &dev).require_grad();
        let sites = [Site::new(1, MatrixKind::Query), Site::new(1, MatrixKind::Key), Site::new(1, MatrixKind::Value), Site::new(0, MatrixKind::Output)];
        let weights = [1.0, 2.0, -1.5, 0.5];
        let loss = |ds: Vec<Option<Tensor<TestAutodiff, 2>>>| {
            ds.into_iter().zip(weights).filter_map(|(d, w)| d.map(|d| d.powi_scalar(2).sum().mul_scalar(w))).reduce(|a, b| a + b).unwrap()
        };
        let together = lora.deltas(&sites, x.clone());
        assert!(together[1].is_none(), "Key is not a target");
        let alone: Vec<_> = sites.iter().map(|&s| lora.delta(s, x.clone())).collect();
        for (t, a) in together.iter().zip(&alone) {
            if let (Some(t), Some(a)) = (t, a) {
                assert_close(&to_f64::<TestBackend, 2>(t.clone().inner()), &to_f64::<TestBackend, 2>(a.clone().inner()), 1e-5, "value");
            }
        }
        let g1 = loss(together).backward();
        let g2 = loss(alone).backward();
        let grad = |g: &<TestAutodiff as burn::tensor::backend::AutodiffBackend>::Gradients, t: &Tensor<TestAutodiff, 2>| to_f64::<TestBackend, 2>(t.grad(g).unwrap());
        assert_close(&grad(&g1, &x), &grad(&g2, &x), 1e-5, "x gradient");
        for i in 0..lora.a.len() {
            let (a, b) = (lora.a[i].val(), lora.b[i].val());
            match (a.grad(&g1), a.grad(&g2)) {
                (Some(p), Some(q)) => assert_close(&to_f64::<TestBackend, 2>(p), &to_f64::<TestBackend, 2>(q), 1e-5, &format!("A {i}")),
                (None, None) => {}
                (p, q) => panic!("A {i}: gradient {} vs {}", p.is_some(), q.is_some()),
            }
            match (b.grad(&g1), b.grad(&g2)) {
                (Some(p), Some(q)) => assert_close(&to_f64::<TestBackend, 2>(p), &to_f64::<TestBackend, 2>(q), 1e-5, &format!("B {i}")),
                (None, None) => {}
                (p, q) => panic!("B {i}: gradient {} vs {}", p.is_some(), q.is_some()),
            }
        }
    }
}
