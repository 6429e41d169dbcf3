//! CP (CANDECOMP/PARAFAC) tensors of any order: T[i₁…i_N] = Σ_r Π_n U_n[i_n, r].
use crate::matmul::matmul;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;

use super::{check_input_width, split_modes};
use crate::init::Init;
use crate::{CoreError, Result};

/// A rank-`r` CP tensor; factor `n` has shape `[dims[n], r]`.
#[derive(Module, Debug)]
pub struct CpTensor<B: Backend> {
    pub factors: Vec<Param<Tensor<B, 2>>>,
}

impl<B: Backend> CpTensor<B> {
    pub fn from_factors(factors: Vec<Tensor<B, 2>>) -> Result<Self> {
        if factors.is_empty() {
            return Err(CoreError::config("a CP tensor needs at least one factor"));
        }
        let r = factors[0].dims()[1];
        for (n, f) in factors.iter().enumerate() {
            if f.dims()[1] != r {
                return Err(CoreError::Shape {
                    name: format!("CP factor {n}"),
                    expected: vec![f.dims()[0], r],
                    found: f.dims().to_vec(),
                });
            }
        }
        Ok(CpTensor { factors: factors.into_iter().map(Param::from_tensor).collect() })
    }

    /// One initialiser per mode.
    pub fn init(
        dims: &[usize],
        rank: usize,
        inits: &[Init],
        rng: &mut StdRng,
        device: &B::Device,
    ) -> Self {
        assert_eq!(dims.len(), inits.len(), "one initialiser per mode");
        let factors =
            dims.iter().zip(inits).map(|(&d, init)| init.tensor::<B, 2>([d, rank], rng, device));
        Self::from_factors(factors.collect()).expect("consistent ranks")
    }

    pub fn rank(&self) -> usize {
        self.factors[0].dims()[1]
    }
    pub fn dims(&self) -> Vec<usize> {
        self.factors.iter().map(|f| f.dims()[0]).collect()
    }
    pub fn order(&self) -> usize {
        self.factors.len()
    }
    /// Σ_n dims[n]·r.
    pub fn num_params(&self) -> usize {
        self.dims().iter().sum::<usize>() * self.rank()
    }
    pub fn factor(&self, n: usize) -> Tensor<B, 2> {
        self.factors[n].val()
    }

    /// Khatri-Rao product of the given modes' factors: `[prod(dims of modes), r]`, row-major.
    fn khatri_rao(&self, modes: &[usize]) -> Tensor<B, 2> {
        let r = self.rank();
        let mut acc: Option<Tensor<B, 2>> = None;
        for &m in modes {
            let f = self.factor(m);
            acc = Some(match acc {
                None => f,
                Some(a) => {
                    let (rows, n) = (a.dims()[0], f.dims()[0]);
                    (a.unsqueeze_dim::<3>(1) * f.unsqueeze_dim::<3>(0)).reshape([rows * n, r])
                }
            });
        }
        acc.unwrap_or_else(|| Tensor::ones([1, r], &self.factors[0].device()))
    }

    /// The full tensor as `[1, prod(dims)]`.
    pub fn reconstruct(&self) -> Tensor<B, 2> {
        let all: Vec<usize> = (0..self.order()).collect();
        self.khatri_rao(&all).sum_dim(1).reshape([1, self.dims().iter().product::<usize>()])
    }

    /// Contracts `x: [batch, prod(dims[modes])]` (row-major over `modes`, ascending) with the
    /// tensor; returns `[batch, prod(dims of the other modes)]`. Never builds the full tensor:
    /// cost O(batch·(Σ contracted sizes)·r + batch·r·prod(rest)).
    pub fn contract(&self, x: Tensor<B, 2>, modes: &[usize]) -> Result<Tensor<B, 2>> {
        self.contract_with_fixed(x, modes, &[])
    }

    /// Like [`contract`](Self::contract), with some modes fixed at an index (a slice of the
    /// tensor): `fixed = [(mode, index)]`. Fixed modes are neither input nor output.
    pub fn contract_with_fixed(
        &self,
        x: Tensor<B, 2>,
        modes: &[usize],
        fixed: &[(usize, usize)],
    ) -> Result<Tensor<B, 2>> {
        self.contract_scaled(x, modes, fixed, 1.0)
    }

    /// [`contract_with_fixed`](Self::contract_with_fixed) times a scalar, folded into the
    /// rank-space weights (no extra pass over the output).
    pub fn contract_scaled(
        &self,
        x: Tensor<B, 2>,
        modes: &[usize],
        fixed: &[(usize, usize)],
        scale: f64,
    ) -> Result<Tensor<B, 2>> {
        let dims = self.dims();
        let (chosen, rest) = split_modes(&dims, modes)?;
        check_input_width(x.dims()[1], &dims, &chosen)?;
        for &(m, i) in fixed {
            if chosen.contains(&m) || m >= dims.len() || i >= dims[m] {
                return Err(CoreError::config(format!(
                    "fixed index {i} for mode {m} is invalid (dims {dims:?}, contracted {chosen:?})"
                )));
            }
        }
        let rest: Vec<usize> =
            rest.into_iter().filter(|m| !fixed.iter().any(|(f, _)| f == m)).collect();
        let z = self.project(x, &chosen, fixed, scale);
        if rest.is_empty() {
            return Ok(z.sum_dim(1));
        }
        Ok(matmul(z, self.khatri_rao(&rest).transpose()))
    }

    /// Rank-space coefficients `[batch, r]`: x contracted over `chosen` (ascending, x laid out
    /// row-major over them), times the fixed modes' rows and `scale`. The last contracted mode
    /// goes first as one plain matmul; the others are folded in by broadcast-multiply-and-sum.
    pub fn project(
        &self,
        x: Tensor<B, 2>,
        chosen: &[usize],
        fixed: &[(usize, usize)],
        scale: f64,
    ) -> Tensor<B, 2> {
        let dims = self.dims();
        let r = self.rank();
        let batch = x.dims()[0];
        let z: Tensor<B, 2> = match chosen.split_last() {
            // No input modes: x is [batch, 1].
            None => matmul(x, Tensor::ones([1, r], &self.factors[0].device())),
            Some((&last, leading)) => {
                let mut lead: usize = leading.iter().map(|&m| dims[m]).product();
                let mut y: Tensor<B, 3> = matmul(x.reshape([batch * lead, dims[last]]), self.factor(last)).reshape([batch, lead, r]);
                for &m in leading.iter().rev() {
                    let n = dims[m];
                    lead /= n;
                    let f = self.factor(m).reshape([1, 1, n, r]);
                    y = (y.reshape([batch, lead, n, r]) * f).sum_dim(2).reshape([batch, lead, r]);
                }
                y.reshape([batch, r])
            }
        };
        let mut w: Option<Tensor<B, 2>> = None;
        for &(m, i) in fixed {
            let row = self.factor(m).narrow(0, i, 1);
            w = Some(match w {
                None => row,
                Some(w) => w * row,
            });
        }
        match (w, scale == 1.0) {
            (Some(w), true) => z * w,
            (Some(w), false) => z * w.mul_scalar(scale),
            (None, true) => z,
            (None, false) => z.mul_scalar(scale),
        }
    }
}
