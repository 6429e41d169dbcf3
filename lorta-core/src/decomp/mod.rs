//! Tensor decompositions of any order, generic over the burn backend.
//!
//! Dense tensors of arbitrary order are handled *matricized*: a `Tensor<B, 2>` of shape
//! `[batch, prod(dims)]` in row-major order plus the list of mode sizes. This keeps every op
//! on static-rank burn tensors while supporting any order.
//!
//! Each format offers: construction from factors, [`init`](CpTensor::init), parameter count,
//! `reconstruct` (the full tensor) and `contract` (multiply an input along chosen modes
//! without ever building the full tensor).

mod cp;
mod dense;
mod tt;
mod tucker;

pub use cp::CpTensor;
pub use dense::{mode_product, move_mode_last, permute_modes};
pub use tt::TtTensor;
pub use tucker::Tucker;

use crate::{CoreError, Result};

/// Checks that `modes` is strictly increasing and in range, and splits the dimensions into
/// (chosen, rest).
pub(crate) fn split_modes(dims: &[usize], modes: &[usize]) -> Result<(Vec<usize>, Vec<usize>)> {
    for w in modes.windows(2) {
        if w[0] >= w[1] {
            return Err(CoreError::config(format!(
                "contraction modes must be strictly increasing, got {modes:?}"
            )));
        }
    }
    if let Some(&m) = modes.iter().find(|&&m| m >= dims.len()) {
        return Err(CoreError::config(format!(
            "contraction mode {m} out of range for a tensor of order {}",
            dims.len()
        )));
    }
    let chosen = modes.to_vec();
    let rest = (0..dims.len()).filter(|m| !modes.contains(m)).collect();
    Ok((chosen, rest))
}

pub(crate) fn check_input_width(x_width: usize, dims: &[usize], modes: &[usize]) -> Result<()> {
    let expected: usize = modes.iter().map(|&m| dims[m]).product();
    if x_width != expected {
        return Err(CoreError::Shape {
            name: format!("contraction input over modes {modes:?}"),
            expected: vec![expected],
            found: vec![x_width],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
