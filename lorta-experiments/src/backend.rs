//! Run-time backend selection (`--backend ndarray|wgpu|cuda`), each behind its cargo feature, and
//! the options every GPU run shares ([`ComputeArgs`]: compute dtype, kernel cache, TF32).
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{bail, Result};
use burn::tensor::DType;
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

/// GPU options of every command that runs a model (kernel cache, TF32).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GpuArgs {
    /// Folder where compiled GPU kernels (CUDA PTX, wgpu SPIR-V) and autotune results are kept
    /// between runs, so only the first run on a machine compiles them. Default:
    /// $LORTA_KERNEL_CACHE, else $XDG_CACHE_HOME/lorta/kernels, else ~/.cache/lorta/kernels.
    #[arg(long)]
    pub kernel_cache: Option<PathBuf>,
    /// CUDA with `--dtype f32`: let f32 matmuls run as single TF32 tensor-core products (faster,
    /// ~1e-4 relative error). Without it, f32 matmuls are accurate to ~1e-6 (3xTF32: operands
    /// split into TF32-exact high parts and remainders, three products as one). With `--dtype bf16`/`f16` the
    /// f32 adapter products are TF32 anyway: 2⁻¹¹ relative, finer than the half-precision base
    /// output they are added to (PyTorch autocast runs them in bf16).
    #[arg(long)]
    pub tf32: bool,
    /// GPU matmul kernels: `auto` (CUDA's default: CubeCL's warp-specialised tensor-core kernels
    /// for 2-D bf16/f16 products of 128–4096 rows, e.g. LLM steps at 128 tokens, GLUE batches of
    /// 32 × 128, and for exact-f32 products; other products keep burn's kernels), `default` (burn's
    /// selection everywhere; wgpu's default), or a comma list of specialized_tma_mma,
    /// specialized_cyclic_mma, double_cyclic_mma, simple_cyclic_mma, simple_unit, tried in order
    /// for every product (experimental: batched products went NaN). Default: $LORTA_MATMUL_KERNEL,
    /// else as said.
    #[arg(long)]
    pub matmul_kernel: Option<String>,
}

impl GpuArgs {
    /// The kernel cache folder of `kind` (see `--kernel-cache`).
    pub fn kernel_cache_dir(&self, kind: BackendKind) -> Option<PathBuf> {
        if let Some(d) = &self.kernel_cache {
            return Some(d.clone());
        }
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = env("LORTA_KERNEL_CACHE")
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("lorta").join("kernels")))
            .or_else(|| env("HOME").map(|d| d.join(".cache").join("lorta").join("kernels")))?;
        Some(root.join(kind.name()))
    }

    /// Readies `kind` for a run in `dtype`: checks the combination, points the kernel caches at
    /// their folder, sets the f32 matmul precision and checks that the device can be opened (a
    /// clear error instead of a panic inside the runtime). Call before the first use of the
    /// device; later calls in the same process only re-check.
    pub fn prepare(&self, kind: BackendKind, dtype: DType) -> Result<()> {
        if kind == BackendKind::Ndarray && !matches!(dtype, DType::F32 | DType::F64) {
            bail!("--dtype {:?}: the ndarray backend computes in f32 only; use --dtype f32, or --backend cuda (bf16, f16) or wgpu (f16)", dtype);
        }
        if kind == BackendKind::Wgpu && dtype == DType::BF16 {
            // CubeCL's WGSL compiler has no bf16 type (it panics inside the runtime otherwise);
            // bf16 through the SPIR-V one (Vulkan) is untested, so refused there too
            bail!("--dtype bf16: the wgpu backend has no bf16 kernels; use --dtype f16 or f32 on wgpu, or --backend cuda");
        }
        if kind == BackendKind::Ndarray && self.matmul_kernel.is_some() {
            bail!("--matmul-kernel picks GPU kernels (cuda, wgpu); the ndarray backend has one matmul");
        }
        static PREPARED: Mutex<Option<BackendKind>> = Mutex::new(None);
        let mut done = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = *done {
            if k != kind {
                bail!("backend {} was already used in this process; one process runs one backend", k.name());
            }
            return Ok(());
        }
        lorta_models::nn::set_exact_f32_matmul(exact_f32_products(kind, dtype, self.tf32));
        lorta_models::nn::set_shape_rewrites(kind != BackendKind::Ndarray);
        #[cfg(any(feature = "cuda", feature = "wgpu"))]
        self.route_matmuls(kind)?;
        lorta_models::dropout::set_host_masks(kind == BackendKind::Ndarray);
        register_fused_ops(kind);
        if kind != BackendKind::Ndarray {
            if let Some(dir) = self.kernel_cache_dir(kind) {
                set_kernel_cache(&dir)?;
                if kind == BackendKind::Cuda && std::env::var_os("CUDA_CACHE_PATH").is_none() {
                    // the driver's PTX → SASS cache, beside CubeCL's PTX cache
                    std::env::set_var("CUDA_CACHE_PATH", dir.join("nv"));
                    std::env::set_var("CUDA_CACHE_MAXSIZE", "4294967296");
                }
            }
            probe_device(kind)?;
        }
        *done = Some(kind);
        Ok(())
    }
}

impl GpuArgs {
    /// `--matmul-kernel`, else `$LORTA_MATMUL_KERNEL`, else `auto` on CUDA and `default` on wgpu
    /// (its Vulkan path has not been measured with the other kernels).
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    pub fn matmul_kernels(&self, kind: BackendKind) -> Result<lorta_core::cube_matmul::KernelChoice> {
        use lorta_core::cube_matmul::KernelChoice;
        let env = std::env::var("LORTA_MATMUL_KERNEL").ok();
        let (spec, source) = match (&self.matmul_kernel, env) {
            (Some(spec), _) => (spec.clone(), "--matmul-kernel"),
            (None, Some(spec)) => (spec, "LORTA_MATMUL_KERNEL"),
            (None, None) => return Ok(if kind == BackendKind::Cuda { KernelChoice::Auto } else { KernelChoice::Default }),
        };
        let choice = KernelChoice::parse(&spec).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
        Ok(if choice == KernelChoice::Auto && kind != BackendKind::Cuda { KernelChoice::Default } else { choice })
    }

    /// The kernel choice as recorded in results: `auto`, `default` or the list; `-` on ndarray.
    pub fn matmul_kernel_label(&self, kind: BackendKind) -> String {
        #[cfg(any(feature = "cuda", feature = "wgpu"))]
        if kind != BackendKind::Ndarray {
            return self.matmul_kernels(kind).map(|c| c.to_string()).unwrap_or_else(|e| format!("invalid: {e}"));
        }
        let _ = kind;
        "-".to_string()
    }

    /// Registers the chosen matmul kernels for `kind`'s backend types (see `lorta_core::cube_matmul`).
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    fn route_matmuls(&self, kind: BackendKind) -> Result<()> {
        use lorta_core::cube_matmul::{self, KernelChoice};
        let choice = self.matmul_kernels(kind)?;
        let route = choice != KernelChoice::Default;
        cube_matmul::set_kernels(choice);
        // the exact f32 product as one operation, whatever the kernel choice (`LORTA_EXACT_MATMUL_OP=0`:
        // the composite of ~15 operations, for A/B runs)
        let exact_op = std::env::var("LORTA_EXACT_MATMUL_OP").map_or(true, |v| v.trim() != "0");
        // the optimizer's gradient join in a few launches (`LORTA_FLAT_JOIN=0`: burn's `cat`, one
        // launch per parameter, for A/B runs)
        let flat_join = std::env::var("LORTA_FLAT_JOIN").map_or(true, |v| v.trim() != "0");
        match kind {
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => {
                cube_matmul::register_runtime::<cubecl::cuda::CudaRuntime, f32, i32, u8>(route, exact_op);
                if flat_join {
                    lorta_core::flat_join::cube::register::<cubecl::cuda::CudaRuntime, f32, i32, u8>(32);
                }
            }
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => {
                cube_matmul::register_runtime::<cubecl::wgpu::WgpuRuntime, f32, i32, u32>(route, exact_op);
                if flat_join {
                    // one storage binding per part: 8 stays within what Vulkan adapters allow
                    lorta_core::flat_join::cube::register::<cubecl::wgpu::WgpuRuntime, f32, i32, u32>(7);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Options shared by the commands that train: compute dtype, padding, GPU options.
#[derive(clap::Args, Debug, Clone)]
pub struct ComputeArgs {
    /// Compute dtype of the frozen base model: f32, bf16 or f16. Trainable adapters, the task
    /// head and the optimizer state stay in f32 (mixed precision). ndarray: f32 only.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Round padded sequence lengths up to a multiple of N, so a GPU sees few distinct shapes
    /// (default: 16 on GPU backends, 1 on ndarray).
    #[arg(long)]
    pub pad_to_multiple: Option<usize>,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

impl Default for ComputeArgs {
    fn default() -> Self {
        ComputeArgs { dtype: "f32".to_string(), pad_to_multiple: None, gpu: GpuArgs::default() }
    }
}

impl ComputeArgs {
    /// The compute dtype (f32, bf16 or f16).
    pub fn dtype(&self) -> Result<DType> {
        match lorta_models::load::parse_dtype(&self.dtype) {
            Some(d @ (DType::F32 | DType::BF16 | DType::F16)) => Ok(d),
            _ => bail!("--dtype `{}`: expected f32, bf16 or f16", self.dtype),
        }
    }

    pub fn pad_to_multiple(&self, kind: BackendKind) -> usize {
        pad_multiple(kind, self.pad_to_multiple)
    }

    /// See [`GpuArgs::prepare`].
    pub fn prepare(&self, kind: BackendKind, dtype: DType) -> Result<()> {
        self.gpu.prepare(kind, dtype)
    }
}

/// Layer operations with a hand-written backward (`lorta_core::fused`) for `kind`'s backend and
/// its autodiff wrapper: fewer operations per step, which is what bounds a GPU step's host time.
fn register_fused_ops(kind: BackendKind) {
    match kind {
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => lorta_core::fused::register::<NdArray>(),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => lorta_core::fused::register::<Wgpu>(),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => lorta_core::fused::register::<Cuda>(),
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

/// Whether f32 products take the split (exact) form: on CUDA (whose f32 matmul is TF32) in f32
/// runs unless `--tf32`. In half-precision runs only the small f32 adapter products are f32, and
/// their TF32 error (2⁻¹¹) is below the bf16/f16 rounding of the base output they join; the
/// split would cost four extra products per adapter product for nothing measurable.
fn exact_f32_products(kind: BackendKind, dtype: DType, tf32: bool) -> bool {
    kind == BackendKind::Cuda && !tf32 && dtype == DType::F32
}

/// `--pad-to-multiple`: the given value, else 16 on GPU backends (few distinct shapes to compile
/// and tune) and 1 on ndarray.
pub fn pad_multiple(kind: BackendKind, explicit: Option<usize>) -> usize {
    explicit.unwrap_or(if kind == BackendKind::Ndarray { 1 } else { 16 }).max(1)
}

/// Opens the default device of `kind`, turning a runtime panic (no driver, no adapter) into an
/// error that says what to install.
pub fn probe_device(kind: BackendKind) -> Result<()> {
    let open = move || -> Result<()> {
        match kind {
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => {
                use cubecl::Runtime;
                let _ = cubecl::cuda::CudaRuntime::client(&Default::default());
                Ok(())
            }
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => {
                use cubecl::Runtime;
                let _ = cubecl::wgpu::WgpuRuntime::client(&Default::default());
                Ok(())
            }
            BackendKind::Ndarray => Ok(()),
            #[allow(unreachable_patterns)]
            other => Err(other.feature_missing()),
        }
    };
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(open);
    std::panic::set_hook(hook);
    match result {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let help = match kind {
                BackendKind::Wgpu => {
                    "wgpu needs a Vulkan loader and driver: install libvulkan1 plus a driver (the GPU vendor's, or \
                     mesa-vulkan-drivers for the lavapipe CPU driver); with an NVIDIA driver outside the system paths \
                     set VK_DRIVER_FILES to its nvidia_icd.json"
                }
                BackendKind::Cuda => "cuda needs an NVIDIA GPU and its driver (libcuda.so); check `nvidia-smi`",
                BackendKind::Ndarray => "",
            };
            bail!("backend `{}`: no usable device ({}). {help}; or run with --backend ndarray", kind.name(), what.trim())
        }
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
        let mut config = read_cubecl_toml(|| CubeClRuntimeConfig::from_current_dir().override_from_env())?;
        let dir = dir.canonicalize().map_err(|e| anyhow::anyhow!("--kernel-cache {}: {e}", dir.display()))?;
        config.compilation.cache = Some(CacheConfig::File(dir.clone()));
        config.autotune.cache = CacheConfig::File(dir);
        std::panic::catch_unwind(|| CubeClRuntimeConfig::set(config))
            .map_err(|_| anyhow::anyhow!("--kernel-cache: CubeCL was configured before the option was read"))?;
    }
    Ok(())
}

/// Runs CubeCL's reader of `cubecl.toml` (the working directory's or a parent's), which panics on
/// a file it cannot parse, and turns that panic into an error naming the file and the problem.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn read_cubecl_toml<T>(read: impl FnOnce() -> T + std::panic::UnwindSafe) -> anyhow::Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(read);
    std::panic::set_hook(hook);
    result.map_err(|payload| {
        let what = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("unreadable");
        let cwd = std::env::current_dir().map_or_else(|_| "the working directory".into(), |d| d.display().to_string());
        anyhow::anyhow!("cubecl.toml (CubeCL's settings, read from {cwd} or a parent folder): {what}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unsupported backend/dtype pairs are refused before any device is touched.
    #[test]
    fn prepare_refuses_dtypes_a_backend_lacks() {
        let gpu = GpuArgs::default();
        let err = gpu.prepare(BackendKind::Ndarray, DType::BF16).unwrap_err().to_string();
        assert!(err.contains("ndarray") && err.contains("f32 only"), "{err}");
        let err = gpu.prepare(BackendKind::Wgpu, DType::BF16).unwrap_err().to_string();
        assert!(err.contains("wgpu") && err.contains("bf16") && err.contains("f16"), "{err}");
        let kernels = GpuArgs { matmul_kernel: Some("auto".into()), ..GpuArgs::default() };
        let err = kernels.prepare(BackendKind::Ndarray, DType::F32).unwrap_err().to_string();
        assert!(err.contains("--matmul-kernel") && err.contains("ndarray"), "{err}");
    }

    /// `--matmul-kernel` over `LORTA_MATMUL_KERNEL`; `auto` only on CUDA; bad names name the flag.
    #[cfg(feature = "wgpu")]
    #[test]
    fn matmul_kernel_choice_by_backend_and_flag() {
        use lorta_core::cube_matmul::{Kernel, KernelChoice};
        let flag = |spec: &str| GpuArgs { matmul_kernel: Some(spec.into()), ..GpuArgs::default() };
        assert_eq!(flag("auto").matmul_kernels(BackendKind::Wgpu).unwrap(), KernelChoice::Default);
        assert_eq!(flag("auto").matmul_kernels(BackendKind::Cuda).unwrap(), KernelChoice::Auto);
        assert_eq!(flag("simple_unit").matmul_kernels(BackendKind::Wgpu).unwrap(), KernelChoice::List(vec![Kernel::SimpleUnit]));
        let err = flag("fast").matmul_kernels(BackendKind::Cuda).unwrap_err().to_string();
        assert!(err.contains("--matmul-kernel") && err.contains("fast"), "{err}");
    }

    /// CubeCL panics on a `cubecl.toml` it cannot parse: that becomes an error naming the file.
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    #[test]
    fn unreadable_cubecl_toml_is_an_error_naming_the_file() {
        assert_eq!(read_cubecl_toml(|| 7).unwrap(), 7);
        let err = read_cubecl_toml(|| -> u8 { panic!("The file provided doesn't have the right format => unknown variant `file`") })
            .unwrap_err()
            .to_string();
        assert!(err.contains("cubecl.toml") && err.contains("unknown variant `file`"), "{err}");
    }

    /// The split f32 product is for f32 runs on CUDA without `--tf32`, nothing else.
    #[test]
    fn exact_products_only_for_cuda_f32() {
        assert!(exact_f32_products(BackendKind::Cuda, DType::F32, false));
        assert!(!exact_f32_products(BackendKind::Cuda, DType::F32, true));
        assert!(!exact_f32_products(BackendKind::Cuda, DType::BF16, false));
        assert!(!exact_f32_products(BackendKind::Cuda, DType::F16, false));
        assert!(!exact_f32_products(BackendKind::Wgpu, DType::F32, false));
        assert!(!exact_f32_products(BackendKind::Ndarray, DType::F32, false));
    }
}
