//! Matrix products on CubeCL backends through a matmul kernel chosen for the shape, instead of
//! the one burn-cubecl 0.21 launches without autotuning (CubeCL's simple cyclic CMMA kernel).
//!
//! Measured on an H200 (`lorta-bench`'s `matmul-strategies`, bf16,
//! lorta-experiments/measurements/h200-2026-11-30-s10): the default kernel takes 2–5× the time
//! of CubeCL's specialized (warp-specialised, TMA-loaded, PTX `mma`) kernel on every product of
//! our training steps, e.g. 128×4096×11008 0.65 vs 0.14 ms, 4096×768×768 0.39 vs 0.08 ms, with
//! the same output bits. Where that pays in a training step, see [`AUTO_ROWS`].
//! Autotuning finds those kernels too but compiles ~20 candidates per shape (a 5–6 minute first
//! step on LLaMA-2-7B); here a short fixed list is tried in order and the first one that accepts
//! the problem runs (no benchmarking, one compilation per shape).
//!
//! Wiring: [`register`] puts [`CubeMatmul::matmul`] of a runtime's backend types (plain,
//! fusion, and both under autodiff) into [`crate::shapes`]'s kernel table, so every product of
//! the models and adapters takes it. Under autodiff the backward products take it too. Fusion
//! sees the product as one custom operation (nothing fuses into it).
//!
//! Which kernels: [`set_kernels`] or `LORTA_MATMUL_KERNEL` (read once): `default` (burn's own
//! selection), `auto` (the lists below for bf16/f16 products, and for f32 ones only in exact-f32
//! runs, where the split of [`crate::matmul`] makes every tensor-core kernel exact enough; other
//! f32 products keep burn's kernel but take our backward, see `auto_owns`), or a comma list of
//! kernel names tried in order on products of any dtype (for measurements and tests).
//!
//! Few-row bf16/f16 products with a long inner dimension (LLM steps at short sequences) can run
//! as split-K products under `auto` ([`split_k`]: chunks of the inner dim as one batched product
//! with f32 partial sums, then their sum): off by default (no gain measured in a training step),
//! `LORTA_SPLIT_K=auto|all` or [`set_split_k`] for experiments.
//!
//! The exact f32 product itself is one operation here too ([`CubeMatmul::matmul_exact`],
//! [`register_exact`]): the operands' 3xTF32 split (`tf32_split`) and one product over the
//! tripled inner dim inside one fusion operation and one autodiff node.
use crate::shapes::{register_matmul_kernel, register_matmul_kernel_splitting, MatmulKernel};
use burn::tensor::{ops::{FloatTensor, FloatTensorOps}, DType, Shape, TensorMetadata};
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{binary, Backward, Ops, OpsKind};
use burn_autodiff::{Autodiff, NodeId};
use burn_cubecl::fusion::FusionCubeRuntime;
use burn_cubecl::kernel::matmul::init_matmul_output;
use burn_cubecl::{tensor::CubeTensor, BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{client::GlobalFusionClient, Fusion, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};
use cubek::matmul::components::tile::TileMatmulKind;
use cubek::matmul::definition::{MatmulElems, MatmulGlobalElems};
use cubek::matmul::launch::Strategy;
use cubek::matmul::routines::{
    double_buffering::DoubleBufferingArgs, ordered_double_buffering::OrderedSelectionArgs, simple::SimpleArgs, BlueprintStrategy,
};
use cubek::std::InputBinding;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Mutex, OnceLock, RwLock};

mod split_k;
mod tf32_split;

pub use split_k::{set_split_k, split_k_products, SplitK};

/// A kernel the products may take, by the name `matmul-strategies` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Warp-specialised, TMA loads (Hopper and later): best or within 10 % of best on 11 of the
    /// 12 products surveyed.
    SpecializedTmaMma,
    /// The same without TMA (any tensor-core GPU).
    SpecializedCyclicMma,
    DoubleCyclicMma,
    /// Double buffering with ordered loading, 8 rows of planes, partition k 2: the fastest on
    /// products whose right side is column-major (a frozen `[out, in]` weight read as `Wᵀ`).
    OrderedDoubleMma,
    SimpleCyclicMma,
    /// One product per unit, no tensor cores: runs everywhere (tests on lavapipe).
    SimpleUnit,
}

impl Kernel {
    pub const ALL: [Kernel; 6] = [
        Kernel::SpecializedTmaMma,
        Kernel::SpecializedCyclicMma,
        Kernel::DoubleCyclicMma,
        Kernel::OrderedDoubleMma,
        Kernel::SimpleCyclicMma,
        Kernel::SimpleUnit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kernel::SpecializedTmaMma => "specialized_tma_mma",
            Kernel::SpecializedCyclicMma => "specialized_cyclic_mma",
            Kernel::DoubleCyclicMma => "double_cyclic_mma",
            Kernel::OrderedDoubleMma => "ordered_double_mma_r8",
            Kernel::SimpleCyclicMma => "simple_cyclic_mma",
            Kernel::SimpleUnit => "simple_unit",
        }
    }

    fn strategy(self) -> Strategy {
        match self {
            Kernel::SpecializedTmaMma => Strategy::SpecializedTmaMma(BlueprintStrategy::Inferred(().into())),
            Kernel::SpecializedCyclicMma => Strategy::SpecializedCyclicMma(BlueprintStrategy::Inferred(().into())),
            Kernel::DoubleCyclicMma => {
                Strategy::DoubleCyclicMma(BlueprintStrategy::Inferred(DoubleBufferingArgs { specialized: false, tile_matmul: TileMatmulKind::Mma }))
            }
            Kernel::OrderedDoubleMma => Strategy::OrderedDoubleMma(BlueprintStrategy::Inferred(OrderedSelectionArgs {
                partition_k: Some(2),
                row_count: Some(8),
                rows_per_plane: Some(2),
                tile_matmul: TileMatmulKind::Mma,
            })),
            Kernel::SimpleCyclicMma => {
                Strategy::SimpleCyclicMma(BlueprintStrategy::Inferred(SimpleArgs { multi_rows: false, tile_matmul: TileMatmulKind::Mma }))
            }
            Kernel::SimpleUnit => Strategy::SimpleUnit(BlueprintStrategy::Inferred(Default::default())),
        }
    }

    /// TMA reads whole tiles through a tensor map: row strides must be 16-byte multiples.
    fn needs_tma(self) -> bool {
        self == Kernel::SpecializedTmaMma
    }

    /// Whether the kernel reads column-major operands of batched products correctly. The cyclic
    /// and double-buffered tensor-core kernels do not (cubek 0.2, H200, measurements
    /// h200-2026-11-30-s11: `32x12x128x32x128t` and `384x128x32x128t` off by 100–470 % against an
    /// exact product, their 2-D counterparts exact to bf16 rounding); the TMA and unit kernels do.
    fn reads_batched_column_major(self) -> bool {
        matches!(self, Kernel::SpecializedTmaMma | Kernel::SimpleUnit)
    }

    /// Whether the kernel may run a problem of this rank and these layouts (`true`: column-major).
    fn accepts(self, batched: bool, lhs_col: bool, rhs_col: bool, tma_allowed: bool) -> bool {
        (!self.needs_tma() || tma_allowed) && (!batched || !(lhs_col || rhs_col) || self.reads_batched_column_major())
    }
}

/// Which kernels the products try, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    /// burn's own selection (no routing).
    Default,
    /// [`AUTO`] on rank-2 bf16/f16 products with [`AUTO_ROWS`] rows, burn's own on the others.
    Auto,
    /// These kernels in order, any dtype; burn's own when none accepts the problem.
    List(Vec<Kernel>),
}

/// The lists `auto` tries (H200 survey, measurements h200-2026-11-30-s10 and -s11): on a
/// row-major right side the specialized kernels, then double buffering for GPUs without TMA ...
pub const AUTO: [Kernel; 3] = [Kernel::SpecializedTmaMma, Kernel::SpecializedCyclicMma, Kernel::DoubleCyclicMma];
/// ... on a column-major one (`x·Wᵀ` with a frozen `[out, in]` weight, every forward product of
/// a linear layer) ordered double buffering first: 128×4096×4096ᵀ 0.109 ms vs 0.182 (TMA) and
/// 0.168 (burn's), where the specialized cyclic kernel takes 0.90 ...
pub const AUTO_COLUMN_MAJOR_RHS: [Kernel; 3] = [Kernel::OrderedDoubleMma, Kernel::SpecializedTmaMma, Kernel::DoubleCyclicMma];
/// ... except for the exact f32 products' TF32 parts (4,096 rows, tripled inner dim), where the
/// TMA kernel is the faster one on a column-major right side too: `[4096, 9216]·[9216, 768]ᵀ`
/// 0.771 vs 1.190 ms, `[4096, 2304]·[2304, 3072]ᵀ` 0.782 vs 0.983, `[4096, 2304]·[2304, 768]ᵀ`
/// 0.376 vs 0.369 (H200, measurements h200-2026-11-30-s16, call 1).
pub const AUTO_COLUMN_MAJOR_RHS_F32: [Kernel; 3] = [Kernel::SpecializedTmaMma, Kernel::OrderedDoubleMma, Kernel::DoubleCyclicMma];
/// ... on rank-2 products with this many rows (tokens). Measured on an H200, routed vs burn's
/// own in one call: LLaMA-2-7B bf16 at 128 tokens LoRA r4 159.8 vs 246.7 ms per step, LoRTA r4
/// 133.8 vs 242.8 (measurements/h200-2026-11-30-s11); GLUE batches of 32 × 128 = 4,096 rows,
/// RoBERTa-base bf16 31.4 / 38.0 vs 43.9 / 43.5 ms per step (h200-2026-11-30-s16, call 7; 48.8
/// vs 51.0 in session 14, before the fused layer operations took other costs out of the step).
/// `LORTA_MATMUL_AUTO_MAX_ROWS` moves the upper end. Batched products (attention) keep burn's
/// kernel: it is as fast on them, and the cyclic tensor-core kernels misread their column-major
/// operands (`Kernel::accepts`).
pub const AUTO_ROWS: std::ops::RangeInclusive<usize> = 128..=4096;

impl KernelChoice {
    /// `default`, `auto` or a comma list of kernel names.
    pub fn parse(spec: &str) -> Result<KernelChoice, String> {
        match spec.trim() {
            "default" | "none" => Ok(KernelChoice::Default),
            "" | "auto" => Ok(KernelChoice::Auto),
            list => list
                .split(',')
                .map(|name| {
                    Kernel::ALL.into_iter().find(|k| k.name() == name.trim()).ok_or_else(|| {
                        let names: Vec<_> = Kernel::ALL.iter().map(|k| k.name()).collect();
                        format!("unknown matmul kernel `{}` (default, auto, or a comma list of: {})", name.trim(), names.join(", "))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(KernelChoice::List),
        }
    }
}

impl std::fmt::Display for KernelChoice {
    /// The form [`KernelChoice::parse`] reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelChoice::Default => f.write_str("default"),
            KernelChoice::Auto => f.write_str("auto"),
            KernelChoice::List(list) => f.write_str(&list.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")),
        }
    }
}

fn choice_cell() -> &'static RwLock<Option<KernelChoice>> {
    static CHOICE: RwLock<Option<KernelChoice>> = RwLock::new(None);
    &CHOICE
}

/// Sets the kernels for the whole process (overrides `LORTA_MATMUL_KERNEL`).
pub fn set_kernels(choice: KernelChoice) {
    *choice_cell().write().unwrap_or_else(|e| e.into_inner()) = Some(choice);
    decisions().lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// The active choice: [`set_kernels`]'s, else `LORTA_MATMUL_KERNEL`'s, else `auto`. An invalid
/// variable is reported once on stderr and means `default` (a measurement must not silently
/// run another kernel than asked for, nor stop a long run).
pub fn kernels() -> KernelChoice {
    if let Some(c) = choice_cell().read().unwrap_or_else(|e| e.into_inner()).clone() {
        return c;
    }
    static FROM_ENV: OnceLock<KernelChoice> = OnceLock::new();
    FROM_ENV
        .get_or_init(|| match std::env::var("LORTA_MATMUL_KERNEL") {
            Ok(spec) => KernelChoice::parse(&spec).unwrap_or_else(|e| {
                eprintln!("warning: LORTA_MATMUL_KERNEL: {e}; using burn's default kernels");
                KernelChoice::Default
            }),
            Err(_) => KernelChoice::Auto,
        })
        .clone()
}

/// Which listed kernel accepted a problem (by dtype, dims, layouts and whether TMA may read it),
/// so later products of the same problem skip the ones that refused; `None`: none did.
type DecisionKey = (DType, Vec<usize>, Vec<usize>, (bool, bool), bool);

fn decisions() -> &'static Mutex<HashMap<DecisionKey, Option<Kernel>>> {
    static DECISIONS: OnceLock<Mutex<HashMap<DecisionKey, Option<Kernel>>>> = OnceLock::new();
    DECISIONS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Every problem routed so far: dtype, operand shapes and the kernel that took it (`None`:
/// burn's own), for run reports and tests.
pub fn kernel_decisions() -> Vec<(DType, Vec<usize>, Vec<usize>, Option<Kernel>)> {
    let all = decisions().lock().unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<_> = all.iter().map(|((dtype, l, r, _, _), k)| (*dtype, l.clone(), r.clone(), *k)).collect();
    out.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
    out
}

/// Products counted at the routing entries when `LORTA_MATMUL_CENSUS` is set (read once), by
/// entry (`autodiff`: a forward product under autodiff; `fusion`: a product reaching the fused
/// backend, e.g. our backward's), dtype, operand shapes and whether it was routed. Products that
/// autodiff's own backward forms for unrouted forward products bypass the entries and are not
/// counted. For measurements: which products a step runs, how often.
type CensusKey = (&'static str, DType, Vec<usize>, Vec<usize>, bool);

fn census_cell() -> Option<&'static Mutex<HashMap<CensusKey, usize>>> {
    static CENSUS: OnceLock<Option<Mutex<HashMap<CensusKey, usize>>>> = OnceLock::new();
    CENSUS.get_or_init(|| std::env::var_os("LORTA_MATMUL_CENSUS").map(|_| Mutex::new(HashMap::new()))).as_ref()
}

fn count(entry: &'static str, dtype: DType, lhs: &[usize], rhs: &[usize], routed: bool) {
    if let Some(cell) = census_cell() {
        *cell.lock().unwrap_or_else(|e| e.into_inner()).entry((entry, dtype, lhs.to_vec(), rhs.to_vec(), routed)).or_default() += 1;
    }
}

/// The census as markdown rows `| entry | dtype | lhs | rhs | routed | count |`, most frequent
/// first; empty unless `LORTA_MATMUL_CENSUS` is set.
pub fn census_table() -> String {
    let Some(cell) = census_cell() else { return String::new() };
    let all = cell.lock().unwrap_or_else(|e| e.into_inner());
    let mut rows: Vec<_> = all.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then_with(|| (a.0 .0, &a.0 .2, &a.0 .3).cmp(&(b.0 .0, &b.0 .2, &b.0 .3))));
    let mut out = String::from("| entry | dtype | lhs | rhs | routed | count |\n|---|---|---|---|---|---|\n");
    for ((entry, dtype, l, r, routed), n) in rows {
        out.push_str(&format!("| {entry} | {dtype:?} | {l:?} | {r:?} | {routed} | {n} |\n"));
    }
    out
}

/// Row-major (`false`) or column-major (`true`, a transposed view) last two dims; `None` for
/// other layouts (left to burn's kernel, which copies them).
fn matrix_layout(shape: &[usize], strides: &[usize]) -> Option<bool> {
    let d = shape.len();
    let (rows, cols) = (shape[d - 2], shape[d - 1]);
    if strides[d - 1] == 1 && (rows == 1 || strides[d - 2] >= cols) {
        Some(false)
    } else if strides[d - 2] == 1 && (cols == 1 || strides[d - 1] >= rows) {
        Some(true)
    } else {
        None
    }
}

/// The output shape of `lhs·rhs` (batch dims broadcast), or `None` for mismatched operands
/// (burn's own product then reports them).
fn output_shape(lhs: &[usize], rhs: &[usize]) -> Option<Vec<usize>> {
    let d = lhs.len();
    if d < 2 || rhs.len() != d || lhs[d - 1] != rhs[d - 2] {
        return None;
    }
    let mut out = Vec::with_capacity(d);
    for i in 0..d - 2 {
        match (lhs[i], rhs[i]) {
            (a, b) if a == b => out.push(a),
            (1, b) => out.push(b),
            (a, 1) => out.push(a),
            _ => return None,
        }
    }
    out.extend([lhs[d - 2], rhs[d - 1]]);
    Some(out)
}

/// Whether `auto` routes a product with this dtype and left operand shape: bf16/f16 products of
/// [`AUTO_ROWS`] rows and, in exact-f32 runs ([`crate::matmul`]), every rank-2 f32 product — the
/// split products' high parts pass TF32 exactly on any tensor-core kernel, and routing them took
/// RoBERTa-base's f32 step from 122.4 to 76.0–81.1 ms (H200, measurements h200-2026-11-30-s14).
fn auto_routes(dtype: DType, lhs_shape: &[usize]) -> bool {
    match dtype {
        DType::BF16 | DType::F16 => auto_owns(lhs_shape),
        DType::F32 => lhs_shape.len() == 2 && crate::matmul::exact_f32_matmul(),
        _ => false,
    }
}

/// `LORTA_MATMUL_AUTO_MAX_ROWS` lowers or raises [`AUTO_ROWS`]' upper end (read once; for
/// measurements of where routing starts to lose).
fn auto_max_rows() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| match std::env::var("LORTA_MATMUL_AUTO_MAX_ROWS") {
        Err(_) => *AUTO_ROWS.end(),
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("warning: LORTA_MATMUL_AUTO_MAX_ROWS=`{v}` is not a row count; using {}", AUTO_ROWS.end());
            *AUTO_ROWS.end()
        }),
    })
}

/// Whether `auto` takes a product into its own autodiff operation: rank-2 products of
/// [`AUTO_ROWS`] rows, any dtype. bf16/f16 ones are launched on [`AUTO`]'s kernels; f32 ones keep
/// burn's kernel forward but get our backward, which splits a product with a small output and a
/// long inner dimension along it ([`crate::shapes`]' inner split): `grad·Mᵀ` of a rank-4 factor
/// `M` `[4, 4096]` at 128 tokens took 185 µs on burn's kernel (4 cubes), five per layer in
/// LLaMA-2-7B's LoRTA step (H200, measurements h200-2026-11-30-s11).
fn auto_owns(lhs_shape: &[usize]) -> bool {
    lhs_shape.len() == 2 && (*AUTO_ROWS.start()..=auto_max_rows()).contains(&lhs_shape[0])
}

/// Whether the active choice may route a product of this dtype and left shape. Decided from
/// dtype and shape alone, before fusion and autodiff see the product: a product that will not
/// be routed keeps their own path (burn's fused matmul and backward) instead of becoming a
/// custom operation that fusion cannot see into.
fn may_route(dtype: DType, lhs_shape: &[usize]) -> bool {
    match kernels() {
        KernelChoice::Default => false,
        KernelChoice::Auto => auto_routes(dtype, lhs_shape),
        KernelChoice::List(_) => true,
    }
}

/// Launches the chosen kernel on CubeCL tensors; `None` when no listed kernel takes the problem
/// (or routing is off for it), and the caller runs burn's own product.
fn launch<R: CubeRuntime>(lhs: &CubeTensor<R>, rhs: &CubeTensor<R>) -> Option<CubeTensor<R>> {
    let dtype = lhs.dtype;
    let choice = kernels();
    match &choice {
        KernelChoice::Default => return None,
        KernelChoice::Auto if !auto_routes(dtype, lhs.meta.shape()) => return None,
        _ => {}
    }
    if rhs.dtype != dtype || lhs.qparams.is_some() || rhs.qparams.is_some() {
        return None;
    }
    let (lshape, rshape) = (lhs.meta.shape().to_vec(), rhs.meta.shape().to_vec());
    output_shape(&lshape, &rshape)?;
    let (lstrides, rstrides) = (lhs.meta.strides().to_vec(), rhs.meta.strides().to_vec());
    let (l_col, r_col) = (matrix_layout(&lshape, &lstrides)?, matrix_layout(&rshape, &rstrides)?);
    let list: Vec<Kernel> = match choice {
        KernelChoice::List(list) => list,
        _ if r_col && dtype == DType::F32 => AUTO_COLUMN_MAJOR_RHS_F32.to_vec(),
        _ if r_col => AUTO_COLUMN_MAJOR_RHS.to_vec(),
        _ => AUTO.to_vec(),
    };
    let batched = lshape.len() > 2;
    let tma_allowed = !batched && tma_readable(lhs) && tma_readable(rhs);
    run_first_accepting(lhs, rhs, &list, dtype, (l_col, r_col), tma_allowed)
}

/// `auto`'s split-K product ([`split_k`]) where it applies: routed rank-2 bf16/f16 products
/// with a row-major left side.
fn split_k_launch<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    lhs: &CubeTensor<R>,
    rhs: &CubeTensor<R>,
) -> Option<CubeTensor<R>> {
    // off by default: the one cheap check first, every product passes here
    if split_k::mode() == SplitK::Off
        || kernels() != KernelChoice::Auto
        || !auto_routes(lhs.dtype, lhs.meta.shape())
        || lhs.qparams.is_some()
        || rhs.qparams.is_some()
    {
        return None;
    }
    let (lshape, rshape) = (lhs.meta.shape().to_vec(), rhs.meta.shape().to_vec());
    if lshape.len() != 2 || rshape.len() != 2 {
        return None;
    }
    let l_col = matrix_layout(&lshape, lhs.meta.strides())?;
    let r_col = matrix_layout(&rshape, rhs.meta.strides())?;
    if l_col {
        return None;
    }
    split_k::product::<R, F, I, BT>(lhs, rhs, r_col)
}

/// TMA reads whole tiles through a tensor map: no offset into the buffer, every non-unit stride
/// a 16-byte multiple.
fn tma_readable<R: CubeRuntime>(t: &CubeTensor<R>) -> bool {
    let elem_bytes = t.dtype.size();
    t.handle.offset_start.unwrap_or(0) == 0 && t.meta.strides().iter().all(|&s| s == 1 || (s * elem_bytes) % 16 == 0)
}

/// Runs the first kernel of `list` that accepts the problem and launches (remembered per
/// problem), writing an `out_dtype` result; `None` when none does.
fn run_first_accepting<R: CubeRuntime>(
    lhs: &CubeTensor<R>,
    rhs: &CubeTensor<R>,
    list: &[Kernel],
    out_dtype: DType,
    (l_col, r_col): (bool, bool),
    tma_allowed: bool,
) -> Option<CubeTensor<R>> {
    let dtype = lhs.dtype;
    let (lshape, rshape) = (lhs.meta.shape().to_vec(), rhs.meta.shape().to_vec());
    let batched = lshape.len() > 2;
    let key = (dtype, lshape, rshape, (l_col, r_col), tma_allowed);
    let known = decisions().lock().unwrap_or_else(|e| e.into_inner()).get(&key).copied();
    let candidates: Vec<Kernel> = match known {
        Some(Some(k)) => vec![k],
        Some(None) => return None,
        None => list.to_vec(),
    };
    for kernel in candidates {
        if !kernel.accepts(batched, l_col, r_col, tma_allowed) {
            continue;
        }
        let out = init_matmul_output(lhs, rhs, out_dtype);
        let mut dtypes =
            MatmulElems::from_globals(&MatmulGlobalElems { lhs: dtype.into(), rhs: rhs.dtype.into(), out: out_dtype.into() });
        let launched = cubek::matmul::launch::launch_ref(
            &kernel.strategy(),
            &out.client,
            InputBinding::new(lhs.clone().binding(), dtype.into()),
            InputBinding::new(rhs.clone().binding(), rhs.dtype.into()),
            out.clone().binding(),
            &mut dtypes,
        );
        if launched.is_ok() {
            decisions().lock().unwrap_or_else(|e| e.into_inner()).insert(key, Some(kernel));
            return Some(out);
        }
    }
    decisions().lock().unwrap_or_else(|e| e.into_inner()).insert(key, None);
    None
}

/// A backend whose products can take the chosen kernel.
pub trait CubeMatmul: burn::tensor::backend::Backend {
    /// `lhs·rhs` (batch dims broadcast) through the chosen kernel, else the backend's own.
    fn matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The f32-exact product of [`crate::matmul`] (operands split into TF32-exact high parts and
    /// remainders, one tensor-core product over the tripled inner dim) as one operation for fusion and autodiff, whose
    /// backward is the plain product's; the composite costs ~15 tracked operations per product.
    fn matmul_exact(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> CubeMatmul for CubeBackend<R, F, I, BT> {
    fn matmul(lhs: CubeTensor<R>, rhs: CubeTensor<R>) -> CubeTensor<R> {
        if let Some(out) = split_k_launch::<R, F, I, BT>(&lhs, &rhs) {
            return out;
        }
        match launch(&lhs, &rhs) {
            Some(out) => out,
            None => <Self as FloatTensorOps<Self>>::float_matmul(lhs, rhs),
        }
    }

    fn matmul_exact(lhs: CubeTensor<R>, rhs: CubeTensor<R>) -> CubeTensor<R> {
        split_product_exact::<R, F, I, BT>(lhs, rhs)
    }
}

/// `a·b` exact to f32 rounding through TF32 tensor cores: one product over a 3× inner dim of
/// the operands' high and low parts ([`tf32_split`]; see there for the error bound). Other dtypes
/// take the plain product.
fn split_product_exact<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(a: CubeTensor<R>, b: CubeTensor<R>) -> CubeTensor<R> {
    type B<R, F, I, BT> = CubeBackend<R, F, I, BT>;
    if a.dtype != DType::F32 || b.dtype != DType::F32 {
        return <B<R, F, I, BT> as CubeMatmul>::matmul(a, b);
    }
    let a3 = tf32_split::split_operand::<R, F, I, BT>(a, tf32_split::Side::Lhs);
    let b3 = tf32_split::split_operand::<R, F, I, BT>(b, tf32_split::Side::Rhs);
    // split along the (now 3×) inner dim where the output is small, as our node's products are
    split_product::<B<R, F, I, BT>>(a3, b3)
}

/// The product as one custom fusion operation; it runs [`CubeMatmul::matmul`] (or, `exact`,
/// [`CubeMatmul::matmul_exact`]) of the fused backend.
#[derive(Debug)]
struct FusedMatmul<B> {
    desc: CustomOpIr,
    exact: bool,
    _backend: PhantomData<B>,
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> Operation<FusionCubeRuntime<R>> for FusedMatmul<CubeBackend<R, F, I, BT>> {
    fn execute(&self, handles: &mut HandleContainer<<FusionCubeRuntime<R> as burn_fusion::FusionRuntime>::FusionHandle>) {
        let ([lhs, rhs], [out]) = self.desc.as_fixed();
        let lhs = handles.get_float_tensor::<CubeBackend<R, F, I, BT>>(lhs);
        let rhs = handles.get_float_tensor::<CubeBackend<R, F, I, BT>>(rhs);
        let result = if self.exact {
            <CubeBackend<R, F, I, BT> as CubeMatmul>::matmul_exact(lhs, rhs)
        } else {
            <CubeBackend<R, F, I, BT> as CubeMatmul>::matmul(lhs, rhs)
        };
        handles.register_float_tensor::<CubeBackend<R, F, I, BT>>(&out.id, result);
    }
}

/// Registers the product of `lhs` and `rhs` (output `shape`) as one [`FusedMatmul`].
fn custom_product<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    lhs: FusionTensor<FusionCubeRuntime<R>>,
    rhs: FusionTensor<FusionCubeRuntime<R>>,
    shape: Vec<usize>,
    exact: bool,
) -> FusionTensor<FusionCubeRuntime<R>> {
    let client: GlobalFusionClient<FusionCubeRuntime<R>> = lhs.client.clone();
    let streams = OperationStreams::with_inputs([&lhs, &rhs]);
    let out = TensorIr::uninit(client.create_empty_handle(), Shape::from(shape), lhs.dtype);
    let name = if exact { "lorta_matmul_exact" } else { "lorta_matmul" };
    let desc = CustomOpIr::new(name, &[lhs.into_ir(), rhs.into_ir()], &[out]);
    client
        .register(streams, OperationIr::Custom(desc.clone()), FusedMatmul::<CubeBackend<R, F, I, BT>> { desc, exact, _backend: PhantomData })
        .output()
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> CubeMatmul for Fusion<CubeBackend<R, F, I, BT>> {
    fn matmul(lhs: FusionTensor<FusionCubeRuntime<R>>, rhs: FusionTensor<FusionCubeRuntime<R>>) -> FusionTensor<FusionCubeRuntime<R>> {
        let shape = output_shape(&lhs.shape, &rhs.shape).filter(|_| may_route(lhs.dtype, &lhs.shape));
        count("fusion", lhs.dtype, &lhs.shape, &rhs.shape, shape.is_some());
        match shape {
            Some(shape) => custom_product::<R, F, I, BT>(lhs, rhs, shape, false),
            None => <Self as FloatTensorOps<Self>>::float_matmul(lhs, rhs),
        }
    }

    fn matmul_exact(lhs: FusionTensor<FusionCubeRuntime<R>>, rhs: FusionTensor<FusionCubeRuntime<R>>) -> FusionTensor<FusionCubeRuntime<R>> {
        let shape = output_shape(&lhs.shape, &rhs.shape).unwrap_or_else(|| {
            panic!("matmul: shapes {:?} and {:?} do not multiply (inner dims or batch dims differ)", lhs.shape, rhs.shape)
        });
        custom_product::<R, F, I, BT>(lhs, rhs, shape, true)
    }
}

/// Sums `grad` over the batch dims where the operand (of shape `target`) was broadcast.
fn unbroadcast<B: burn::tensor::backend::Backend>(mut grad: B::FloatTensorPrimitive, target: &[usize]) -> B::FloatTensorPrimitive {
    let shape = grad.shape().to_vec();
    for (dim, (&g, &t)) in shape.iter().zip(target).enumerate().take(target.len().saturating_sub(2)) {
        if t == 1 && g != 1 {
            grad = B::float_sum_dim(grad, dim);
        }
    }
    grad
}

static BACKWARD_SPLITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many products of our autodiff node (forward or backward) were split along their inner
/// dimension so far (tests, reports).
pub fn backward_splits() -> usize {
    BACKWARD_SPLITS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A product of our autodiff node, forward or backward: rank-2 ones with a small output and a
/// long inner dimension are split along it (a batch of chunk products, summed), as
/// [`crate::shapes`] does for the products it sees; inside the node the split costs no tracked
/// operations (LoRA's `x·Aᵀ`, LoRTA's `x·K` at 128 tokens: five fewer per product).
fn split_product<B: CubeMatmul>(a: FloatTensor<B>, b: FloatTensor<B>) -> FloatTensor<B> {
    let (ashape, bshape) = (a.shape().to_vec(), b.shape().to_vec());
    let chunks = match (&ashape[..], &bshape[..]) {
        (&[m, k], &[k2, n]) if k == k2 && crate::shapes::inner_split_enabled() => crate::shapes::inner_split_chunks(m, k, n, a.dtype()),
        _ => None,
    };
    let Some(chunks) = chunks else { return B::matmul(a, b) };
    BACKWARD_SPLITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ([m, k], n) = ([ashape[0], ashape[1]], bshape[1]);
    let len = k / chunks;
    let a3 = B::float_swap_dims(B::float_reshape(a, Shape::new([m, chunks, len])), 0, 1);
    let b3 = B::float_reshape(b, Shape::new([chunks, len, n]));
    B::float_reshape(B::float_sum_dim(B::matmul(a3, b3), 0), Shape::new([m, n]))
}

#[derive(Debug)]
struct MatmulBackward;

impl<B: CubeMatmul> Backward<B, 2> for MatmulBackward {
    /// Checkpointed operands (each kept only when the other one needs a gradient) and shapes.
    type State = (Option<NodeId>, Option<NodeId>, Vec<usize>, Vec<usize>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let (lhs, rhs, lhs_shape, rhs_shape) = ops.state;
        let lhs: Option<B::FloatTensorPrimitive> = lhs.map(|id| checkpointer.retrieve_node_output(id));
        let rhs: Option<B::FloatTensorPrimitive> = rhs.map(|id| checkpointer.retrieve_node_output(id));
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            |grad| unbroadcast::<B>(split_product::<B>(grad, B::float_transpose(rhs.expect("rhs kept for the lhs gradient"))), &lhs_shape),
            |grad| unbroadcast::<B>(split_product::<B>(B::float_transpose(lhs.expect("lhs kept for the rhs gradient")), grad), &rhs_shape),
        );
    }
}

/// Whether the autodiff product of this left shape is our node (forward and backward).
fn autodiff_owns(lhs_shape: &[usize]) -> bool {
    match kernels() {
        KernelChoice::Default => false,
        KernelChoice::Auto => auto_owns(lhs_shape),
        KernelChoice::List(_) => true,
    }
}

/// `forward(lhs, rhs)` as one autodiff node whose backward is [`MatmulBackward`]'s.
fn product_node<B: CubeMatmul, C: CheckpointStrategy>(
    lhs: FloatTensor<Autodiff<B, C>>,
    rhs: FloatTensor<Autodiff<B, C>>,
    forward: fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    let (lhs_tracked, rhs_tracked) = (lhs.is_tracked(), rhs.is_tracked());
    let (lhs_shape, rhs_shape) = (lhs.primitive.shape().to_vec(), rhs.primitive.shape().to_vec());
    match MatmulBackward.prepare::<C>([lhs.node.clone(), rhs.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let lhs_state = rhs_tracked.then(|| prep.checkpoint(&lhs));
            let rhs_state = lhs_tracked.then(|| prep.checkpoint(&rhs));
            prep.finish((lhs_state, rhs_state, lhs_shape, rhs_shape), forward(lhs.primitive, rhs.primitive))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(lhs.primitive, rhs.primitive)),
    }
}

impl<B: CubeMatmul, C: CheckpointStrategy> CubeMatmul for Autodiff<B, C> {
    fn matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        let route = autodiff_owns(&lhs.primitive.shape());
        count("autodiff", lhs.primitive.dtype(), &lhs.primitive.shape(), &rhs.primitive.shape(), route);
        if !route {
            return <Self as FloatTensorOps<Self>>::float_matmul(lhs, rhs);
        }
        // small-output long-inner products split here, inside the one node (the shape
        // rewrites leave them whole for us: `register`)
        product_node::<B, C>(lhs, rhs, split_product::<B>)
    }

    fn matmul_exact(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        product_node::<B, C>(lhs, rhs, B::matmul_exact)
    }
}

/// Routes the products of runtime `R`'s backend types (plain and fused, each also under autodiff
/// without checkpointing) through the chosen kernels.
pub fn register<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>() {
    fn add<B: CubeMatmul>() {
        register_matmul_kernel::<B>(<B as CubeMatmul>::matmul as MatmulKernel<B>);
    }
    // the autodiff products we own split their inner dim inside our node
    fn add_autodiff<B: CubeMatmul>() {
        register_matmul_kernel_splitting::<B>(<B as CubeMatmul>::matmul as MatmulKernel<B>, autodiff_owns);
    }
    add::<CubeBackend<R, F, I, BT>>();
    add::<Fusion<CubeBackend<R, F, I, BT>>>();
    add_autodiff::<Autodiff<CubeBackend<R, F, I, BT>>>();
    add_autodiff::<Autodiff<Fusion<CubeBackend<R, F, I, BT>>>>();
}

/// [`register`] where `route` (the kernel choice routes products) and [`register_exact`] where
/// `exact`, for runtime `R`.
pub fn register_runtime<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(route: bool, exact: bool) {
    if route {
        register::<R, F, I, BT>();
    }
    if exact {
        register_exact::<R, F, I, BT>();
    }
}

/// Gives runtime `R`'s backend types (plain and fused, each also under autodiff) the exact f32
/// product as one operation ([`CubeMatmul::matmul_exact`]) for [`crate::matmul::matmul`] and the
/// fused operations' forwards.
pub fn register_exact<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>() {
    fn add<B: CubeMatmul>() {
        crate::matmul::register_exact_kernel::<B>(<B as CubeMatmul>::matmul_exact as crate::matmul::ExactKernel<B>);
    }
    add::<CubeBackend<R, F, I, BT>>();
    add::<Fusion<CubeBackend<R, F, I, BT>>>();
    add::<Autodiff<CubeBackend<R, F, I, BT>>>();
    add::<Autodiff<Fusion<CubeBackend<R, F, I, BT>>>>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_choice_parses_names_and_rejects_unknown_ones() {
        assert_eq!(KernelChoice::parse("default"), Ok(KernelChoice::Default));
        assert_eq!(KernelChoice::parse("auto"), Ok(KernelChoice::Auto));
        assert_eq!(
            KernelChoice::parse("specialized_tma_mma, simple_unit"),
            Ok(KernelChoice::List(vec![Kernel::SpecializedTmaMma, Kernel::SimpleUnit]))
        );
        for choice in [KernelChoice::Default, KernelChoice::Auto, KernelChoice::List(vec![Kernel::DoubleCyclicMma, Kernel::SimpleUnit])] {
            assert_eq!(KernelChoice::parse(&choice.to_string()), Ok(choice));
        }
        let err = KernelChoice::parse("specialised_tma").unwrap_err();
        assert!(err.contains("specialised_tma") && err.contains("simple_unit"), "{err}");
    }

    #[test]
    fn auto_routes_half_precision_products_of_up_to_4096_rows_only() {
        // LLaMA at 128 tokens, GLUE batches (32 × 128 rows): routed; more rows, f32, attention:
        // burn's own
        assert!(auto_routes(DType::BF16, &[128, 4096]));
        assert!(auto_routes(DType::F16, &[1024, 4096]));
        assert!(auto_routes(DType::BF16, &[4096, 768]));
        assert!(!auto_routes(DType::BF16, &[8192, 768]));
        assert!(!auto_routes(DType::BF16, &[32, 384]));
        assert!(!auto_routes(DType::F32, &[128, 4096]));
        assert!(!auto_routes(DType::BF16, &[1, 32, 128, 128]));
    }

    #[test]
    fn output_shapes_broadcast_batch_dims_and_reject_mismatches() {
        assert_eq!(output_shape(&[128, 64], &[64, 32]), Some(vec![128, 32]));
        assert_eq!(output_shape(&[4, 128, 64], &[1, 64, 32]), Some(vec![4, 128, 32]));
        assert_eq!(output_shape(&[128, 64], &[65, 32]), None);
        assert_eq!(output_shape(&[3, 8, 4], &[2, 4, 8]), None);
    }

    #[test]
    fn column_major_batched_products_skip_the_kernels_that_misread_them() {
        // 2-D: any layout; batched: column-major operands only for TMA and unit kernels
        for k in Kernel::ALL {
            assert!(k.accepts(false, true, true, true), "{k:?}");
            assert!(k.accepts(true, false, false, true), "{k:?}");
        }
        for k in [Kernel::SpecializedCyclicMma, Kernel::DoubleCyclicMma, Kernel::OrderedDoubleMma, Kernel::SimpleCyclicMma] {
            assert!(!k.accepts(true, false, true, true) && !k.accepts(true, true, false, true), "{k:?}");
        }
        assert!(Kernel::SimpleUnit.accepts(true, true, true, false));
        // TMA only where the tensor map may read the operands
        assert!(!Kernel::SpecializedTmaMma.accepts(false, false, false, false));
    }

    #[test]
    fn layouts_are_row_or_column_major_views() {
        assert_eq!(matrix_layout(&[8, 4], &[4, 1]), Some(false));
        assert_eq!(matrix_layout(&[8, 4], &[1, 8]), Some(true));
        assert_eq!(matrix_layout(&[2, 8, 4], &[32, 4, 1]), Some(false));
        assert_eq!(matrix_layout(&[8, 4], &[8, 2]), None);
    }
}
