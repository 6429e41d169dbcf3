//! `profile`: the paper's profiling table (memory, FLOPs, MACs, ms per training step) for LoRA vs
//! LoRTA on a LLaMA model. `--model llama-2-7b` (default; random weights, timing does not depend
//! on values), `llama-tiny` (for CI) or a checkpoint folder (its config.json; random weights).
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use lorta_core::Method;
use lorta_models::llama::LlamaConfig;
use lorta_models::load::parse_dtype;

use crate::backend::{memory_usage, BackendKind};
use crate::profile::{self, named_config, ProfileRow, ProfileSpec};
use crate::report::{csv_string, markdown_table, thousands, write_atomic, write_json};
use crate::with_backend;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `llama-2-7b`, `llama-tiny`, or a checkpoint folder (architecture from its config.json).
    #[arg(long, default_value = "llama-2-7b")]
    pub model: String,
    #[arg(long, value_delimiter = ',', default_values_t = vec!["lora".to_string(), "lorta".to_string()])]
    pub methods: Vec<String>,
    #[arg(long, value_delimiter = ',', default_values_t = vec![4usize, 64])]
    pub ranks: Vec<usize>,
    /// Tokens per sequence (128 covers a COPA prompt with its answer in the MeZO template).
    #[arg(long, default_value_t = 128)]
    pub seq_len: usize,
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Compute dtype: bf16, f16 or f32 (default: f32 on ndarray, bf16 on GPU backends).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Timed steps per configuration (median reported).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Untimed steps first (kernel autotuning happens here).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
    /// Print JSON rows instead of the markdown table.
    #[arg(long)]
    pub json: bool,
    /// Write profile.json, profile.csv and profile.md here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub gpu: crate::backend::GpuArgs,
}

/// The dtype `profile` uses without `--dtype`: what the backend computes in natively.
pub fn default_dtype(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Ndarray => "f32",
        _ => "bf16",
    }
}

fn resolve_config(model: &str) -> Result<LlamaConfig> {
    if let Some(c) = named_config(model) {
        return Ok(c);
    }
    let dir = PathBuf::from(model);
    let cfg = dir.join("config.json");
    if !cfg.is_file() {
        bail!("--model `{model}`: not a built-in config (llama-2-7b, llama-tiny) and no {} exists", cfg.display());
    }
    Ok(LlamaConfig::from_file(&cfg)?)
}

fn gb(b: Option<u64>) -> String {
    b.map(|b| format!("{:.2}", b as f64 / (1u64 << 30) as f64)).unwrap_or_else(|| "n/a".into())
}

pub fn markdown(rows: &[ProfileRow]) -> String {
    let header: Vec<String> = ["method", "rank", "trainable params", "peak memory (GiB)", "reserved (GiB)", "GFLOPs/step", "GMACs/step", "GFLOPs fwd", "ms/step (median)", "min–max"]
        .map(String::from)
        .to_vec();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.method.clone(),
                r.rank.to_string(),
                thousands(r.trainable_params),
                gb(r.peak_memory_bytes) + if r.memory_measure.starts_with("process") { " (RSS)" } else { "" },
                gb(r.peak_reserved_bytes),
                format!("{:.3}", r.flops as f64 / 1e9),
                format!("{:.3}", r.macs as f64 / 1e9),
                format!("{:.3}", r.forward_flops as f64 / 1e9),
                format!("{:.1}", r.ms_per_step),
                format!("{:.1}–{:.1}", r.ms_min, r.ms_max),
            ]
        })
        .collect();
    let first = rows.first();
    format!(
        "## Profile: {} ({}), batch {}, {} tokens, {}\n\nFLOPs/MACs are analytic (matrix products; training step = forward + input-gradient backward of the frozen base + 2× the adapter's forward). Memory: peak bytes in use / reserved by the device allocator over one instrumented step; on ndarray (marked RSS) the growth of the process's peak resident set size over that step.\n\n{}",
        first.map(|r| r.model.as_str()).unwrap_or("-"),
        first.map(|r| r.backend.as_str()).unwrap_or("-"),
        first.map(|r| r.batch).unwrap_or(0),
        first.map(|r| r.seq_len).unwrap_or(0),
        first.map(|r| r.dtype.as_str()).unwrap_or("-"),
        markdown_table(&header, &body)
    )
}

pub fn run(args: Args) -> Result<()> {
    let config = resolve_config(&args.model)?;
    let dtype_name = args.dtype.clone().unwrap_or_else(|| default_dtype(args.backend).to_string());
    let dtype = parse_dtype(&dtype_name).ok_or_else(|| anyhow!("--dtype `{dtype_name}`: expected bf16, f16 or f32"))?;
    let methods = args
        .methods
        .iter()
        .map(|m| m.parse::<Method>().map_err(|e| anyhow!("--methods: {e}")))
        .collect::<Result<Vec<_>>>()?;
    if args.steps == 0 || args.seq_len == 0 || args.batch == 0 {
        bail!("--steps, --seq-len and --batch must be at least 1");
    }
    let spec = ProfileSpec {
        model_name: args.model.clone(),
        config,
        methods,
        ranks: args.ranks.clone(),
        seq_len: args.seq_len,
        batch: args.batch,
        dtype,
        steps: args.steps,
        warmup: args.warmup,
        backend: args.backend.name().to_string(),
        matmul_kernel: args.gpu.matmul_kernel_label(args.backend),
    };
    let kind = args.backend;
    args.gpu.prepare(kind, dtype)?;
    let json = args.json;
    let rows = with_backend!(kind, |B, device| profile::run::<B>(&spec, &device, &|| memory_usage(kind), |row| {
        if json {
            println!("{}", serde_json::to_string(row).expect("row"));
        } else {
            let cpu = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1}"));
            eprintln!(
                "{} r={}: {:.1} ms/step (host CPU per step: {} ms main thread, {} ms process)",
                row.method,
                row.rank,
                row.ms_per_step,
                cpu(row.main_thread_cpu_ms_per_step),
                cpu(row.process_cpu_ms_per_step)
            );
        }
    }))?;
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    {
        let census = lorta_core::cube_matmul::census_table();
        if !census.is_empty() {
            eprintln!("matmul census (LORTA_MATMUL_CENSUS), all methods and steps:\n{census}");
        }
    }
    let md = markdown(&rows);
    if !json {
        println!("{md}");
    }
    if let Some(dir) = &args.out {
        write_json(&dir.join("profile.json"), &rows)?;
        let header: Vec<String> = ["method", "rank", "ms_per_step", "ms_min", "ms_max", "main_thread_cpu_ms_per_step", "process_cpu_ms_per_step", "peak_memory_bytes", "memory_measure", "peak_reserved_bytes", "flops", "macs", "trainable_params"].map(String::from).to_vec();
        let csv_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.method.clone(),
                    r.rank.to_string(),
                    format!("{:.3}", r.ms_per_step),
                    format!("{:.3}", r.ms_min),
                    format!("{:.3}", r.ms_max),
                    r.main_thread_cpu_ms_per_step.map(|v| format!("{v:.3}")).unwrap_or_default(),
                    r.process_cpu_ms_per_step.map(|v| format!("{v:.3}")).unwrap_or_default(),
                    r.peak_memory_bytes.map(|b| b.to_string()).unwrap_or_default(),
                    r.memory_measure.clone(),
                    r.peak_reserved_bytes.map(|b| b.to_string()).unwrap_or_default(),
                    r.flops.to_string(),
                    r.macs.to_string(),
                    r.trainable_params.to_string(),
                ]
            })
            .collect();
        write_atomic(&dir.join("profile.csv"), csv_string(&header, &csv_rows)?.as_bytes())?;
        write_atomic(&dir.join("profile.md"), md.as_bytes())?;
        eprintln!("wrote {}/profile.{{json,csv,md}}", dir.display());
    }
    Ok(())
}
