//! Backend-agnostic tensor decompositions and the parameter-efficient adapters built on them.
//!
//! Layout (one concept per module):
//! - [`decomp`]: CP, Tucker / Tucker-2 and tensor-train tensors: reconstruct, contract without
//!   materialising, count parameters.
//! - [`tuners`]: one folder per adapter method (LoRA, LoRTA, VeRA, IA3, FacT-TT/TK, LoTR,
//!   LoReTTA), all implementing [`tuners::Adapter`]; [`tuners::AdapterSet`] is the enum models hold.
//! - [`site`]: where adapters attach (layer × matrix kind) and the model shapes they need.
//! - [`io`]: safetensors tensor maps and adapter folders (PEFT layout and the paper's LoRTA layout).
//! - [`params`]: trainable-parameter counting.
//! - [`matmul`]: the matrix product every model and adapter uses (f32-exact on TF32 hardware).
//! - [`fused`]: layer operations with a hand-written backward (one autodiff node each; RMSNorm).
//! - [`flat_join`]: many tensors as one flat tensor in few launches (the flat-buffer AdamW).
//! - [`shapes`]: equivalent shapes for products and reductions that untuned GPU kernels run slowly.
//! - `cube_matmul` (feature `cubecl`): products on CubeCL backends through a kernel chosen per shape.

mod backend_registry;
#[cfg(feature = "cubecl")]
pub mod cube_matmul;
pub mod decomp;
pub mod error;
pub mod flat_join;
pub mod fused;
pub mod init;
pub mod io;
pub mod log_softmax;
pub mod matmul;
pub mod params;
pub mod shapes;
pub mod site;
pub mod tuners;

#[cfg(test)]
pub(crate) mod test_util;

pub use error::{CoreError, Result};
pub use site::{ArchNaming, MatrixKind, ModelShape, Site};
pub use tuners::{Adapter, AdapterConfig, AdapterSet, AdapterStep, Method};
