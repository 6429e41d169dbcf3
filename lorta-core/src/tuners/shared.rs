//! Small pieces every method uses: site indexing, scaling, shape checks.
use crate::matmul::matmul;
use crate::site::{MatrixKind, ModelShape, Site};
use crate::{CoreError, Result};

/// Index of a site in per-site parameter lists: `layer · |targets| + position of kind`.
pub(crate) fn site_index(targets: &[MatrixKind], layers: usize, site: Site) -> Option<usize> {
    if site.layer >= layers {
        return None;
    }
    targets.iter().position(|&k| k == site.kind).map(|p| site.layer * targets.len() + p)
}

/// LoRA-family scaling: α/r, or α/√r with rsLoRA.
pub(crate) fn scaling(alpha: f64, r: usize, rslora: bool) -> f64 {
    if rslora {
        alpha / (r as f64).sqrt()
    } else {
        alpha / r as f64
    }
}

pub(crate) fn check_rank(r: usize) -> Result<()> {
    if r == 0 {
        return Err(CoreError::config("rank must be at least 1"));
    }
    Ok(())
}

pub(crate) fn check_targets(targets: &[MatrixKind], allowed: &[MatrixKind], method: &str) -> Result<()> {
    if targets.is_empty() {
        return Err(CoreError::config(format!("{method}: no target matrices given")));
    }
    for (i, t) in targets.iter().enumerate() {
        if !allowed.contains(t) {
            return Err(CoreError::config(format!("{method} cannot adapt {t:?} matrices")));
        }
        if targets[..i].contains(t) {
            return Err(CoreError::config(format!("{method}: target {t:?} listed twice")));
        }
    }
    Ok(())
}

/// Methods that stack all adapted matrices into one tensor need them square (d × d).
pub(crate) fn check_square(shape: &ModelShape, targets: &[MatrixKind], method: &str) -> Result<()> {
    for &k in targets {
        let (i, o) = shape.dims(k);
        if i != shape.hidden || o != shape.hidden {
            return Err(CoreError::config(format!(
                "{method} shares factors across matrices and needs every target to be {d}×{d}; \
                 {k:?} is {o}×{i} (grouped-query attention?)",
                d = shape.hidden
            )));
        }
    }
    Ok(())
}

pub(crate) fn default_alpha() -> f64 {
    8.0
}
pub(crate) fn default_targets() -> Vec<MatrixKind> {
    MatrixKind::ATTENTION.to_vec()
}

use burn::tensor::{backend::Backend, Tensor};

/// Rank-space update of a Tucker-2 slice: Δy = x·U_in·Gᵀ·U_outᵀ for ΔW = U_out·G·U_inᵀ.
pub(crate) fn tucker2_delta<B: Backend>(
    x: Tensor<B, 2>,
    u_out: Tensor<B, 2>,
    core: Tensor<B, 2>,
    u_in: Tensor<B, 2>,
) -> Tensor<B, 2> {
    matmul(matmul(matmul(x, u_in), core.transpose()), u_out.transpose())
}

/// Dense ΔW = U_out·G·U_inᵀ (`[out, in]`).
pub(crate) fn tucker2_dense<B: Backend>(
    u_out: Tensor<B, 2>,
    core: Tensor<B, 2>,
    u_in: Tensor<B, 2>,
) -> Tensor<B, 2> {
    matmul(matmul(u_out, core), u_in.transpose())
}

pub(crate) fn one() -> f64 {
    1.0
}
