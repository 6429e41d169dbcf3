//! ndarray and wgpu agree on the core numerics (run in CI on lavapipe, Mesa's Vulkan CPU driver):
//! decomposition contractions, every adapter's update, and LoRTA's gradients.
//! `cargo test -p lorta-core --features test-wgpu --test wgpu_parity`
#![cfg(feature = "test-wgpu")]

mod common;
use common::{host, max_relative_error};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use lorta_core::decomp::{CpTensor, TtTensor};
use lorta_core::init::{seeded, Init};
use lorta_core::tuners::{Adapter, AdapterConfig, LortaConfig};
use lorta_core::{MatrixKind, Method, ModelShape, Site};

type Nd = burn_ndarray::NdArray<f32>;
type Wg = burn_wgpu::Wgpu<f32, i32>;

fn close(a: &[f32], b: &[f32], what: &str) {
    let err = max_relative_error(a, b, what);
    assert!(err < 1e-4, "{what}: ndarray vs wgpu relative error {err:e}");
}

fn input<B: Backend>(n: usize, w: usize) -> Tensor<B, 2> {
    let v: Vec<f32> = (0..n * w).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    Tensor::from_data(TensorData::new(v, [n, w]), &Default::default())
}

/// Fills every parameter with the same deterministic values on any backend (B factors non-zero).
struct Fill(u64);
impl<B: Backend> ModuleMapper<B> for Fill {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let seed = &mut self.0;
        param.map(|t| {
            let dims = t.dims();
            let n: usize = dims.iter().product();
            *seed += 1;
            let v = Init::Uniform { low: -0.5, high: 0.5 }.sample(n, &mut seeded(*seed));
            Tensor::from_data(TensorData::new(v, dims), &t.device()).set_require_grad(t.is_require_grad())
        })
    }
}

#[test]
fn decompositions_agree() {
    let inits = [Init::Normal { std: 1.0 }; 4];
    let cp_n = CpTensor::<Nd>::init(&[3, 4, 2, 5], 3, &inits, &mut seeded(1), &Default::default());
    let cp_w = CpTensor::<Wg>::init(&[3, 4, 2, 5], 3, &inits, &mut seeded(1), &Default::default());
    close(&host(cp_w.contract(input(2, 8), &[1, 2]).unwrap()), &host(cp_n.contract(input(2, 8), &[1, 2]).unwrap()), "CP contract");
    close(&host(cp_w.reconstruct()), &host(cp_n.reconstruct()), "CP reconstruct");
    let tt_n = TtTensor::<Nd>::init(&[3, 4, 2, 5], &[2, 3, 2], &inits, &mut seeded(2), &Default::default());
    let tt_w = TtTensor::<Wg>::init(&[3, 4, 2, 5], &[2, 3, 2], &inits, &mut seeded(2), &Default::default());
    close(&host(tt_w.contract(input(2, 15), &[0, 3]).unwrap()), &host(tt_n.contract(input(2, 15), &[0, 3]).unwrap()), "TT contract");
}

#[test]
fn every_adapter_update_agrees() {
    let shape = ModelShape::new(16, 4, 2, 24);
    for method in Method::ALL {
        let cfg = AdapterConfig::default_for(method, 3, &MatrixKind::ATTENTION);
        let n = cfg.init::<Nd>(&shape, 7, &Default::default()).unwrap().map(&mut Fill(0));
        let w = cfg.init::<Wg>(&shape, 7, &Default::default()).unwrap().map(&mut Fill(0));
        for site in [Site::new(1, MatrixKind::Value)] {
            let x = 16;
            let yn = n.adapt_output(site, input(3, x), input(3, 16));
            let yw = w.adapt_output(site, input(3, x), input(3, 16));
            close(&host(yw), &host(yn), &format!("{method:?} {site:?}"));
        }
        assert_eq!(n.num_params(), w.num_params());
    }
}

#[test]
fn lorta_gradients_agree() {
    type AN = burn_autodiff::Autodiff<Nd>;
    type AW = burn_autodiff::Autodiff<Wg>;
    let shape = ModelShape::new(16, 4, 2, 24);
    let cfg = AdapterConfig::Lorta(LortaConfig::new(3, MatrixKind::ATTENTION.to_vec()));
    let n = cfg.init::<AN>(&shape, 3, &Default::default()).unwrap().map(&mut Fill(0));
    let w = cfg.init::<AW>(&shape, 3, &Default::default()).unwrap().map(&mut Fill(0));
    let site = Site::new(1, MatrixKind::Output);
    let gn = n.delta(site, input(4, 16)).unwrap().sum().backward();
    let gw = w.delta(site, input(4, 16)).unwrap().sum().backward();
    let (lorta_core::AdapterSet::Lorta(ln), lorta_core::AdapterSet::Lorta(lw)) = (&n, &w) else { panic!() };
    for (fn_, fw) in ln.groups[0].factors.iter().zip(&lw.groups[0].factors) {
        close(&host(fw.val().grad(&gw).unwrap()), &host(fn_.val().grad(&gn).unwrap()), "LoRTA factor gradient");
    }
}
