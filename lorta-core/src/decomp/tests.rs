//! Property-style checks of every decomposition against a plain f64 reference: the full tensor
//! is rebuilt entry by entry from the factors in f64, and contractions are summed explicitly.
use burn::tensor::{Tensor, TensorData};
use rand::{rngs::StdRng, RngExt, SeedableRng};

use super::*;
use crate::test_util::{device, to_f64, TestBackend as B};

type T2 = Tensor<B, 2>;

fn rand_vec(n: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
}
fn tensor2(rows: usize, cols: usize, rng: &mut StdRng) -> (T2, Vec<f64>) {
    let v = rand_vec(rows * cols, rng);
    let t = T2::from_data(TensorData::new(v.clone(), [rows, cols]), &device());
    (t, v.into_iter().map(f64::from).collect())
}

/// Row-major multi-index of a flat index.
fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for m in (0..dims.len()).rev() {
        idx[m] = i % dims[m];
        i /= dims[m];
    }
    idx
}
fn ravel(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// Reference contraction of a full f64 tensor with x over `modes`.
fn ref_contract(full: &[f64], dims: &[usize], x: &[f64], batch: usize, modes: &[usize]) -> Vec<f64> {
    let rest: Vec<usize> = (0..dims.len()).filter(|m| !modes.contains(m)).collect();
    let cd: Vec<usize> = modes.iter().map(|&m| dims[m]).collect();
    let rd: Vec<usize> = rest.iter().map(|&m| dims[m]).collect();
    let nc: usize = cd.iter().product();
    let nr: usize = rd.iter().product();
    let mut out = vec![0.0; batch * nr];
    for (flat, v) in full.iter().enumerate() {
        let idx = unravel(flat, dims);
        let ci: Vec<usize> = modes.iter().map(|&m| idx[m]).collect();
        let ri: Vec<usize> = rest.iter().map(|&m| idx[m]).collect();
        let (c, r) = (ravel(&ci, &cd), ravel(&ri, &rd));
        for b in 0..batch {
            out[b * nr + r] += x[b * nc + c] * v;
        }
    }
    out
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn flat(t: T2) -> Vec<f64> {
    to_f64(t).iter().copied().collect()
}

/// Random shape of order 1..=4 with some size-1 modes, and random ascending contraction modes.
fn random_case(rng: &mut StdRng) -> (Vec<usize>, Vec<usize>) {
    let order = rng.random_range(1..=4usize);
    let dims: Vec<usize> = (0..order).map(|_| if rng.random::<f32>() < 0.2 { 1 } else { rng.random_range(2..=5) }).collect();
    let modes: Vec<usize> = (0..order).filter(|_| rng.random::<bool>()).collect();
    (dims, modes)
}

#[test]
fn cp_reconstruct_and_contract_match_f64_reference() {
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let (dims, modes) = random_case(&mut rng);
        let rank = if seed % 3 == 0 { 1 } else { rng.random_range(1..=4) };
        let parts: Vec<(T2, Vec<f64>)> = dims.iter().map(|&d| tensor2(d, rank, &mut rng)).collect();
        let cp = CpTensor::from_factors(parts.iter().map(|p| p.0.clone()).collect()).unwrap();
        assert_eq!(cp.num_params(), dims.iter().sum::<usize>() * rank);
        // reference full tensor
        let n: usize = dims.iter().product();
        let full: Vec<f64> = (0..n)
            .map(|f| {
                let idx = unravel(f, &dims);
                (0..rank).map(|r| idx.iter().enumerate().map(|(m, &i)| parts[m].1[i * rank + r]).product::<f64>()).sum()
            })
            .collect();
        assert!(max_rel(&flat(cp.reconstruct()), &full) < 1e-5, "seed {seed}: reconstruct");
        let batch = 3;
        let nc: usize = modes.iter().map(|&m| dims[m]).product();
        let (x, xv) = tensor2(batch, nc, &mut rng);
        let got = flat(cp.contract(x, &modes).unwrap());
        let want = ref_contract(&full, &dims, &xv, batch, &modes);
        assert!(max_rel(&got, &want) < 1e-5, "seed {seed}: contract dims {dims:?} modes {modes:?}");
    }
}

#[test]
fn cp_fixed_indices_equal_a_slice() {
    let mut rng = StdRng::seed_from_u64(7);
    let dims = [3usize, 2, 4, 5];
    let rank = 3;
    let parts: Vec<(T2, Vec<f64>)> = dims.iter().map(|&d| tensor2(d, rank, &mut rng)).collect();
    let cp = CpTensor::from_factors(parts.iter().map(|p| p.0.clone()).collect()).unwrap();
    let full = flat(cp.reconstruct());
    let (x, xv) = tensor2(2, 5, &mut rng);
    // fix mode 0 at 2 and mode 1 at 1, contract mode 3, output mode 2
    let got = flat(cp.contract_with_fixed(x, &[3], &[(0, 2), (1, 1)]).unwrap());
    let mut want = vec![0.0; 2 * 4];
    for b in 0..2 {
        for k in 0..4 {
            for j in 0..5 {
                want[b * 4 + k] += xv[b * 5 + j] * full[ravel(&[2, 1, k, j], &dims)];
            }
        }
    }
    assert!(max_rel(&got, &want) < 1e-5);
    assert!(cp.contract_with_fixed(tensor2(2, 5, &mut rng).0, &[3], &[(0, 3)]).is_err(), "index out of range");
}

#[test]
fn tucker_reconstruct_and_contract_match_f64_reference() {
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(100 + seed);
        let (dims, modes) = random_case(&mut rng);
        // some modes unfactored (identity), ranks 1..=3 otherwise
        let ranks: Vec<Option<usize>> =
            dims.iter().map(|_| if rng.random::<f32>() < 0.3 { None } else { Some(rng.random_range(1..=3)) }).collect();
        let core_dims: Vec<usize> = dims.iter().zip(&ranks).map(|(&d, r)| r.unwrap_or(d)).collect();
        let nc: usize = core_dims.iter().product();
        let (core, core_v) = tensor2(1, nc, &mut rng);
        let facs: Vec<Option<(T2, Vec<f64>)>> =
            dims.iter().zip(&ranks).map(|(&d, r)| r.map(|r| tensor2(d, r, &mut rng))).collect();
        let tk = Tucker::from_parts(core, core_dims.clone(), facs.iter().map(|f| f.as_ref().map(|f| f.0.clone())).collect()).unwrap();
        let n: usize = dims.iter().product();
        let full: Vec<f64> = (0..n)
            .map(|f| {
                let idx = unravel(f, &dims);
                (0..nc)
                    .map(|g| {
                        let gi = unravel(g, &core_dims);
                        let mut v = core_v[g];
                        for m in 0..dims.len() {
                            v *= match &facs[m] {
                                Some((_, fv)) => fv[idx[m] * core_dims[m] + gi[m]],
                                None => f64::from(u8::from(idx[m] == gi[m])),
                            };
                        }
                        v
                    })
                    .sum()
            })
            .collect();
        assert!(max_rel(&flat(tk.reconstruct()), &full) < 1e-5, "seed {seed}: reconstruct");
        let batch = 2;
        let ncx: usize = modes.iter().map(|&m| dims[m]).product();
        let (x, xv) = tensor2(batch, ncx, &mut rng);
        let got = flat(tk.contract(x, &modes).unwrap());
        assert!(max_rel(&got, &ref_contract(&full, &dims, &xv, batch, &modes)) < 1e-5, "seed {seed}: contract");
    }
}

#[test]
fn tt_reconstruct_and_contract_match_f64_reference() {
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(200 + seed);
        let (dims, modes) = random_case(&mut rng);
        let mut ranks = vec![1];
        for _ in 1..dims.len() {
            ranks.push(if seed % 4 == 0 { 1 } else { rng.random_range(1..=3) });
        }
        ranks.push(1);
        let cores: Vec<(Tensor<B, 3>, Vec<f64>)> = dims
            .iter()
            .enumerate()
            .map(|(k, &d)| {
                let n = ranks[k] * d * ranks[k + 1];
                let v = rand_vec(n, &mut rng);
                (Tensor::from_data(TensorData::new(v.clone(), [ranks[k], d, ranks[k + 1]]), &device()), v.into_iter().map(f64::from).collect())
            })
            .collect();
        let tt = TtTensor::from_cores(cores.iter().map(|c| c.0.clone()).collect()).unwrap();
        let n: usize = dims.iter().product();
        let full: Vec<f64> = (0..n)
            .map(|f| {
                let idx = unravel(f, &dims);
                // row vector times core slices
                let mut row = vec![1.0];
                for (k, &i) in idx.iter().enumerate() {
                    let (ra, rb) = (ranks[k], ranks[k + 1]);
                    let mut next = vec![0.0; rb];
                    for a in 0..ra {
                        for b in 0..rb {
                            next[b] += row[a] * cores[k].1[(a * dims[k] + i) * rb + b];
                        }
                    }
                    row = next;
                }
                row[0]
            })
            .collect();
        assert!(max_rel(&flat(tt.reconstruct()), &full) < 1e-5, "seed {seed}: reconstruct");
        let batch = 2;
        let ncx: usize = modes.iter().map(|&m| dims[m]).product();
        let (x, xv) = tensor2(batch, ncx, &mut rng);
        let got = flat(tt.contract(x, &modes).unwrap());
        assert!(max_rel(&got, &ref_contract(&full, &dims, &xv, batch, &modes)) < 1e-5, "seed {seed}: contract {dims:?} {modes:?}");
        assert_eq!(tt.num_params(), (0..dims.len()).map(|k| ranks[k] * dims[k] * ranks[k + 1]).sum::<usize>());
    }
}

#[test]
fn bad_contractions_are_errors_not_panics() {
    let mut rng = StdRng::seed_from_u64(1);
    let cp = CpTensor::<B>::init(&[2, 3], 2, &[crate::init::Init::Ones, crate::init::Init::Ones], &mut rng, &device());
    assert!(cp.contract(tensor2(1, 4, &mut rng).0, &[1]).is_err(), "wrong width");
    assert!(cp.contract(tensor2(1, 6, &mut rng).0, &[1, 0]).is_err(), "unsorted modes");
    assert!(cp.contract(tensor2(1, 2, &mut rng).0, &[5]).is_err(), "mode out of range");
    let e = CpTensor::<B>::from_factors(vec![tensor2(2, 2, &mut rng).0, tensor2(3, 1, &mut rng).0]).unwrap_err();
    assert!(e.to_string().contains("CP factor 1"), "{e}");
}
