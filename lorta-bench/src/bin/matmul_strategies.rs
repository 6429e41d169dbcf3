//! Times every matmul kernel family of CubeCL (cubek 0.2, the one burn 0.21 launches) on the
//! products our training steps run, on one CUDA device: which kernel the default selection picks
//! (`Auto`, the only one without autotuning) and what the others reach on the same shapes.
//! Decides whether routing the products to another kernel is worth it; prints a table and JSON.
//!
//! `cargo build --release -p lorta-bench --features cuda --bin matmul-strategies`
//! `matmul-strategies [--shapes [[HEADSx]BATCHx]MxKxN[t][p],...] [--dtypes bf16,f32] [--iters 20]
//!  [--strategies a,b] [--check] [--routed] [--json FILE]` (suffix `t`: the right side is read as the
//! transpose of a stored `[n, k]`, a column-major view as in backward; suffix `p`: both operands
//! are attention-style views, `[batch, heads, rows, cols]` permuted out of a stored
//! `[batch, rows, heads, cols]`, so the head stride is smaller than the row stride; `--check`:
//! error of every kernel against the exact product of the rounded operands)

use burn::tensor::{DType, Distribution, Tensor};
use burn_cubecl::{CubeBackend, cubecl::cuda::CudaRuntime, tensor::CubeTensor};
use cubek::matmul::components::tile::TileMatmulKind;
use cubek::matmul::definition::{MatmulElems, MatmulGlobalElems};
use cubek::matmul::launch::Strategy;
use cubek::matmul::routines::{
    BlueprintStrategy, double_buffering::DoubleBufferingArgs, ordered_double_buffering::OrderedSelectionArgs, simple::SimpleArgs,
};
use cubek::std::InputBinding;
use std::time::Instant;

type B = CubeBackend<CudaRuntime, f32, i32, u8>;

/// One product `[m, k] x [k, n]`; `rhs_transposed` reads the right side as the transpose of a
/// stored `[n, k]` (the backward product through a frozen weight).
#[derive(Clone, Copy)]
struct Shape {
    /// Batch of independent products (1: a plain 2-D product).
    batch: usize,
    /// A second batch dim (attention heads; 1: none).
    heads: usize,
    /// Operands are `[batch, heads, rows, cols]` views of a stored `[batch, rows, heads, cols]`.
    permuted: bool,
    m: usize,
    k: usize,
    n: usize,
    rhs_transposed: bool,
}

fn strategies() -> Vec<(&'static str, Strategy)> {
    // A macro, not a closure: the TMA variants take the same arguments at another loading type.
    macro_rules! simple {
        ($multi_rows:expr, $tile_matmul:expr) => {
            BlueprintStrategy::Inferred(SimpleArgs { multi_rows: $multi_rows, tile_matmul: $tile_matmul })
        };
    }
    let ordered = |row_count, tile_matmul| {
        BlueprintStrategy::Inferred(OrderedSelectionArgs {
            partition_k: Some(2),
            row_count: Some(row_count),
            rows_per_plane: Some(2),
            tile_matmul,
        })
    };
    let double = |specialized, tile_matmul| BlueprintStrategy::Inferred(DoubleBufferingArgs { specialized, tile_matmul });
    use TileMatmulKind::{Cmma, Mma};
    vec![
        ("auto (default)", Strategy::Auto),
        ("simple_cyclic_mma", Strategy::SimpleCyclicMma(simple!(false, Mma))),
        ("simple_cyclic_cmma_multirows", Strategy::SimpleCyclicCmma(simple!(true, Cmma))),
        ("simple_cyclic_mma_multirows", Strategy::SimpleCyclicMma(simple!(true, Mma))),
        ("ordered_double_cmma_r4", Strategy::OrderedDoubleCmma(ordered(4, Cmma))),
        ("ordered_double_mma_r4", Strategy::OrderedDoubleMma(ordered(4, Mma))),
        ("ordered_double_cmma_r8", Strategy::OrderedDoubleCmma(ordered(8, Cmma))),
        ("ordered_double_mma_r8", Strategy::OrderedDoubleMma(ordered(8, Mma))),
        ("double_cyclic_cmma", Strategy::DoubleCyclicCmma(double(false, Cmma))),
        ("double_cyclic_mma", Strategy::DoubleCyclicMma(double(false, Mma))),
        ("double_cyclic_cmma_specialized", Strategy::DoubleCyclicCmma(double(true, Cmma))),
        ("double_cyclic_mma_specialized", Strategy::DoubleCyclicMma(double(true, Mma))),
        ("specialized_cyclic_cmma", Strategy::SpecializedCyclicCmma(BlueprintStrategy::Inferred(().into()))),
        ("specialized_cyclic_mma", Strategy::SpecializedCyclicMma(BlueprintStrategy::Inferred(().into()))),
        ("simple_tma_cmma", Strategy::SimpleTmaCmma(simple!(false, Cmma))),
        ("simple_tma_mma", Strategy::SimpleTmaMma(simple!(false, Mma))),
        ("simple_tma_cmma_multirows", Strategy::SimpleTmaCmma(simple!(true, Cmma))),
        ("specialized_tma_cmma", Strategy::SpecializedTmaCmma(BlueprintStrategy::Inferred(().into()))),
        ("specialized_tma_mma", Strategy::SpecializedTmaMma(BlueprintStrategy::Inferred(().into()))),
        ("simple_unit", Strategy::SimpleUnit(BlueprintStrategy::Inferred(Default::default()))),
        ("double_unit", Strategy::DoubleUnit(BlueprintStrategy::Inferred(Default::default()))),
    ]
}

fn parse_shapes(text: &str) -> Result<Vec<Shape>, String> {
    text.split(',')
        .map(|item| {
            let (dims, permuted) = match item.strip_suffix("p") {
                Some(dims) => (dims, true),
                None => (item, false),
            };
            let (dims, rhs_transposed) = match dims.strip_suffix("t") {
                Some(dims) => (dims, true),
                None => (dims, false),
            };
            let dims: Vec<usize> =
                dims.split('x').map(|d| d.parse::<usize>()).collect::<Result<_, _>>().map_err(|e| format!("shape `{item}`: {e}"))?;
            match dims[..] {
                [m, k, n] => Ok(Shape { batch: 1, heads: 1, permuted, m, k, n, rhs_transposed }),
                [batch, m, k, n] => Ok(Shape { batch, heads: 1, permuted, m, k, n, rhs_transposed }),
                [batch, heads, m, k, n] => Ok(Shape { batch, heads, permuted, m, k, n, rhs_transposed }),
                _ => Err(format!(
                    "shape `{item}`: expected [[HEADSx]BATCHx]MxKxN (suffix t: right side read transposed; p: permuted head views)"
                )),
            }
        })
        .collect()
}

/// `[m, k]·[k, n]` per batch entry in f64 on the host, from the operands' (rounded) values;
/// `rhs` is stored `[n, k]` when `transposed`.
fn host_product(shape: Shape, lhs: &[f32], rhs: &[f32]) -> Vec<f32> {
    let (m, k, n) = (shape.m, shape.k, shape.n);
    let mut out = vec![0f32; shape.batch * shape.heads * m * n];
    let mut row = vec![0f64; n];
    for b in 0..shape.batch * shape.heads {
        let (l, r) = (&lhs[b * m * k..(b + 1) * m * k], &rhs[b * k * n..(b + 1) * k * n]);
        for i in 0..m {
            row.iter_mut().for_each(|v| *v = 0.0);
            for p in 0..k {
                let a = l[i * k + p] as f64;
                if shape.rhs_transposed {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v += a * r[j * k + p] as f64;
                    }
                } else {
                    for (v, w) in row.iter_mut().zip(&r[p * n..(p + 1) * n]) {
                        *v += a * *w as f64;
                    }
                }
            }
            for (o, v) in out[(b * m + i) * n..(b * m + i + 1) * n].iter_mut().zip(&row) {
                *o = *v as f32;
            }
        }
    }
    out
}

fn host(t: Tensor<B, 4>) -> Vec<f32> {
    t.cast(DType::F32).into_data().to_vec::<f32>().expect("f32 values")
}

/// Median milliseconds of `iters` calls of `launch` (each synchronised, after three unmeasured
/// ones) and the first call's time (kernel compilation included).
fn median_and_first_ms(
    mut launch: impl FnMut() -> Result<(), String>,
    sync: impl Fn() -> Result<(), String>,
    iters: usize,
) -> Result<(f64, f64), String> {
    sync()?;
    let start = Instant::now();
    launch()?;
    sync()?;
    let first_ms = start.elapsed().as_secs_f64() * 1e3;
    for _ in 0..3 {
        launch()?;
    }
    sync()?;
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        launch()?;
        sync()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], first_ms))
}

/// Median milliseconds of `iters` launches (each synchronised), and the first launch's time
/// (kernel compilation included), or the launch error.
/// `exact`: the host product of the (seeded, so identical) operands, computed on the first call
/// of a shape when checking and reused by the other kernels.
fn time_strategy(
    strategy: &Strategy,
    shape: Shape,
    dtype: DType,
    iters: usize,
    exact: Option<&mut Option<Vec<f32>>>,
) -> Result<(f64, f64, Vec<f32>, Option<f32>), String> {
    let device = Default::default();
    // same seed for every strategy: identical operands, comparable outputs
    <B as burn::tensor::backend::Backend>::seed(&device, 7);
    let normal = Distribution::Normal(0.0, 1.0);
    let (b, h) = (shape.batch, shape.heads);
    // `[b, h, rows, cols]` values: stored that way, or (permuted) stored `[b, rows, h, cols]` and
    // viewed as `[b, h, rows, cols]`, as attention reads its heads out of the projections
    let operand = |rows: usize, cols: usize| {
        if shape.permuted {
            Tensor::<B, 4>::random([b, rows, h, cols], normal, &device).cast(dtype).swap_dims(1, 2)
        } else {
            Tensor::<B, 4>::random([b, h, rows, cols], normal, &device).cast(dtype)
        }
    };
    let lhs_t = operand(shape.m, shape.k);
    // the transpose is taken after the cast: the kernel reads a column-major view, as in backward
    let rhs_t = if shape.rhs_transposed { operand(shape.n, shape.k) } else { operand(shape.k, shape.n) };
    let rhs_view = if shape.rhs_transposed { rhs_t.clone().swap_dims(2, 3) } else { rhs_t.clone() };
    let (lhs, rhs): (CubeTensor<CudaRuntime>, CubeTensor<CudaRuntime>) =
        (lhs_t.clone().into_primitive().tensor(), rhs_view.into_primitive().tensor());
    let out_tensor = Tensor::<B, 4>::zeros([b, h, shape.m, shape.n], &device).cast(dtype);
    let out: CubeTensor<CudaRuntime> = out_tensor.clone().into_primitive().tensor();
    let client = out.client.clone();
    let sync = || burn_cubecl::cubecl::future::block_on(client.sync()).map_err(|e| format!("{e:?}"));
    let launch = || {
        let mut dtypes = MatmulElems::from_globals(&MatmulGlobalElems { lhs: dtype.into(), rhs: dtype.into(), out: dtype.into() });
        cubek::matmul::launch::launch_ref(
            strategy,
            &client,
            InputBinding::new(lhs.clone().binding(), dtype.into()),
            InputBinding::new(rhs.clone().binding(), dtype.into()),
            out.clone().binding(),
            &mut dtypes,
        )
        .map_err(|e| format!("{e:?}"))
    };
    let (median_ms, first_ms) = median_and_first_ms(launch, sync, iters)?;
    let values = host(out_tensor);
    // error against the exact product of the rounded operands, relative to its largest entry
    let error = exact.map(|exact| {
        let exact = exact.get_or_insert_with(|| host_product(shape, &host(lhs_t), &host(rhs_t)));
        let scale = exact.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
        values.iter().zip(exact.iter()).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
    });
    Ok((median_ms, first_ms, values, error))
}

/// [`time_strategy`] for the product as our models run it: `lorta_core::cube_matmul`'s routing
/// under `auto` (kernel lists; split-K of every few-row half-precision product the chunk rule
/// accepts when `split_k`, none otherwise), a new
/// output per launch. 2-D shapes only.
fn time_routed(split_k: bool, shape: Shape, dtype: DType, iters: usize, exact: Option<&mut Option<Vec<f32>>>) -> Result<(f64, f64, Vec<f32>, Option<f32>), String> {
    use lorta_core::cube_matmul::{self, CubeMatmul, KernelChoice, SplitK};
    if shape.batch * shape.heads != 1 || shape.permuted {
        return Err("2-D shapes only".into());
    }
    cube_matmul::set_kernels(KernelChoice::Auto);
    cube_matmul::set_split_k(if split_k { SplitK::All } else { SplitK::Off });
    let device = Default::default();
    <B as burn::tensor::backend::Backend>::seed(&device, 7);
    let normal = Distribution::Normal(0.0, 1.0);
    let lhs_t = Tensor::<B, 2>::random([shape.m, shape.k], normal, &device).cast(dtype);
    let rhs_t = if shape.rhs_transposed {
        Tensor::<B, 2>::random([shape.n, shape.k], normal, &device).cast(dtype)
    } else {
        Tensor::<B, 2>::random([shape.k, shape.n], normal, &device).cast(dtype)
    };
    let rhs_view = if shape.rhs_transposed { rhs_t.clone().swap_dims(0, 1) } else { rhs_t.clone() };
    let (lhs, rhs): (CubeTensor<CudaRuntime>, CubeTensor<CudaRuntime>) =
        (lhs_t.clone().into_primitive().tensor(), rhs_view.into_primitive().tensor());
    let client = lhs.client.clone();
    let sync = || burn_cubecl::cubecl::future::block_on(client.sync()).map_err(|e| format!("{e:?}"));
    let launch = || <B as CubeMatmul>::matmul(lhs.clone(), rhs.clone());
    let splits = cube_matmul::split_k_products();
    let (median_ms, first_ms) = median_and_first_ms(
        || {
            launch();
            Ok(())
        },
        sync,
        iters,
    )?;
    if split_k && cube_matmul::split_k_products() == splits {
        eprintln!("note: {}x{}x{}: not split", shape.m, shape.k, shape.n);
    }
    let out = launch();
    let values = Tensor::<B, 2>::from_primitive(burn::tensor::TensorPrimitive::Float(out)).cast(DType::F32).into_data().to_vec::<f32>().expect("f32 values");
    let error = exact.map(|exact| {
        let host2 = |t: Tensor<B, 2>| t.cast(DType::F32).into_data().to_vec::<f32>().expect("f32 values");
        let exact = exact.get_or_insert_with(|| host_product(shape, &host2(lhs_t), &host2(rhs_t)));
        let scale = exact.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
        values.iter().zip(exact.iter()).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
    });
    Ok((median_ms, first_ms, values, error))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let shapes = flag("--shapes").unwrap_or_else(|| {
        // LLaMA-2-7B at 128 tokens (q/k/v/o, gate/up, down; backward through the frozen weight),
        // RoBERTa-base and MiniLM at batch 32 x 128.
        "128x4096x4096,128x4096x4096t,128x4096x11008,128x11008x4096,128x11008x4096t,\
         4096x768x768,4096x768x768t,4096x768x3072,4096x3072x768,4096x384x384,4096x384x1536,4096x1536x384"
            .into()
    });
    let shapes = parse_shapes(&shapes).unwrap_or_else(|e| {
        eprintln!("error: --shapes {e}");
        std::process::exit(2)
    });
    let dtypes: Vec<DType> = flag("--dtypes")
        .unwrap_or_else(|| "bf16".into())
        .split(',')
        .map(|d| match d {
            "bf16" => DType::BF16,
            "f16" => DType::F16,
            "f32" => DType::F32,
            other => {
                eprintln!("error: --dtypes: unknown dtype `{other}` (bf16, f16, f32)");
                std::process::exit(2)
            }
        })
        .collect();
    let iters: usize = flag("--iters").map(|s| s.parse().expect("--iters: a number")).unwrap_or(20);
    // exact host product (f64) per shape: slow for large shapes (seconds per GFLOP)
    let check = args.iter().any(|a| a == "--check");
    // also our own routing (`lorta_core::cube_matmul`, with and without split-K) on 2-D shapes
    let routed = args.iter().any(|a| a == "--routed");
    let only: Option<Vec<String>> = flag("--strategies").map(|s| s.split(',').map(String::from).collect());

    let mut rows = Vec::new();
    println!("| shape | dtype | strategy | median ms | TFLOP/s | first launch ms | vs auto | max rel. diff to auto | max rel. error to exact |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for &dtype in &dtypes {
        for &shape in &shapes {
            let batch = match (shape.batch, shape.heads) {
                (1, 1) => String::new(),
                (b, 1) => format!("{b}x"),
                (b, h) => format!("{b}x{h}x"),
            };
            let label = format!(
                "{batch}{}x{}x{}{}{}",
                shape.m,
                shape.k,
                shape.n,
                if shape.rhs_transposed { "t" } else { "" },
                if shape.permuted { "p" } else { "" }
            );
            let mut auto_ms = None;
            let mut auto_values: Option<Vec<f32>> = None;
            let mut exact: Option<Vec<f32>> = None;
            let mut best: Option<(&str, f64)> = None;
            // CubeCL's kernels launched directly, then (`--routed`) the product as our models run it
            let kernels = strategies().into_iter().filter(|(name, _)| {
                only.as_ref().is_none_or(|only| *name == "auto (default)" || only.iter().any(|o| o == name))
            });
            let routed_runs = if routed { vec![("lorta_routed", None, true), ("lorta_routed_no_split_k", None, false)] } else { vec![] };
            for (name, strategy, split_k) in kernels.map(|(name, strategy)| (name, Some(strategy), false)).chain(routed_runs) {
                let result = match &strategy {
                    Some(strategy) => time_strategy(strategy, shape, dtype, iters, check.then_some(&mut exact)),
                    None => time_routed(split_k, shape, dtype, iters, check.then_some(&mut exact)),
                };
                match result {
                    Ok((ms, first_ms, values, error)) => {
                        let tflops = 2.0 * (shape.batch * shape.heads * shape.m * shape.k * shape.n) as f64 / (ms * 1e-3) / 1e12;
                        let auto = *auto_ms.get_or_insert(ms);
                        let reference = auto_values.get_or_insert_with(|| values.clone());
                        let scale = reference.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
                        let diff = values.iter().zip(reference.iter()).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
                        println!("| {label} | {dtype:?} | {name} | {ms:.4} | {tflops:.1} | {first_ms:.0} | {:.2}x | {diff:.1e} | {} |", ms / auto, error.map_or("-".into(), |e| format!("{e:.1e}")));
                        if best.is_none_or(|(_, b)| ms < b) {
                            best = Some((name, ms));
                        }
                        rows.push(serde_json::json!({"shape": label, "dtype": format!("{dtype:?}"), "strategy": name,
                            "median_ms": ms, "tflops": tflops, "first_launch_ms": first_ms, "max_rel_diff_to_auto": diff, "max_rel_error_to_exact": error}));
                    }
                    Err(error) => {
                        let short: String = error.chars().take(80).collect();
                        println!("| {label} | {dtype:?} | {name} | unavailable: {short} | | | |");
                        rows.push(serde_json::json!({"shape": label, "dtype": format!("{dtype:?}"), "strategy": name, "error": error}));
                    }
                }
            }
            if let (Some(auto), Some((name, ms))) = (auto_ms, best) {
                eprintln!("best for {label} {dtype:?}: {name} {ms:.4} ms ({:.2}x auto)", ms / auto);
            }
        }
    }
    if let Some(path) = flag("--json") {
        let text = serde_json::to_string_pretty(&rows).expect("rows serialize");
        std::fs::write(&path, text).unwrap_or_else(|e| eprintln!("error: writing {path}: {e}"));
    }
}
