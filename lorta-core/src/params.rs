//! Parameter counting: instantiate the adapters on the real shapes and count their trainable
//! parameters (no model weights needed). The closed-form formulas of the paper live in the
//! tests only, as an independent check.
use burn::module::Module;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::site::ModelShape;
use crate::tuners::AdapterConfig;
use crate::Result;

/// One row of a parameter table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamRow {
    pub method: String,
    pub model: String,
    pub matrices: usize,
    pub rank: Option<usize>,
    pub params: usize,
}

/// Trainable parameters of `config` on `shape`, by instantiating it on `device`.
pub fn count_trainable<B: Backend>(config: &AdapterConfig, shape: &ModelShape, device: &B::Device) -> Result<usize> {
    let set = config.init::<B>(shape, 0, device)?;
    Ok(set.num_params())
}
