//! Prefix tuning against PEFT (positions after the prefix, as PEFT's past_key_values give them)
//! and dropout (from config.json or `Tuning::dropout`; off at inference, on and seeded in
//! training). Fixtures: `scripts/make_fixtures.py prefix`.
mod common;

use burn::module::{AutodiffModule, Param};
use burn::tensor::{Int, Tensor, TensorData};
use common::{fixture, ids, ids_mask, nested, reference, B};
use lorta_models::bert::BertForSequenceClassification;
use lorta_models::dropout::{seed_step, set_host_masks, step_seed, DropoutConfig};
use lorta_models::llama::LlamaForCausalLM;
use lorta_models::load::LoadOptions;
use lorta_models::tuning::{PrefixPositions, Tuning};

type AB = burn_autodiff::Autodiff<B>;

fn tensor2(v: &serde_json::Value, dev: &burn_ndarray::NdArrayDevice) -> Tensor<B, 2> {
    let (shape, data) = nested(v);
    let data: Vec<f32> = data.into_iter().map(|x| x as f32).collect();
    Tensor::from_data(TensorData::new(data, [shape[0], shape[1]]), dev)
}

fn int2(rows: &[Vec<u32>], dev: &burn_ndarray::NdArrayDevice) -> Tensor<B, 2, Int> {
    let (b, s) = (rows.len(), rows[0].len());
    Tensor::from_data(TensorData::new(rows.iter().flatten().map(|&x| x as i64).collect::<Vec<_>>(), [b, s]), dev)
}

/// The PEFT prefix fixture's LLaMA model with our prefix set from its keys / values.
fn llama_with_peft_prefix(positions: PrefixPositions) -> (LlamaForCausalLM<B>, serde_json::Value) {
    let r = reference("prefix");
    let l = r["prefix_len"].as_u64().unwrap() as usize;
    let dev = Default::default();
    let tuning = Tuning { prefix_len: Some(l), prefix_positions: positions, ..Tuning::frozen() };
    let opts = LoadOptions { tuning, ..Default::default() };
    let mut model = LlamaForCausalLM::<B>::load(&fixture("llama-tied"), &opts, &dev).unwrap();
    let lr = &r["llama"];
    for (i, layer) in model.model.layers.iter_mut().enumerate() {
        let p = layer.prefix.as_mut().unwrap();
        p.keys = Param::from_tensor(tensor2(&lr["keys"][i], &dev));
        p.values = Param::from_tensor(tensor2(&lr["values"][i], &dev));
    }
    (model, lr.clone())
}

fn max_rel_err(ours: &[f32], reference: &serde_json::Value, shape: [usize; 3], mask: &[Vec<u32>]) -> f64 {
    let (rshape, r) = nested(reference);
    assert_eq!(rshape, shape.to_vec());
    let (mut num, mut den) = (0f64, 0f64);
    for (i, (&a, &b)) in ours.iter().zip(&r).enumerate() {
        let tok = i / shape[2];
        if mask[tok / shape[1]][tok % shape[1]] == 1 {
            num = num.max((a as f64 - b).abs());
            den = den.max(b.abs());
        }
    }
    num / den
}

#[test]
fn llama_prefix_tuning_matches_peft() {
    let dev = Default::default();
    let (model, lr) = llama_with_peft_prefix(PrefixPositions::AfterPrefix);
    let mask = ids_mask(&lr["inputs"]);
    let input = int2(&ids(&lr["inputs"]["input_ids"]), &dev);
    let logits = model.forward(input.clone(), Some(int2(&mask, &dev)));
    let shape: [usize; 3] = logits.dims();
    let ours: Vec<f32> = logits.into_data().to_vec().unwrap();
    let e = max_rel_err(&ours, &lr["logits"], shape, &mask);
    assert!(e < 1e-4, "prefix tuning vs PEFT: relative error {e:.3e}");
    // The other convention (positions from 0) is a real difference, so the test can fail.
    let (model0, _) = llama_with_peft_prefix(PrefixPositions::FromZero);
    let ours0: Vec<f32> = model0.forward(input, Some(int2(&mask, &dev))).into_data().to_vec().unwrap();
    let e0 = max_rel_err(&ours0, &lr["logits"], shape, &mask);
    assert!(e0 > 1e-3, "positions from 0 should differ from PEFT, error {e0:.3e}");
}

#[test]
fn bert_prefix_shifts_absolute_positions() {
    // PEFT + transformers 4.x: position ids start at past_key_values_length = ℓ (BERT:
    // arange(ℓ, ℓ + s); RoBERTa: padding-aware ids + ℓ). transformers 5 refuses prefix tuning
    // on encoders, so there is no fixture; the ids are checked directly.
    let dev = Default::default();
    for (name, expect) in [("bert-tiny", vec![vec![3i64, 4, 5], vec![3, 4, 5]]), ("roberta-cls", vec![vec![5, 6, 1], vec![5, 1, 1]])] {
        let tuning = Tuning { prefix_len: Some(3), ..Tuning::frozen() };
        let m = BertForSequenceClassification::<B>::load(&fixture(name), &LoadOptions { tuning, ..Default::default() }, &dev).unwrap();
        let pad = m.encoder.config.pad_token_id as u32;
        let rows = if name == "roberta-cls" { vec![vec![0, 7, pad], vec![0, pad, pad]] } else { vec![vec![2, 7, 3], vec![2, 8, 3]] };
        let pos = m.encoder.embeddings.position_ids(int2(&rows, &dev), 3);
        let got: Vec<i64> = pos.into_data().convert::<i64>().to_vec().unwrap();
        assert_eq!(got, expect.concat(), "{name}");
    }
}

fn bert_inputs() -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let r = reference("bert-tiny");
    (ids(&r["inputs"]["input_ids"]), ids_mask(&r["inputs"]))
}

fn bert_with_dropout(p: Option<f64>) -> BertForSequenceClassification<AB> {
    let tuning = Tuning { dropout: p, ..Tuning::default() };
    BertForSequenceClassification::<AB>::load(&fixture("bert-tiny"), &LoadOptions { tuning, num_labels: Some(2), ..Default::default() }, &Default::default())
        .unwrap()
}

fn logits_ad(m: &BertForSequenceClassification<AB>, ids_: &[Vec<u32>], mask: &[Vec<u32>]) -> Vec<f32> {
    let dev = Default::default();
    let to = |rows: &[Vec<u32>]| {
        let (b, s) = (rows.len(), rows[0].len());
        Tensor::<AB, 2, Int>::from_data(TensorData::new(rows.iter().flatten().map(|&x| x as i64).collect::<Vec<_>>(), [b, s]), &dev)
    };
    m.forward(to(ids_), Some(to(mask)), None).into_data().to_vec().unwrap()
}

// One test for everything that draws from the backend's (process-wide) random generator, so no
// other test of this binary reseeds it in between.
#[test]
fn dropout_off_at_inference_on_and_seeded_in_training() {
    let dev = Default::default();
    let (ids_, mask) = bert_inputs();
    // bert-tiny's config.json has both probabilities at 0: no dropout, training forward = eval.
    let plain = bert_with_dropout(None);
    assert_eq!(plain.dropout(), DropoutConfig { hidden: 0.0, attention: 0.0, classifier: 0.0 });
    let eval_plain: Vec<f32> = plain.valid().forward(int2(&ids_, &dev), Some(int2(&mask, &dev)), None).into_data().to_vec().unwrap();
    seed_step::<AB>(&dev, 1, 0);
    assert_eq!(logits_ad(&plain, &ids_, &mask), eval_plain);

    let m = bert_with_dropout(Some(0.3));
    assert_eq!(m.dropout(), DropoutConfig { hidden: 0.3, attention: 0.3, classifier: 0.3 });
    // Inference (inner backend): dropout off, outputs identical to the model without dropout.
    let eval: Vec<f32> = m.valid().forward(int2(&ids_, &dev), Some(int2(&mask, &dev)), None).into_data().to_vec().unwrap();
    assert_eq!(eval, eval_plain);
    // Training (autodiff backend): outputs differ from inference, and depend only on the seed;
    // with masks from the backend generator, then from the host one (what CPU backends use).
    let at = |step| {
        seed_step::<AB>(&dev, 42, step);
        logits_ad(&m, &ids_, &mask)
    };
    for host in [false, true] {
        set_host_masks(host);
        let (a, b, c) = (at(7), at(7), at(8));
        assert_ne!(a, eval, "dropout inactive in training (host masks: {host})");
        assert_eq!(a, b, "same (seed, step) must give the same masks (host masks: {host})");
        assert_ne!(a, c, "another step must give other masks (host masks: {host})");
    }
    set_host_masks(false);
    assert_ne!(step_seed(42, 7), step_seed(43, 7));
}

#[test]
fn dropout_from_config_json_and_bad_values() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture("roberta-cls");
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, tmp.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    let cfg_path = tmp.path().join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["hidden_dropout_prob"] = 0.1.into();
    cfg["attention_probs_dropout_prob"] = 0.2.into();
    cfg["classifier_dropout"] = serde_json::Value::Null;
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let dev = Default::default();
    let m = BertForSequenceClassification::<B>::load(tmp.path(), &LoadOptions::default(), &dev).unwrap();
    // classifier_dropout null → hidden_dropout_prob, as HF's heads.
    assert_eq!(m.dropout(), DropoutConfig { hidden: 0.1, attention: 0.2, classifier: 0.1 });
    cfg["classifier_dropout"] = 0.05.into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let m = BertForSequenceClassification::<B>::load(tmp.path(), &LoadOptions::default(), &dev).unwrap();
    assert_eq!(m.dropout().classifier, 0.05);
    cfg["attention_probs_dropout_prob"] = 1.5.into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let e = BertForSequenceClassification::<B>::load(tmp.path(), &LoadOptions::default(), &dev).unwrap_err().to_string();
    assert!(e.contains("attention_probs_dropout_prob") && e.contains("config.json"), "{e}");
    let bad = Tuning { dropout: Some(1.0), ..Tuning::frozen() };
    assert!(BertForSequenceClassification::<B>::load(&src, &LoadOptions { tuning: bad, ..Default::default() }, &dev).is_err());
    // LLaMA: attention_dropout (absent → 0).
    let l = LlamaForCausalLM::<B>::load(&fixture("llama-tied"), &LoadOptions::default(), &dev).unwrap();
    assert!(l.model.layers.iter().all(|x| x.attention_dropout == 0.0));
}
