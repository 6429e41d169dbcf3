//! LoRTA against the paper's formula, both head-axis conventions, values and gradients.
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::{rngs::StdRng, RngExt, SeedableRng};

use super::*;
use crate::tuners::AdapterConfig;
use crate::test_util::{assert_close, device, to_f64, TestAutodiff, TestBackend};

// A small but complete shape: d = 12, h = 3, d/h = 4, L = 2, all four matrices.
fn shape() -> ModelShape {
    ModelShape::new(12, 3, 2, 20)
}

fn random<B: Backend, const D: usize>(shape: [usize; D], rng: &mut StdRng) -> Tensor<B, D> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    Tensor::from_data(TensorData::new(v, shape), &Default::default())
}

/// LoRTA with every factor random (B non-zero), paper layout.
fn random_lorta<B: Backend>(config: &LortaConfig, seed: u64) -> Lorta<B> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut l = config.init::<B>(&shape(), &mut rng, &Default::default());
    for g in l.groups.iter_mut() {
        for f in g.factors.iter_mut() {
            let dims = f.dims();
            *f = Param::from_tensor(random::<B, 2>(dims, &mut rng));
        }
    }
    l
}

fn paper_factors(l: &Lorta<TestBackend>) -> [ndarray::ArrayD<f64>; 5] {
    // A [d,r], B [r,dh], C_h [h,r], C_l [L,r], C_m [M,r]
    [
        to_f64(l.factor(Role::A).unwrap()),
        to_f64(l.factor(Role::B).unwrap().transpose()),
        to_f64(l.factor(Role::Heads).unwrap()),
        to_f64(l.factor(Role::Layer).unwrap()),
        to_f64(l.factor(Role::Matrix).unwrap()),
    ]
}

/// The paper's ΔW_{l,m} = cat_i A·diag(C_h[i]⊙C_m[m]⊙C_l[l])·B along dim 1, in f64.
fn paper_delta_w(f: &[ndarray::ArrayD<f64>; 5], l: usize, m: usize) -> ndarray::Array2<f64> {
    let [a, b, ch, cl, cm] = f;
    let (d, r) = (a.shape()[0], a.shape()[1]);
    let (h, dh) = (ch.shape()[0], b.shape()[1]);
    let mut w = ndarray::Array2::<f64>::zeros((d, h * dh));
    for i in 0..h {
        for o in 0..d {
            for j in 0..dh {
                let mut s = 0.0;
                for k in 0..r {
                    s += a[[o, k]] * ch[[i, k]] * cm[[m, k]] * cl[[l, k]] * b[[k, j]];
                }
                w[[o, i * dh + j]] = s;
            }
        }
    }
    w
}

#[test]
fn rank_space_forward_equals_paper_formula_input_axis() {
    let cfg = LortaConfig::new(3, MatrixKind::ATTENTION.to_vec()).with_alpha(6.0);
    let lorta = random_lorta::<TestBackend>(&cfg, 1);
    let f = paper_factors(&lorta);
    let x = random::<TestBackend, 2>([5, 12], &mut StdRng::seed_from_u64(9));
    let xf = to_f64(x.clone()).into_dimensionality::<ndarray::Ix2>().unwrap();
    for l in 0..2 {
        for (m, &kind) in MatrixKind::ATTENTION.iter().enumerate() {
            let site = Site::new(l, kind);
            let w = paper_delta_w(&f, l, m);
            let want = xf.dot(&w.t()) * (6.0 / 3.0);
            let got = to_f64(lorta.delta(site, x.clone()).unwrap());
            assert_close(&got, &want.into_dyn(), 1e-5, &format!("Δy l={l} m={m}"));
            let dense = to_f64(lorta.delta_weight(site).unwrap());
            assert_close(&dense, &(w.clone() * 2.0).into_dyn(), 1e-5, "ΔW");
            let paper = to_f64(lorta.delta_weight_paper_style(site).unwrap());
            assert_close(&paper, &(w * 2.0).into_dyn(), 1e-5, "ΔW rebuilt paper-style");
        }
    }
}

#[test]
fn rank_space_forward_equals_formula_output_axis() {
    let cfg = LortaConfig::new(2, MatrixKind::ATTENTION.to_vec()).with_head_axis(HeadAxis::Output);
    let lorta = random_lorta::<TestBackend>(&cfg, 2);
    let f = paper_factors(&lorta);
    let x = random::<TestBackend, 2>([4, 12], &mut StdRng::seed_from_u64(3));
    let xf = to_f64(x.clone()).into_dimensionality::<ndarray::Ix2>().unwrap();
    let s = cfg.scaling();
    for l in 0..2 {
        for (m, &kind) in MatrixKind::ATTENTION.iter().enumerate() {
            let blocks = paper_delta_w(&f, l, m); // [d_in, h·dh]: column block i = A·diag(c_i)·B
            // Q/K/V: ΔW = cat_i (A·diag(c_i)·B)ᵀ along dim 0 = blocksᵀ; O keeps the input split.
            let w = if kind == MatrixKind::Output { blocks } else { blocks.t().to_owned() };
            let want = xf.dot(&w.t()) * s;
            let got = to_f64(lorta.delta(Site::new(l, kind), x.clone()).unwrap());
            assert_close(&got, &want.into_dyn(), 1e-5, &format!("output-axis Δy l={l} {kind:?}"));
        }
    }
}

/// The paper's dense path in burn ops (cat over heads of A·diag(c)·B), for gradients.
fn dense_path<B: Backend>(l: &Lorta<B>, layer: usize, m: usize, x: Tensor<B, 2>) -> Tensor<B, 2> {
    let a = l.factor(Role::A).unwrap();
    let b = l.factor(Role::B).unwrap().transpose();
    let ch = l.factor(Role::Heads).unwrap();
    let c = l.factor(Role::Matrix).unwrap().narrow(0, m, 1) * l.factor(Role::Layer).unwrap().narrow(0, layer, 1);
    let h = ch.dims()[0];
    let blocks: Vec<Tensor<B, 2>> =
        (0..h).map(|i| (a.clone() * (ch.clone().narrow(0, i, 1) * c.clone())).matmul(b.clone())).collect();
    let w = Tensor::cat(blocks, 1);
    x.matmul(w.transpose()).mul_scalar(l.config.scaling())
}

#[test]
fn gradients_of_rank_space_path_equal_dense_path() {
    let cfg = LortaConfig::new(3, MatrixKind::ATTENTION.to_vec());
    let lorta = random_lorta::<TestAutodiff>(&cfg, 5);
    let x = random::<TestAutodiff, 2>([6, 12], &mut StdRng::seed_from_u64(11));
    let target = random::<TestAutodiff, 2>([6, 12], &mut StdRng::seed_from_u64(12));
    let loss_of = |y: Tensor<TestAutodiff, 2>| (y * target.clone()).sum();
    // Sum over several sites so every factor gets a gradient.
    let sites = [(0usize, 0usize), (1, 2), (1, 3)];
    let mut l_rank = None;
    let mut l_dense = None;
    for &(layer, m) in &sites {
        let site = Site::new(layer, MatrixKind::ATTENTION[m]);
        let a = loss_of(lorta.delta(site, x.clone()).unwrap());
        let b = loss_of(dense_path(&lorta, layer, m, x.clone()));
        l_rank = Some(match l_rank { None => a, Some(t) => t + a });
        l_dense = Some(match l_dense { None => b, Some(t) => t + b });
    }
    let g_rank = l_rank.unwrap().backward();
    let g_dense = l_dense.unwrap().backward();
    for (i, f) in lorta.groups[0].factors.iter().enumerate() {
        let gr = f.val().grad(&g_rank).expect("rank-space grad");
        let gd = f.val().grad(&g_dense).expect("dense grad");
        assert_close(&to_f64(gr), &to_f64(gd), 1e-4, &format!("gradient of factor {i}"));
    }
}

#[test]
fn init_gives_zero_update_and_paper_param_count() {
    let cfg = LortaConfig::new(4, MatrixKind::ATTENTION.to_vec());
    let s = ModelShape::roberta_base();
    let lorta = cfg.init::<TestBackend>(&s, &mut crate::init::seeded(0), &device());
    assert_eq!(lorta.num_params(), 860 * 4);
    let x = Tensor::<TestBackend, 2>::ones([2, 768], &device());
    let d = to_f64(lorta.delta(Site::new(3, MatrixKind::Value), x).unwrap());
    assert!(d.iter().all(|v| *v == 0.0), "B = 0 at init");
    // A: bound 1/√r; C factors (init_scale 0): bound √(6/r).
    let a = to_f64(lorta.factor(Role::A).unwrap());
    assert!(a.iter().all(|v| v.abs() <= 0.5 + 1e-6) && a.iter().any(|v| v.abs() > 0.3));
    let ch = to_f64(lorta.factor(Role::Heads).unwrap());
    assert!(ch.iter().all(|v| v.abs() <= (6.0f64 / 4.0).sqrt() + 1e-6) && ch.iter().any(|v| v.abs() > 0.8));
}

#[test]
fn ablations_untie_modes_and_stay_consistent() {
    let s = shape();
    let (d, h, dh, l, m, r) = (12, 3, 4, 2, 4, 2);
    let cases = [
        ((true, true, true), (d + dh + h + l + m) * r),
        ((false, true, true), (d + d + l + m) * r),
        ((true, false, true), l * (d + dh + h + m) * r),
        ((true, true, false), m * (d + dh + h + l) * r),
        ((false, false, false), l * m * (d + d) * r),
    ];
    for ((jh, jl, jm), want) in cases {
        let mut cfg = LortaConfig::new(r, MatrixKind::ATTENTION.to_vec());
        cfg.joint_heads = jh;
        cfg.joint_layers = jl;
        cfg.joint_matrices = jm;
        let lorta = random_lorta::<TestBackend>(&cfg, 4);
        assert_eq!(lorta.num_params(), want, "params for joint ({jh},{jl},{jm})");
        let _ = &s;
        let x = random::<TestBackend, 2>([3, 12], &mut StdRng::seed_from_u64(8));
        for site in s.sites(&MatrixKind::ATTENTION) {
            let y = to_f64(lorta.delta(site, x.clone()).unwrap());
            let w = lorta.delta_weight(site).unwrap();
            let y2 = to_f64(x.clone().matmul(w.transpose()));
            assert_close(&y, &y2, 1e-5, "rank-space vs dense");
        }
        // Untied groups are independent: different layers differ.
        let a = to_f64(lorta.delta_weight(Site::new(0, MatrixKind::Query)).unwrap());
        let b = to_f64(lorta.delta_weight(Site::new(1, MatrixKind::Query)).unwrap());
        assert!(crate::test_util::rel_err(&a, &b) > 1e-3);
    }
}

#[test]
fn rejects_non_square_targets() {
    let mut s = ModelShape::new(16, 4, 2, 20);
    s.kv_heads = 2; // GQA: K, V are 16 → 8
    let cfg = AdapterConfig::Lorta(LortaConfig::new(2, MatrixKind::ATTENTION.to_vec()));
    let err = cfg.init::<TestBackend>(&s, 0, &device()).unwrap_err();
    assert!(err.to_string().contains("Key"), "{err}");
    let ok = AdapterConfig::Lorta(LortaConfig::new(2, vec![MatrixKind::Query, MatrixKind::Output]));
    assert!(ok.init::<TestBackend>(&s, 0, &device()).is_ok());
}

#[test]
fn per_forward_step_view_equals_the_general_path() {
    for axis in [HeadAxis::Input, HeadAxis::Output] {
        let cfg = LortaConfig::new(3, MatrixKind::ATTENTION.to_vec()).with_head_axis(axis).with_alpha(5.0);
        let lorta = random_lorta::<TestBackend>(&cfg, 21);
        let step = lorta.step().expect("paper layout");
        let x = random::<TestBackend, 2>([4, 12], &mut StdRng::seed_from_u64(22));
        for site in shape().sites(&MatrixKind::ATTENTION) {
            let a = to_f64(step.delta(site, x.clone()).unwrap());
            let b = to_f64(lorta.delta(site, x.clone()).unwrap());
            assert_close(&a, &b, 1e-5, &format!("{axis:?} {site:?}"));
        }
    }
    let mut untied = LortaConfig::new(2, MatrixKind::ATTENTION.to_vec());
    untied.joint_layers = false;
    assert!(random_lorta::<TestBackend>(&untied, 1).step().is_none());
}

#[test]
fn shared_input_projection_equals_site_by_site_deltas() {
    // Q, K, V (and O, on its own input in a model) evaluated together, both head axes, with a
    // site of another layer and an unadapted kind mixed in
    for axis in [HeadAxis::Input, HeadAxis::Output] {
        let cfg = LortaConfig::new(3, vec![MatrixKind::Query, MatrixKind::Value, MatrixKind::Output]).with_head_axis(axis);
        let lorta = random_lorta::<TestBackend>(&cfg, 31);
        let step = lorta.step().expect("paper layout");
        let x = random::<TestBackend, 2>([5, 12], &mut StdRng::seed_from_u64(32));
        let sites = [
            Site::new(1, MatrixKind::Query),
            Site::new(1, MatrixKind::Key),
            Site::new(1, MatrixKind::Value),
            Site::new(0, MatrixKind::Output),
        ];
        let together = step.deltas(&sites, x.clone());
        assert_eq!(together.len(), sites.len());
        for (site, d) in sites.iter().zip(together) {
            match (d, lorta.delta(*site, x.clone())) {
                (Some(d), Some(reference)) => assert_close(&to_f64(d), &to_f64(reference), 1e-5, &format!("{axis:?} {site:?}")),
                (None, None) => assert_eq!(site.kind, MatrixKind::Key),
                (d, r) => panic!("{axis:?} {site:?}: adapted together {} vs alone {}", d.is_some(), r.is_some()),
            }
        }
    }
}

/// The per-forward view's gradients (every factor, and x) equal the general path's, both head
/// axes, sites of both layers and every kind (the view slices one tensor of all sites' scaled
/// output factors, so each site's gradient must land in its own block).
#[test]
fn per_forward_step_view_gradients_equal_the_general_path() {
    for axis in [HeadAxis::Input, HeadAxis::Output] {
        let cfg = LortaConfig::new(3, MatrixKind::ATTENTION.to_vec()).with_head_axis(axis).with_alpha(5.0);
        let lorta = random_lorta::<TestAutodiff>(&cfg, 41);
        let step = lorta.step().expect("paper layout");
        let x = random::<TestAutodiff, 2>([5, 12], &mut StdRng::seed_from_u64(42)).require_grad();
        let sites = shape().sites(&MatrixKind::ATTENTION);
        let weights: Vec<Tensor<TestAutodiff, 2>> =
            (0..sites.len()).map(|i| random::<TestAutodiff, 2>([5, 12], &mut StdRng::seed_from_u64(100 + i as u64))).collect();
        let loss = |delta: &dyn Fn(Site) -> Tensor<TestAutodiff, 2>| {
            sites.iter().zip(&weights).map(|(&s, w)| (delta(s) * w.clone()).sum()).reduce(|a, b| a + b).unwrap()
        };
        let g_step = loss(&|s| step.delta(s, x.clone()).unwrap()).backward();
        let g_general = loss(&|s| lorta.delta(s, x.clone()).unwrap()).backward();
        for (i, f) in lorta.groups[0].factors.iter().enumerate() {
            let a = f.val().grad(&g_step).expect("step grad");
            let b = f.val().grad(&g_general).expect("general grad");
            assert_close(&to_f64(a), &to_f64(b), 1e-4, &format!("{axis:?} factor {i}"));
        }
        assert_close(&to_f64(x.grad(&g_step).unwrap()), &to_f64(x.grad(&g_general).unwrap()), 1e-4, &format!("{axis:?} x"));
    }
}
