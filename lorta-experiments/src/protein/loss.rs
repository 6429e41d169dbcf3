//! Training losses on device tensors (computed in f32 whatever the model's dtype):
//! - distogram cross-entropy, OpenFold's `distogram_loss`: per chain Σ mask·CE / (ε + Σ mask),
//!   ε = 1e-6, averaged over the batch;
//! - backbone FAPE (AlphaFold 2 Alg. 28 on Cα atoms, OpenFold's `compute_fape` with clamp 10 Å,
//!   length scale 10 Å, ε = 1e-4): frames from N, CA, C by Gram–Schmidt (`rigid_from_three_points`:
//!   e1 = C − CA, e2 ⟂ e1 in the plane of N − CA, e3 = e1 × e2, origin CA) on both the predicted
//!   and the true backbone, averaged over the structure module's iterations as AF2 does.
use burn::tensor::activation::log_softmax;
use burn::tensor::{backend::Backend, DType, Int, Tensor};

pub const FAPE_CLAMP: f64 = 10.0;
pub const FAPE_SCALE: f64 = 10.0;
pub const FAPE_EPS: f64 = 1e-4;

/// `logits: [b, L, L, 64]`, `bins: [b, L, L]`, `pair_mask: [b, L, L]` → scalar.
pub fn distogram_loss<B: Backend>(logits: Tensor<B, 4>, bins: Tensor<B, 3, Int>, pair_mask: Tensor<B, 3>) -> Tensor<B, 1> {
    let [b, l, _, _] = logits.dims();
    let lp = log_softmax(logits.cast(DType::F32), 3);
    let nll = lp.gather(3, bins.reshape([b, l, l, 1])).reshape([b, l, l]).neg();
    let per_chain = (nll * pair_mask.clone()).sum_dim(2).sum_dim(1).reshape([b]) / (pair_mask.sum_dim(2).sum_dim(1).reshape([b]) + 1e-6);
    per_chain.mean()
}

fn component<B: Backend>(x: &Tensor<B, 3>, k: usize) -> Tensor<B, 3> {
    let [n, l, _] = x.dims();
    x.clone().slice([0..n, 0..l, k..k + 1])
}

fn dot<B: Backend>(a: &Tensor<B, 3>, b: &Tensor<B, 3>) -> Tensor<B, 3> {
    (a.clone() * b.clone()).sum_dim(2)
}

fn normalize<B: Backend>(a: Tensor<B, 3>) -> Tensor<B, 3> {
    let norm = dot(&a, &a).add_scalar(1e-8).sqrt();
    a / norm
}

fn cross<B: Backend>(a: &Tensor<B, 3>, b: &Tensor<B, 3>) -> Tensor<B, 3> {
    let (a0, a1, a2) = (component(a, 0), component(a, 1), component(a, 2));
    let (b0, b1, b2) = (component(b, 0), component(b, 1), component(b, 2));
    Tensor::cat(
        vec![a1.clone() * b2.clone() - a2.clone() * b1.clone(), a2 * b0.clone() - a0.clone() * b2, a0 * b1 - a1 * b0],
        2,
    )
}

/// Frames `(R [n, L, 3, 3] with columns e1 e2 e3, t [n, L, 3])` of a backbone `[n, L, 3, 3]`
/// (atoms N, CA, C).
pub fn backbone_frames<B: Backend>(backbone: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 3>) {
    let [n, l, _, _] = backbone.dims();
    let atom = |a: usize| backbone.clone().slice([0..n, 0..l, a..a + 1, 0..3]).reshape([n, l, 3]);
    let (xn, ca, xc) = (atom(0), atom(1), atom(2));
    let e1 = normalize(xc - ca.clone());
    let v2 = xn - ca.clone();
    let e2 = normalize(v2.clone() - e1.clone() * dot(&e1, &v2));
    let e3 = cross(&e1, &e2);
    // columns: R[.., x, c] = e_c[x]
    let r = Tensor::stack::<4>(vec![e1, e2, e3], 3);
    (r, ca)
}

/// Backbone FAPE of predicted backbones `[k, b, L, 3, 3]` (k structure-module iterations) against
/// the truth `[b, L, 3, 3]` with its mask `[b, L]`; mean over iterations and batch.
pub fn backbone_fape<B: Backend>(pred: Tensor<B, 5>, truth: Tensor<B, 4>, mask: Tensor<B, 2>) -> Tensor<B, 1> {
    let [k, b, l, _, _] = pred.dims();
    let n = k * b;
    let pred = pred.cast(DType::F32).reshape([n, l, 3, 3]);
    let truth = truth.cast(DType::F32).reshape([1, b, l, 3, 3]).expand([k, b, l, 3, 3]).reshape([n, l, 3, 3]);
    let mask = mask.cast(DType::F32).reshape([1, b, l]).expand([k, b, l]).reshape([n, l]);
    let local = |bb: Tensor<B, 4>| -> Tensor<B, 4> {
        let (r, t) = backbone_frames(bb);
        // x_ij = R_iᵀ (x_j − t_i): rows of (x_j − t_i) times R_i
        let x = t.clone().reshape([n, 1, l, 3]).expand([n, l, l, 3]);
        let diff = x - t.reshape([n, l, 1, 3]).expand([n, l, l, 3]);
        lorta_models::nn::matmul(diff, r)
    };
    let err = (local(pred) - local(truth)).powf_scalar(2.0).sum_dim(3).reshape([n, l, l]).add_scalar(FAPE_EPS).sqrt();
    let err = err.clamp_max(FAPE_CLAMP) / FAPE_SCALE;
    let mi = mask.clone().reshape([n, l, 1]);
    let mj = mask.clone().reshape([n, 1, l]);
    let total = (err * mi * mj).sum_dim(2).sum_dim(1).reshape([n]);
    let count = mask.sum_dim(1).reshape([n]).add_scalar(FAPE_EPS);
    (total / (count.clone() * count)).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::NdArray;
    use crate::protein::distogram::DISTOGRAM_BINS;
    use crate::protein::metrics::distogram_cross_entropy;
    use burn::tensor::TensorData;
    use rand::{rngs::StdRng, RngExt, SeedableRng};

    type B = NdArray;

    #[test]
    fn distogram_loss_matches_the_host_metric_per_chain() {
        let dev = Default::default();
        let (b, l) = (2usize, 5usize);
        let mut rng = StdRng::seed_from_u64(3);
        let logits: Vec<f32> = (0..b * l * l * DISTOGRAM_BINS).map(|_| rng.random::<f32>() * 4.0 - 2.0).collect();
        let bins: Vec<i64> = (0..b * l * l).map(|_| rng.random_range(0..DISTOGRAM_BINS as i64)).collect();
        let mask: Vec<f32> = (0..b * l * l).map(|i| if i % 7 == 3 { 0.0 } else { 1.0 }).collect();
        let loss = distogram_loss::<B>(
            Tensor::from_data(TensorData::new(logits.clone(), [b, l, l, DISTOGRAM_BINS]), &dev),
            Tensor::from_data(TensorData::new(bins.clone(), [b, l, l]), &dev),
            Tensor::from_data(TensorData::new(mask.clone(), [b, l, l]), &dev),
        );
        let got: f32 = loss.into_scalar();
        let mut want = 0.0;
        for n in 0..b {
            let p = n * l * l;
            let bn: Vec<usize> = bins[p..p + l * l].iter().map(|&x| x as usize).collect();
            let mn: Vec<bool> = mask[p..p + l * l].iter().map(|&x| x > 0.5).collect();
            want += distogram_cross_entropy(&logits[p * DISTOGRAM_BINS..(p + l * l) * DISTOGRAM_BINS], &bn, &mn, l).unwrap() / b as f64;
        }
        assert!((got as f64 - want).abs() < 1e-5, "{got} vs {want}");
    }

    /// Against `fape_cases` of tests/fixtures/proteins/metrics.json (numpy).
    #[test]
    fn fape_matches_numpy_reference() {
        let dev = Default::default();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proteins/metrics.json");
        let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for c in fx["fape_cases"].as_array().unwrap() {
            let (k, b, l) = (c["k"].as_u64().unwrap() as usize, c["b"].as_u64().unwrap() as usize, c["l"].as_u64().unwrap() as usize);
            let v = |key: &str| -> Vec<f32> { serde_json::from_value(c[key].clone()).unwrap() };
            let pred = Tensor::<B, 5>::from_data(TensorData::new(v("pred"), [k, b, l, 3, 3]), &dev);
            let truth = Tensor::<B, 4>::from_data(TensorData::new(v("truth"), [b, l, 3, 3]), &dev);
            let mask = Tensor::<B, 2>::from_data(TensorData::new(v("mask"), [b, l]), &dev);
            let got: f32 = backbone_fape(pred, truth, mask).into_scalar();
            let want = c["fape"].as_f64().unwrap();
            assert!((got as f64 - want).abs() < 1e-5 * want.max(1.0), "{got} vs {want}");
        }
    }

    #[test]
    fn fape_is_zero_for_a_rigidly_moved_copy() {
        let dev = Default::default();
        let l = 6;
        let mut rng = StdRng::seed_from_u64(9);
        let truth: Vec<f32> = (0..l * 9).map(|_| rng.random::<f32>() * 10.0).collect();
        // rotate 90° about z and shift
        let moved: Vec<f32> = truth.chunks(3).flat_map(|p| [-p[1] + 3.0, p[0] - 1.0, p[2] + 2.0]).collect();
        let pred = Tensor::<B, 5>::from_data(TensorData::new(moved, [1, 1, l, 3, 3]), &dev);
        let t = Tensor::<B, 4>::from_data(TensorData::new(truth, [1, l, 3, 3]), &dev);
        let got: f32 = backbone_fape(pred, t, Tensor::ones([1, l], &dev)).into_scalar();
        assert!(got < 2e-3, "{got}"); // √ε / 10 = 1e-3 per pair
    }
}
