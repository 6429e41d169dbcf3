//! Shared helpers of the parity tests: fixture paths, reference JSON, masked comparisons.
#![allow(dead_code)]
use std::path::PathBuf;

use lorta_models::load::{Array, AutoModel, LoadOptions};
use serde_json::Value;

pub type B = burn_ndarray::NdArray<f32>;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

pub fn reference(name: &str) -> Value {
    let p = fixture(name).join("reference.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// Nested JSON numbers → (shape, flat values).
pub fn nested(v: &Value) -> (Vec<usize>, Vec<f64>) {
    let mut shape = Vec::new();
    let mut cur = v;
    while let Value::Array(a) = cur {
        shape.push(a.len());
        if a.is_empty() {
            break;
        }
        cur = &a[0];
    }
    fn flat(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
            x => out.push(x.as_f64().expect("number")),
        }
    }
    let mut out = Vec::new();
    flat(v, &mut out);
    (shape, out)
}

pub fn ids(v: &Value) -> Vec<Vec<u32>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()).collect()
}

/// Unpadded sequences of a reference batch (tokens where attention_mask == 1).
pub fn sequences(inputs: &Value) -> Vec<Vec<u32>> {
    let ids = ids(&inputs["input_ids"]);
    let mask = ids_mask(inputs);
    ids.iter().zip(&mask).map(|(r, m)| r.iter().zip(m).filter(|(_, &m)| m == 1).map(|(&t, _)| t).collect()).collect()
}

pub fn ids_mask(inputs: &Value) -> Vec<Vec<u32>> {
    ids(&inputs["attention_mask"])
}

/// Normwise relative error max|a − r| / max|r| over rows `[b][t][..]` with mask 1 (3-D), or
/// over everything (2-D).
pub fn rel_err(ours: &Array, reference: &Value, mask: Option<&[Vec<u32>]>) -> f64 {
    let (shape, r) = nested(reference);
    assert_eq!(ours.shape, shape, "shape mismatch with reference");
    let inner: usize = shape[2..].iter().product::<usize>().max(1);
    let (mut num, mut den) = (0f64, 0f64);
    for (i, (&a, &b)) in ours.data.iter().zip(&r).enumerate() {
        if let Some(m) = mask {
            let tok = i / inner;
            let (bi, ti) = (tok / shape[1], tok % shape[1]);
            if m[bi][ti] == 0 {
                continue;
            }
        }
        num = num.max((a as f64 - b).abs());
        den = den.max(b.abs());
    }
    num / den.max(1e-12)
}

pub fn assert_close(what: &str, ours: &Array, reference: &Value, mask: Option<&[Vec<u32>]>) {
    let e = rel_err(ours, reference, mask);
    println!("{what}: relative error {e:.3e}");
    assert!(e <= 1e-4, "{what}: relative error {e:.3e} > 1e-4");
}

pub fn load(dir: &std::path::Path, adapter: Option<PathBuf>) -> AutoModel<B> {
    let opts = LoadOptions::inference().with_adapter(adapter);
    AutoModel::<B>::load(dir, &opts, &Default::default()).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}
