//! Tucker tensors: T = G ×₁ U₁ ×₂ U₂ … ×_N U_N, with a dense core G `[r₁, …, r_N]`.
//! A mode may have no factor (identity), which gives Tucker-2 and other partial forms.
use crate::matmul::matmul;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;

use super::{check_input_width, mode_product, permute_modes, split_modes};
use crate::init::Init;
use crate::{CoreError, Result};

#[derive(Module, Debug)]
pub struct Tucker<B: Backend> {
    /// Core, matricized as `[1, prod(core_dims)]`.
    pub core: Param<Tensor<B, 2>>,
    /// Factor `[dims[n], core_dims[n]]`, or `None` for an identity mode.
    pub factors: Vec<Option<Param<Tensor<B, 2>>>>,
    core_dims: Vec<usize>,
}

impl<B: Backend> Tucker<B> {
    pub fn from_parts(
        core: Tensor<B, 2>,
        core_dims: Vec<usize>,
        factors: Vec<Option<Tensor<B, 2>>>,
    ) -> Result<Self> {
        let n: usize = core_dims.iter().product();
        if core.dims() != [1, n] {
            return Err(CoreError::Shape {
                name: "Tucker core (matricized)".into(),
                expected: vec![1, n],
                found: core.dims().to_vec(),
            });
        }
        if factors.len() != core_dims.len() {
            return Err(CoreError::config(format!(
                "Tucker: {} factors for a core of order {}",
                factors.len(),
                core_dims.len()
            )));
        }
        for (m, f) in factors.iter().enumerate() {
            if let Some(f) = f {
                if f.dims()[1] != core_dims[m] {
                    return Err(CoreError::Shape {
                        name: format!("Tucker factor {m}"),
                        expected: vec![f.dims()[0], core_dims[m]],
                        found: f.dims().to_vec(),
                    });
                }
            }
        }
        Ok(Tucker {
            core: Param::from_tensor(core),
            factors: factors.into_iter().map(|f| f.map(Param::from_tensor)).collect(),
            core_dims,
        })
    }

    /// `dims[n]` and `ranks[n]` per mode; `ranks[n] = None` leaves mode `n` unfactored.
    pub fn init(
        dims: &[usize],
        ranks: &[Option<usize>],
        core_init: Init,
        factor_init: Init,
        rng: &mut StdRng,
        device: &B::Device,
    ) -> Self {
        let core_dims: Vec<usize> =
            dims.iter().zip(ranks).map(|(&d, r)| r.unwrap_or(d)).collect();
        let n: usize = core_dims.iter().product();
        let core = core_init.tensor::<B, 2>([1, n], rng, device);
        let factors = dims
            .iter()
            .zip(ranks)
            .map(|(&d, r)| r.map(|r| factor_init.tensor::<B, 2>([d, r], rng, device)))
            .collect();
        Self::from_parts(core, core_dims, factors).expect("consistent shapes")
    }

    /// Tucker-2 of a stack of matrices `[t, d1, d2]`: ΔW_i = U₁ G_i U₂ᵀ with `U₁: [d1, r1]`,
    /// `U₂: [d2, r2]`, `G: [t, r1, r2]` (LoTR / FacT-TT shape).
    pub fn tucker2(
        t: usize,
        d1: usize,
        d2: usize,
        r1: usize,
        r2: usize,
        inits: [Init; 3],
        rng: &mut StdRng,
        device: &B::Device,
    ) -> Self {
        let [core_init, u1_init, u2_init] = inits;
        let core = core_init.tensor::<B, 2>([1, t * r1 * r2], rng, device);
        let u1 = u1_init.tensor::<B, 2>([d1, r1], rng, device);
        let u2 = u2_init.tensor::<B, 2>([d2, r2], rng, device);
        Self::from_parts(core, vec![t, r1, r2], vec![None, Some(u1), Some(u2)])
            .expect("consistent shapes")
    }

    pub fn core_dims(&self) -> &[usize] {
        &self.core_dims
    }
    pub fn dims(&self) -> Vec<usize> {
        self.factors
            .iter()
            .zip(&self.core_dims)
            .map(|(f, &r)| f.as_ref().map(|f| f.dims()[0]).unwrap_or(r))
            .collect()
    }
    pub fn num_params(&self) -> usize {
        self.core_dims.iter().product::<usize>()
            + self.factors.iter().flatten().map(|f| f.dims()[0] * f.dims()[1]).sum::<usize>()
    }

    /// The full tensor as `[1, prod(dims)]`.
    pub fn reconstruct(&self) -> Tensor<B, 2> {
        let mut t = self.core.val();
        let mut dims = self.core_dims.clone();
        for (m, f) in self.factors.iter().enumerate() {
            if let Some(f) = f {
                let (nt, nd) = mode_product(t, &dims, m, f.val());
                t = nt;
                dims = nd;
            }
        }
        t
    }

    /// Contracts `x: [batch, prod(dims[modes])]` with the tensor over `modes` (ascending);
    /// returns `[batch, prod(other dims)]`. Works in the core's space: inputs are projected by
    /// the factors, multiplied by the matricized core, and expanded by the remaining factors.
    pub fn contract(&self, x: Tensor<B, 2>, modes: &[usize]) -> Result<Tensor<B, 2>> {
        let dims = self.dims();
        let (chosen, rest) = split_modes(&dims, modes)?;
        check_input_width(x.dims()[1], &dims, &chosen)?;
        let batch = x.dims()[0];
        // 1. project each contracted mode onto its rank space: x ×_n U_nᵀ
        let mut xd: Vec<usize> = chosen.iter().map(|&m| dims[m]).collect();
        let mut xt = x;
        for (i, &m) in chosen.iter().enumerate() {
            if let Some(f) = &self.factors[m] {
                let (nt, nd) = mode_product(xt, &xd, i, f.val().transpose());
                xt = nt;
                xd = nd;
            }
        }
        // 2. core matricized as [prod(chosen ranks), prod(rest ranks)]
        let perm: Vec<usize> = chosen.iter().chain(rest.iter()).copied().collect();
        let core = permute_modes(self.core.val(), &self.core_dims, &perm);
        let rc: usize = chosen.iter().map(|&m| self.core_dims[m]).product();
        let rr: usize = rest.iter().map(|&m| self.core_dims[m]).product();
        let mut z = matmul(xt, core.reshape([rc, rr]));
        // 3. expand the remaining modes by their factors
        let mut zd: Vec<usize> = rest.iter().map(|&m| self.core_dims[m]).collect();
        for (i, &m) in rest.iter().enumerate() {
            if let Some(f) = &self.factors[m] {
                let (nt, nd) = mode_product(z, &zd, i, f.val());
                z = nt;
                zd = nd;
            }
        }
        Ok(z.reshape([batch, zd.iter().product::<usize>()]))
    }
}
