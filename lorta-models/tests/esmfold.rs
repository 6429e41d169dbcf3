//! ESM-2 and ESMFold parity with transformers on the tiny random checkpoints of
//! `scripts/make_esmfold_fixtures.py` (every parameter perturbed), fp32: normwise relative error
//! max|ours − ref| / max|ref| ≤ 1e-4 for hidden states, trunk states and distogram logits,
//! ≤ 1e-3 for atom positions; plus adapters on the trunk.
mod common;

use burn::module::{AutodiffModule, Module};
use burn::tensor::{Int, Tensor};
use common::*;
use lorta_core::{AdapterConfig, MatrixKind, Method};
use lorta_models::esm::EsmTokenizer;
use lorta_models::esmfold::{EsmFold, EsmFoldConfig, FoldOptions};
use lorta_models::evoformer::PairUpdate;
use lorta_models::load::{Array, AutoModel, LoadOptions};
use lorta_models::tuning::{HeadTuning, Tuning};
use lorta_models::weights::Weights;
use serde_json::Value;

/// A tensor of a fixture's reference.safetensors as (shape, values).
fn reference_tensor(name: &str, key: &str) -> Array {
    let path = fixture(name).join("reference.safetensors");
    let mut w = Weights::open(&[path]).unwrap();
    let (_, shape, _) = w.raw(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    let data = w.take(key, &shape).unwrap();
    Array { shape, data: data.to_vec::<f32>().unwrap() }
}

fn rel(ours: &Array, reference: &Array) -> f64 {
    assert_eq!(ours.shape, reference.shape, "shape mismatch");
    let (mut num, mut den) = (0f64, 0f64);
    for (&a, &b) in ours.data.iter().zip(&reference.data) {
        num = num.max((a as f64 - b as f64).abs());
        den = den.max((b as f64).abs());
    }
    num / den.max(1e-12)
}

fn check(what: &str, ours: &Array, reference: &Array, tol: f64) {
    let e = rel(ours, reference);
    println!("{what}: relative error {e:.3e}");
    assert!(e <= tol, "{what}: relative error {e:.3e} > {tol:e}");
}

fn rows(v: &Value) -> Vec<Vec<u32>> {
    ids(v)
}

/// ESM-2 (rotary, token dropout with a `<mask>` in the batch) and ESM-1b style (absolute
/// positions, `emb_layer_norm_before`, no token dropout).
#[test]
fn esm_tiny_tokenizer_and_hidden_states() {
    for name in ["esm-tiny", "esm1b-tiny"] {
        check_esm(name);
    }
}

fn check_esm(name: &str) {
    let r = reference(name);
    let dir = fixture(name);
    let tok = EsmTokenizer::from_dir(&dir).unwrap();
    let want = rows(&r["input_ids"]);
    let mask = rows(&r["attention_mask"]);
    let texts: Vec<String> = r["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    for ((text, ids), m) in texts.iter().zip(&want).zip(&mask) {
        let n = m.iter().filter(|&&x| x == 1).count();
        assert_eq!(tok.encode(text), ids[..n].to_vec(), "tokens of {text}");
    }
    let model = AutoModel::<B>::load(&dir, &LoadOptions::inference(), &Default::default()).unwrap();
    let (seqs, _) = model.encode_texts(&dir, &texts).unwrap();
    let out = model.forward_ids(&seqs, None).unwrap();
    assert_eq!(out.input_ids, want, "right-padded with <pad>");
    check(&format!("{name} last_hidden_state"), out.last_hidden_state.as_ref().unwrap(), &reference_tensor(name, "last_hidden_state"), 1e-4);
}

fn esmfold_inputs() -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let r = reference("esmfold-tiny");
    (rows(&r["aatype"]), rows(&r["attention_mask"]))
}

fn fold_and_check(recycles: usize) {
    let dir = fixture("esmfold-tiny");
    let model = EsmFold::<B>::load(&dir, &LoadOptions::inference(), &Default::default()).unwrap();
    let (aa, mask) = esmfold_inputs();
    let dev = Default::default();
    let aa_t = lorta_models::bert::int_batch::<B>(&aa, &dev).unwrap();
    let mask_t = lorta_models::bert::int_batch::<B>(&mask, &dev).unwrap();
    let out = model.forward(aa_t, mask_t, FoldOptions { num_recycles: recycles, structure: true });
    let key = |k: &str| reference_tensor("esmfold-tiny", &format!("r{recycles}.{k}"));
    let arr = |t| Array::from_tensor(t).unwrap();
    check(&format!("r{recycles} s_s"), &arr(out.s_s), &key("s_s"), 1e-4);
    check(&format!("r{recycles} s_z"), &Array::from_tensor(out.s_z).unwrap(), &key("s_z"), 1e-4);
    check(&format!("r{recycles} distogram_logits"), &Array::from_tensor(out.distogram_logits).unwrap(), &key("distogram_logits"), 1e-4);
    let st = out.structure.expect("structure requested");
    check(&format!("r{recycles} states"), &Array::from_tensor(st.states).unwrap(), &key("states"), 1e-4);
    check(&format!("r{recycles} angles"), &Array::from_tensor(st.angles).unwrap(), &key("angles"), 1e-3);
    check(&format!("r{recycles} frames"), &Array::from_tensor(st.frames).unwrap(), &key("frames"), 1e-3);
    check(&format!("r{recycles} positions"), &Array::from_tensor(st.positions).unwrap(), &key("positions"), 1e-3);
}

#[test]
fn esmfold_tiny_parity_without_recycling() {
    fold_and_check(0);
}

#[test]
fn esmfold_tiny_parity_with_one_recycle() {
    fold_and_check(1);
}

#[test]
fn esmfold_tiny_parity_with_two_recycles() {
    fold_and_check(2);
}

#[test]
fn esmfold_forward_cli_path_writes_fold_outputs() {
    let dir = fixture("esmfold-tiny");
    let model = AutoModel::<B>::load(&dir, &LoadOptions::inference(), &Default::default()).unwrap();
    let r = reference("esmfold-tiny");
    let texts: Vec<String> = r["sequences"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    let (seqs, _) = model.encode_texts(&dir, &texts).unwrap();
    let (aa, _) = esmfold_inputs();
    for (s, a) in seqs.iter().zip(&aa) {
        assert_eq!(s[..], a[..s.len()], "aatype of the sequence");
    }
    let out = model.fold(&seqs, 0).unwrap();
    let names: Vec<&str> = out.extra.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["s_s", "s_z", "distogram_logits", "positions"]);
    check("cli distogram", &out.extra[2].1, &reference_tensor("esmfold-tiny", "r0.distogram_logits"), 1e-4);
}

type AB = burn_autodiff::Autodiff<B>;

/// A tiny trunk config (paper variant when `opm`), no language model.
fn tiny_config(opm: bool) -> EsmFoldConfig {
    let dir = fixture("esmfold-tiny");
    let j = lorta_models::json::JsonFile::read(&dir.join("config.json")).unwrap();
    let mut c = EsmFoldConfig::from_json(&j).unwrap();
    c.esm = None;
    if opm {
        c.trunk.pair_update = PairUpdate::OuterProductMean { dim: 3 };
    }
    c
}

fn small_batch<Bk: burn::tensor::backend::Backend>(dev: &Bk::Device) -> (Tensor<Bk, 2, Int>, Tensor<Bk, 2, Int>) {
    let (aa, mask) = esmfold_inputs();
    (lorta_models::bert::int_batch::<Bk>(&aa, dev).unwrap(), lorta_models::bert::int_batch::<Bk>(&mask, dev).unwrap())
}

/// Every method builds on the trunk's two site families (sequence attention d = 16, h = 2;
/// triangle attention d = 8, h = 2), starts as the identity (the base model's output
/// unchanged), and after a perturbation of the adapter only the adapter and head receive
/// gradients.
#[test]
fn every_method_on_the_trunk_starts_at_identity_and_trains_only_adapters() {
    let dev = Default::default();
    for opm in [false, true] {
        let config = tiny_config(opm);
        let base = EsmFold::<AB>::random(&config, &Tuning::frozen(), None, burn::tensor::DType::F32, &dev).unwrap();
        let (aa, mask) = small_batch::<AB>(&dev);
        let opts = FoldOptions { num_recycles: 0, structure: false };
        let want = Array::from_tensor(base.forward(aa.clone(), mask.clone(), opts).distogram_logits).unwrap();
        for method in Method::ALL {
            let targets: &[MatrixKind] = if method == Method::Ia3 { &[MatrixKind::Key, MatrixKind::Value, MatrixKind::FfnDown] } else { &MatrixKind::GATED_ATTENTION };
            let cfg = match AdapterConfig::default_for(method, 2, targets) {
                AdapterConfig::Ia3(mut c) => {
                    c.targets = targets.to_vec();
                    AdapterConfig::Ia3(c)
                }
                other => other,
            };
            let tuning = Tuning::adapter(cfg).with_head(HeadTuning::Frozen);
            // same base weights: copy the frozen base into a model with adapters
            let mut model = EsmFold::<AB>::random(&config, &tuning, None, burn::tensor::DType::F32, &dev).unwrap();
            let adapters = (model.trunk.sequence_adapters.take(), model.trunk.pair_adapters.take());
            model = base.clone();
            model.trunk.sequence_adapters = adapters.0;
            model.trunk.pair_adapters = adapters.1;
            model.tuning = tuning.clone();
            let got = Array::from_tensor(model.forward(aa.clone(), mask.clone(), opts).distogram_logits).unwrap();
            let e = rel(&got, &want);
            assert!(e <= 1e-6, "{method:?} (opm {opm}): fresh adapter changes the output by {e:.3e}");
            let n = model.trainable_params();
            assert!(n > 0, "{method:?}: no trainable parameters");
            // every trainable parameter gets a gradient once the adapter is non-zero: perturb
            // all float parameters of the adapter sets, then check gradients of the sum
            let model = perturb_adapters(model);
            let loss = model.forward(aa.clone(), mask.clone(), opts).distogram_logits.powi_scalar(2).mean();
            let grads = loss.backward();
            let mut with_grad = 0usize;
            let mut counter = GradCounter { grads: &grads, with_grad: &mut with_grad, tracked: 0 };
            model.visit(&mut counter);
            let tracked = counter.tracked;
            assert_eq!(tracked, n, "{method:?}: tracked (require-grad) parameters = trainable count");
            assert!(with_grad > 0 && with_grad == n, "{method:?}: {with_grad} of {n} trainable values got gradients");
            // inner model = inference view
            let _ = model.valid();
        }
    }
}

fn perturb_adapters(mut m: EsmFold<AB>) -> EsmFold<AB> {
    struct Noise;
    impl burn::module::ModuleMapper<AB> for Noise {
        fn map_float<const D: usize>(&mut self, param: burn::module::Param<Tensor<AB, D>>) -> burn::module::Param<Tensor<AB, D>> {
            let (id, t, mapper) = param.consume();
            let grad = t.is_require_grad();
            let device = t.device();
            let noise = Tensor::<AB, D>::random(t.dims(), burn::tensor::Distribution::Normal(0.0, 0.1), &device);
            // a fresh leaf through the host (tracked tensors built from ops are not leaves)
            let t = Tensor::<AB, D>::from_data((t.detach() + noise).into_data(), &device).set_require_grad(grad);
            burn::module::Param::from_mapped_value(id, t, mapper)
        }
    }
    m.trunk.sequence_adapters = m.trunk.sequence_adapters.map(|a| a.map(&mut Noise));
    m.trunk.pair_adapters = m.trunk.pair_adapters.map(|a| a.map(&mut Noise));
    m
}

struct GradCounter<'a> {
    grads: &'a <AB as burn::tensor::backend::AutodiffBackend>::Gradients,
    with_grad: &'a mut usize,
    tracked: usize,
}

impl burn::module::ModuleVisitor<AB> for GradCounter<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<AB, D>>) {
        let t = param.val();
        if t.is_require_grad() {
            let n = t.dims().iter().product::<usize>();
            self.tracked += n;
            if let Some(g) = t.grad(self.grads) {
                let nonzero = g.abs().sum().into_scalar() > 0.0;
                if nonzero {
                    *self.with_grad += n;
                }
            }
        }
    }
}
