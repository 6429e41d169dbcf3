//! Run-time backend selection (`--backend ndarray|wgpu|cuda`), each behind its cargo feature.
use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Ndarray,
    Wgpu,
    Cuda,
}

impl BackendKind {
    pub fn name(&self) -> &'static str {
        match self {
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }
    pub fn feature_missing(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "backend `{}` is not compiled in; rebuild with `cargo build --release -p lorta-experiments --features {}`",
            self.name(),
            self.name()
        )
    }
}

#[cfg(feature = "ndarray")]
pub type NdArray = burn_ndarray::NdArray<f32>;
#[cfg(feature = "wgpu")]
pub type Wgpu = burn_wgpu::Wgpu<f32, i32>;
#[cfg(feature = "cuda")]
pub type Cuda = burn_cuda::Cuda<f32, i32>;

/// Runs `$body` with `$B` bound to the selected (inference) backend type and `$device` to its
/// default device: `with_backend!(kind, |B, device| run::<B>(&device))`.
#[macro_export]
macro_rules! with_backend {
    ($kind:expr, |$B:ident, $device:ident| $body:expr) => {{
        match $kind {
            #[cfg(feature = "ndarray")]
            $crate::backend::BackendKind::Ndarray => {
                type $B = $crate::backend::NdArray;
                let $device: burn::tensor::Device<$B> = Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            $crate::backend::BackendKind::Wgpu => {
                type $B = $crate::backend::Wgpu;
                let $device: burn::tensor::Device<$B> = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::BackendKind::Cuda => {
                type $B = $crate::backend::Cuda;
                let $device: burn::tensor::Device<$B> = Default::default();
                $body
            }
            #[allow(unreachable_patterns)]
            other => Err(other.feature_missing()),
        }
    }};
}

/// Device memory `(bytes in use, bytes reserved)` of the selected backend's default device, where
/// the runtime reports it (CubeCL backends); `None` on ndarray.
pub fn memory_usage(kind: BackendKind) -> Option<(u64, u64)> {
    match kind {
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            use cubecl::Runtime;
            let client = cubecl::cuda::CudaRuntime::client(&Default::default());
            client.memory_usage().ok().map(|m| (m.bytes_in_use, m.bytes_reserved))
        }
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => {
            use cubecl::Runtime;
            let client = cubecl::wgpu::WgpuRuntime::client(&Default::default());
            client.memory_usage().ok().map(|m| (m.bytes_in_use, m.bytes_reserved))
        }
        _ => None,
    }
}

/// Points CubeCL's on-disk caches (compiled kernels as PTX on CUDA, autotune results) at `dir`, so
/// a later run on the same GPU skips the first-step kernel compilation. Settings from a
/// `cubecl.toml` in the working directory and `CUBECL_*` variables are kept. Must run before the
/// first use of a CubeCL device; a no-op without the wgpu/cuda features.
pub fn set_kernel_cache(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("--kernel-cache {}: {e}", dir.display()))?;
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    {
        use cubecl::config::{cache::CacheConfig, CubeClRuntimeConfig, RuntimeConfig};
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        let dir = dir.canonicalize().map_err(|e| anyhow::anyhow!("--kernel-cache {}: {e}", dir.display()))?;
        config.compilation.cache = Some(CacheConfig::File(dir.clone()));
        config.autotune.cache = CacheConfig::File(dir);
        std::panic::catch_unwind(|| CubeClRuntimeConfig::set(config))
            .map_err(|_| anyhow::anyhow!("--kernel-cache: CubeCL was configured before the option was read"))?;
    }
    Ok(())
}
