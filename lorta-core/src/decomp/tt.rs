//! Tensor-train (TT / MPS) tensors: T[i₁…i_N] = G₁[:, i₁, :] G₂[:, i₂, :] … G_N[:, i_N, :],
//! cores `G_k: [r_{k-1}, I_k, r_k]` with r₀ = r_N = 1.
use crate::matmul::matmul;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;

use super::{check_input_width, split_modes};
use crate::init::Init;
use crate::{CoreError, Result};

#[derive(Module, Debug)]
pub struct TtTensor<B: Backend> {
    pub cores: Vec<Param<Tensor<B, 3>>>,
}

impl<B: Backend> TtTensor<B> {
    pub fn from_cores(cores: Vec<Tensor<B, 3>>) -> Result<Self> {
        if cores.is_empty() {
            return Err(CoreError::config("a tensor train needs at least one core"));
        }
        let mut prev = 1;
        for (k, c) in cores.iter().enumerate() {
            let [a, _, b] = c.dims();
            let last = k + 1 == cores.len();
            if a != prev || (last && b != 1) {
                return Err(CoreError::Shape {
                    name: format!("TT core {k}"),
                    expected: vec![prev, c.dims()[1], if last { 1 } else { b }],
                    found: c.dims().to_vec(),
                });
            }
            prev = b;
        }
        Ok(TtTensor { cores: cores.into_iter().map(Param::from_tensor).collect() })
    }

    /// TT with `dims` and internal ranks `ranks` (length `dims.len() - 1`).
    pub fn init(
        dims: &[usize],
        ranks: &[usize],
        inits: &[Init],
        rng: &mut StdRng,
        device: &B::Device,
    ) -> Self {
        assert_eq!(ranks.len() + 1, dims.len(), "need order-1 internal TT ranks");
        assert_eq!(inits.len(), dims.len(), "one initialiser per core");
        let mut full = vec![1];
        full.extend_from_slice(ranks);
        full.push(1);
        let cores = dims
            .iter()
            .enumerate()
            .map(|(k, &d)| inits[k].tensor::<B, 3>([full[k], d, full[k + 1]], rng, device))
            .collect();
        Self::from_cores(cores).expect("consistent ranks")
    }

    pub fn dims(&self) -> Vec<usize> {
        self.cores.iter().map(|c| c.dims()[1]).collect()
    }
    pub fn ranks(&self) -> Vec<usize> {
        self.cores.iter().take(self.cores.len() - 1).map(|c| c.dims()[2]).collect()
    }
    pub fn num_params(&self) -> usize {
        self.cores.iter().map(|c| c.dims().iter().product::<usize>()).sum()
    }

    /// The full tensor as `[1, prod(dims)]`.
    pub fn reconstruct(&self) -> Tensor<B, 2> {
        let device = self.cores[0].device();
        self.contract(Tensor::ones([1, 1], &device), &[]).expect("no contracted modes")
    }

    /// Contracts `x: [batch, prod(dims[modes])]` over `modes` (ascending); returns
    /// `[batch, prod(other dims)]`. A left-to-right sweep whose state is
    /// `[batch, remaining input, output so far, bond]`; the full tensor is never built.
    pub fn contract(&self, x: Tensor<B, 2>, modes: &[usize]) -> Result<Tensor<B, 2>> {
        let dims = self.dims();
        let (chosen, _rest) = split_modes(&dims, modes)?;
        check_input_width(x.dims()[1], &dims, &chosen)?;
        let batch = x.dims()[0];
        let mut xin: usize = x.dims()[1];
        let mut out = 1usize;
        let mut bond = 1usize;
        let mut s: Tensor<B, 4> = x.reshape([batch, xin, 1, 1]);
        for (k, core) in self.cores.iter().enumerate() {
            let g = core.val();
            let [ra, n, rb] = g.dims();
            debug_assert_eq!(ra, bond);
            if chosen.contains(&k) {
                xin /= n;
                // [b, n, xin, out, ra] -> [b, xin, out, n, ra] -> @ [n·ra, rb]
                let s5: Tensor<B, 5> = s.reshape([batch, n, xin, out, ra]);
                let lhs = s5.permute([0, 2, 3, 1, 4]).reshape([batch * xin * out, n * ra]);
                let rhs = g.permute([1, 0, 2]).reshape([n * ra, rb]);
                s = matmul(lhs, rhs).reshape([batch, xin, out, rb]);
            } else {
                // [b·xin·out, ra] @ [ra, n·rb] -> [b, xin, out·n, rb]
                let lhs = s.reshape([batch * xin * out, ra]);
                s = matmul(lhs, g.reshape([ra, n * rb])).reshape([batch, xin, out * n, rb]);
                out *= n;
            }
            bond = rb;
        }
        Ok(s.reshape([batch, out]))
    }
}
