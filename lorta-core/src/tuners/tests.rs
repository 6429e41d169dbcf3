//! Checks every method the same way: zero update at init, rank-space update = dense ΔW,
//! merging = adapting, trainable parameter count = the paper's closed-form formula, frozen
//! tensors frozen, and adapter files round-trip (with clear errors for bad files).
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::{rngs::StdRng, RngExt, SeedableRng};

use super::*;
use crate::io::{load_adapter, save_adapter};
use crate::test_util::{assert_close, device, rel_err, to_f64, TestAutodiff, TestBackend as B};

fn small() -> ModelShape {
    ModelShape::new(16, 4, 3, 24)
}

/// Replaces every trainable parameter with random values, so no factor is zero.
struct Randomize(StdRng);
impl<Bk: Backend> ModuleMapper<Bk> for Randomize {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<Bk, D>>) -> Param<Tensor<Bk, D>> {
        let rng = &mut self.0;
        param.map(|t| {
            let dims = t.dims();
            let n: usize = dims.iter().product();
            let v: Vec<f32> = (0..n).map(|_| rng.random::<f32>() - 0.5).collect();
            let trainable = t.is_require_grad();
            Tensor::from_data(TensorData::new(v, dims), &t.device()).set_require_grad(trainable)
        })
    }
}

fn configs() -> Vec<AdapterConfig> {
    let att = MatrixKind::ATTENTION.to_vec();
    let qv = vec![MatrixKind::Query, MatrixKind::Value];
    vec![
        AdapterConfig::Lora(LoraConfig::new(3, att.clone()).with_alpha(6.0)),
        AdapterConfig::Lorta(LortaConfig::new(3, att.clone())),
        AdapterConfig::Lorta(LortaConfig::new(2, qv.clone()).with_head_axis(HeadAxis::Output)),
        AdapterConfig::Vera(VeraConfig::new(4, qv.clone())),
        AdapterConfig::Ia3(Ia3Config::default()),
        AdapterConfig::FactTt(FactTtConfig::new(3, att.clone())),
        AdapterConfig::FactTk(FactTkConfig::new(3, att.clone())),
        AdapterConfig::Lotr(LotrConfig::new(3, qv)),
        AdapterConfig::LorettaRep(LorettaRepConfig { modes: 2, ..LorettaRepConfig::new(4, att) }),
    ]
}

fn x_for(shape: &ModelShape, kind: MatrixKind, seed: u64) -> Tensor<B, 2> {
    let (fi, _) = shape.dims(kind);
    let mut rng = StdRng::seed_from_u64(seed);
    let v: Vec<f32> = (0..5 * fi).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    Tensor::from_data(TensorData::new(v, [5, fi]), &device())
}

fn base_weight(shape: &ModelShape, kind: MatrixKind) -> Tensor<B, 2> {
    let (fi, fo) = shape.dims(kind);
    let v: Vec<f32> = (0..fi * fo).map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.5).collect();
    Tensor::from_data(TensorData::new(v, [fo, fi]), &device())
}

#[test]
fn every_method_starts_as_the_identity_update() {
    let s = small();
    for cfg in configs() {
        let set = cfg.init::<B>(&s, 1, &device()).unwrap();
        for site in s.sites(cfg.targets()) {
            let x = x_for(&s, site.kind, 2);
            let w = base_weight(&s, site.kind);
            let base = x.clone().matmul(w.clone().transpose());
            let xin = set.scale_input(site, x);
            let y = set.adapt_output(site, xin.clone(), xin.matmul(w.transpose()));
            assert!(rel_err(&to_f64(y), &to_f64(base)) < 1e-6, "{:?} {site:?}", cfg.method());
        }
    }
}

#[test]
fn rank_space_update_merging_and_dense_weight_agree() {
    let s = small();
    for cfg in configs() {
        let set = cfg.init::<B>(&s, 3, &device()).unwrap().map(&mut Randomize(StdRng::seed_from_u64(4)));
        for site in s.sites(cfg.targets()) {
            let x = x_for(&s, site.kind, site.layer as u64);
            let w = base_weight(&s, site.kind);
            let xin = set.scale_input(site, x.clone());
            let adapted = set.adapt_output(site, xin.clone(), xin.matmul(w.clone().transpose()));
            let merged = x.clone().matmul(set.merge_weight(site, w.clone()).transpose());
            assert_close(&to_f64(adapted.clone()), &to_f64(merged), 1e-5, &format!("{:?} merge {site:?}", cfg.method()));
            if let Some(dw) = set.delta_weight(site) {
                let d = set.delta(site, x.clone()).unwrap();
                assert_close(&to_f64(d), &to_f64(x.matmul(dw.transpose())), 1e-5, &format!("{:?} delta", cfg.method()));
            }
            // and it is not trivially the base map any more
            let base = x_for(&s, site.kind, site.layer as u64).matmul(base_weight(&s, site.kind).transpose());
            assert!(rel_err(&to_f64(adapted), &to_f64(base)) > 1e-4, "{:?} {site:?} did nothing", cfg.method());
        }
        // sites outside the targets are untouched
        if !cfg.targets().contains(&MatrixKind::Output) {
            assert!(set.delta_weight(Site::new(0, MatrixKind::Output)).is_none());
        }
    }
}

/// The paper's closed forms (REFERENCE: Table 4 formulas and the baselines' papers).
fn formula(cfg: &AdapterConfig, s: &ModelShape) -> usize {
    let (d, l, h) = (s.hidden, s.layers, s.heads);
    let m = cfg.targets().len();
    match cfg {
        AdapterConfig::Lora(c) => cfg.targets().iter().map(|&k| l * c.r * (s.dims(k).0 + s.dims(k).1)).sum(),
        AdapterConfig::Lorta(c) => (d + d / h + h + l + m) * c.r,
        AdapterConfig::Vera(c) => cfg.targets().iter().map(|&k| l * (s.dims(k).1 + c.r)).sum(),
        AdapterConfig::Ia3(_) => l * (s.dims(MatrixKind::Key).1 + s.dims(MatrixKind::Value).1 + s.intermediate),
        AdapterConfig::FactTt(c) => m * l * c.r * c.r + 2 * d * c.r,
        AdapterConfig::FactTk(c) => (2 * d + m * l) * c.r + c.r.pow(3),
        AdapterConfig::Lotr(c) => m * l * c.r * c.r + 2 * d * c.r,
        AdapterConfig::LorettaRep(c) => {
            // TT cores [1,f1,t][t,f2,t]…[t,r,1] for A and [1,r,t]…[t,fk,1] for B, per matrix
            let tt = |dims: &[usize]| -> usize {
                let n = dims.len();
                dims.iter().enumerate().map(|(k, &f)| (if k == 0 { 1 } else { c.tt_rank }) * f * (if k + 1 == n { 1 } else { c.tt_rank })).sum()
            };
            cfg.targets()
                .iter()
                .map(|&k| {
                    let (fi, fo) = s.dims(k);
                    let mut a = loretta::balanced_factors(fi, c.modes);
                    a.push(c.r);
                    let mut b = vec![c.r];
                    b.extend(loretta::balanced_factors(fo, c.modes));
                    l * (tt(&a) + tt(&b))
                })
                .sum()
        }
    }
}

#[test]
fn trainable_counts_equal_closed_form_formulas() {
    for s in [small(), ModelShape::roberta_base()] {
        for cfg in configs() {
            let set = cfg.init::<B>(&s, 0, &device()).unwrap();
            assert_eq!(set.num_trainable(), formula(&cfg, &s), "{:?} on d={}", cfg.method(), s.hidden);
        }
    }
    // LoReTTA on RoBERTa-base with the paper's reshape [8, 8, 12] and TT rank 5, r = 8:
    // A = TT[8, 8, 12, 8]: 1·8·5 + 5·8·5 + 5·12·5 + 5·8·1 = 580;
    // B = TT[8, 8, 8, 12]: 1·8·5 + 5·8·5 + 5·8·5 + 5·12·1 = 500 → 1,080 per matrix.
    let c = AdapterConfig::LorettaRep(LorettaRepConfig::new(8, vec![MatrixKind::Query]));
    assert_eq!(c.init::<B>(&ModelShape::roberta_base(), 0, &device()).unwrap().num_trainable(), 12 * 1080);
}

#[test]
fn vera_projections_are_frozen_and_lambdas_train() {
    let s = small();
    let cfg = AdapterConfig::Vera(VeraConfig::new(4, vec![MatrixKind::Query]));
    let set = cfg.init::<TestAutodiff>(&s, 0, &Default::default()).unwrap().map(&mut Randomize(StdRng::seed_from_u64(1)));
    let x = Tensor::<TestAutodiff, 2>::ones([2, 16], &Default::default());
    let grads = set.delta(Site::new(1, MatrixKind::Query), x).unwrap().sum().backward();
    let AdapterSet::Vera(v) = &set else { panic!("vera") };
    assert!(v.vera_a.grad(&grads).is_none() && v.vera_b.grad(&grads).is_none(), "A, B must be frozen");
    assert!(v.lambda_b[1].val().grad(&grads).is_some() && v.lambda_d[1].val().grad(&grads).is_some());
    assert!(v.lambda_b[0].val().grad(&grads).is_none(), "other layers get no gradient from this site");
}

#[test]
fn adapter_files_round_trip_for_every_method() {
    let s = small();
    let naming = ArchNaming::Llama;
    for cfg in configs() {
        let set = cfg.init::<B>(&s, 5, &device()).unwrap().map(&mut Randomize(StdRng::seed_from_u64(6)));
        let dir = tempfile::tempdir().unwrap();
        save_adapter(&set, dir.path(), &naming, Some("base")).unwrap();
        let back = load_adapter::<B>(dir.path(), &s, &naming, &device()).unwrap();
        assert_eq!(back.config(), set.config(), "{:?} config", cfg.method());
        for site in s.sites(cfg.targets()) {
            let w = base_weight(&s, site.kind);
            assert_close(&to_f64(back.merge_weight(site, w.clone())), &to_f64(set.merge_weight(site, w)), 0.0, "reloaded");
        }
    }
}

#[test]
fn loading_rejects_wrong_shapes_unknown_and_missing_keys() {
    use crate::io::{read_safetensors, write_safetensors, WEIGHTS_FILE};
    let s = small();
    let naming = ArchNaming::Llama;
    let set = AdapterConfig::Lora(LoraConfig::new(2, vec![MatrixKind::Query])).init::<B>(&s, 0, &device()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_adapter(&set, dir.path(), &naming, None).unwrap();
    let path = dir.path().join(WEIGHTS_FILE);
    let good = read_safetensors(&path).unwrap();

    let mut extra = good.clone();
    extra.insert("base_model.model.model.layers.0.self_attn.q_proj.lora_C.weight", TensorData::new(vec![0f32; 2], [2]));
    write_safetensors(&path, &extra.tensors, None).unwrap();
    let e = load_adapter::<B>(dir.path(), &s, &naming, &device()).unwrap_err().to_string();
    assert!(e.contains("lora_C") && e.contains(WEIGHTS_FILE), "{e}");

    let mut wrong = good.clone();
    let key = "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight";
    wrong.insert(key, TensorData::new(vec![0f32; 3 * 16], [3, 16]));
    write_safetensors(&path, &wrong.tensors, None).unwrap();
    let e = load_adapter::<B>(dir.path(), &s, &naming, &device()).unwrap_err().to_string();
    assert!(e.contains(key) && e.contains("[2, 16]") && e.contains("[3, 16]"), "{e}");

    let mut missing = good.clone();
    missing.tensors.remove(key);
    write_safetensors(&path, &missing.tensors, None).unwrap();
    let e = load_adapter::<B>(dir.path(), &s, &naming, &device()).unwrap_err().to_string();
    assert!(e.contains("missing") && e.contains(key), "{e}");

    std::fs::write(&path, b"not a safetensors file").unwrap();
    let e = load_adapter::<B>(dir.path(), &s, &naming, &device()).unwrap_err().to_string();
    assert!(e.contains(WEIGHTS_FILE) && e.contains("safetensors"), "{e}");

    std::fs::write(dir.path().join("adapter_config.json"), br#"{"peft_type": "LOHA", "target_modules": ["q_proj"]}"#).unwrap();
    let e = load_adapter::<B>(dir.path(), &s, &naming, &device()).unwrap_err().to_string();
    assert!(e.contains("LOHA") && e.contains("adapter_config.json"), "{e}");
}

#[test]
fn registry_names_round_trip_and_build_every_method() {
    let s = small();
    let mut labels = std::collections::BTreeSet::new();
    for m in Method::ALL {
        // every accepted spelling of the canonical name parses back to the method
        for name in [m.cli_name().to_string(), m.cli_name().to_uppercase(), m.cli_name().replace('-', "_"), m.label().to_string()] {
            assert_eq!(name.parse::<Method>(), Ok(m), "{name}");
        }
        assert_eq!(Method::from_peft_type(m.peft_type()), Some(m));
        assert!(labels.insert(m.label()), "duplicate label {}", m.label());
        let cfg = AdapterConfig::default_for(m, 2, &MatrixKind::ATTENTION);
        assert_eq!(cfg.method(), m);
        let set = cfg.init::<B>(&s, 0, &device()).unwrap();
        assert_eq!(set.method(), m);
        assert_eq!(set.config(), cfg);
        // the serialized tag is the method's snake_case name
        let tag = serde_json::to_value(&cfg).unwrap()["method"].as_str().unwrap().to_string();
        assert_eq!(serde_json::to_value(m).unwrap(), serde_json::json!(tag));
    }
    let e = "dora".parse::<Method>().unwrap_err();
    for m in Method::ALL {
        assert!(e.contains(m.cli_name()), "{e}");
    }
    assert_eq!("loretta".parse::<Method>(), Ok(Method::LorettaRep));
    assert_eq!("FacTTT".parse::<Method>(), Ok(Method::FactTt));
}
