//! `fold`: the paper's protein-folding experiment. Trains the ESMFold trunk + heads (12 blocks in
//! the `gpu` preset, AlphaFold 2's outer product mean) with LoRA, LoRTA and full training on the
//! training split, and reports long-range contact precision (P@L, P@L/5), distogram
//! cross-entropy and lDDT-Cα on PSICOV-150, with the training-loss curves. `--profile` times
//! training steps instead (GPU measurement, `scripts/gpu_fold_call.sh`).
//!
//! Without `--esm DIR` the trunk starts from a learned residue embedding (no ESM-2 weights are
//! available here). The trunk's base weights are random (drawn from `--seed`, identical for every
//! method): no ESMFold trunk checkpoint exists here either.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use lorta_models::load::parse_dtype;
use serde::{Deserialize, Serialize};

use crate::backend::{memory_usage, BackendKind};
use crate::protein::dataset::{load_split, LoadOptions, LoadReport, OnBadChain};
use crate::protein::experiment::{FoldMethod, FoldPreset, FoldReport, FoldRow};
use crate::protein::model::{build_model, esmfold_config, tuning_of, HEAD_PREFIXES};
use crate::protein::profile::{profile_fold, FoldProfileRow, FoldProfileSpec};
use crate::protein::task::{FoldTask, FoldTaskConfig, FoldTrainTask};
use crate::protein::ProteinChain;
use crate::report::{markdown_table, thousands, write_atomic, write_json};
use crate::train::fit::{fit, FitConfig, RunOptions, METRICS_FILE};
use crate::with_backend;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Settings: `smoke` (CI, seconds), `quick` (CPU, minutes), `gpu` (one H200, ≤ 30 min).
    #[arg(long, default_value = "quick")]
    pub preset: String,
    /// Structure data folder (index.tsv, splits/); default `$LORTA_PROTEIN_DATA`, else
    /// `../shared/data/proteins/pdb`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, default_value = "train")]
    pub train_split: String,
    #[arg(long, default_value = "val_psicov150")]
    pub val_split: String,
    /// Methods, comma list of lora[:R], lorta[:R], full (default: the preset's).
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<String>>,
    /// Rank of `lora` / `lorta` given without one.
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// ESM-2 checkpoint folder (HF `EsmModel` layout); without it a learned residue embedding.
    #[arg(long)]
    pub esm: Option<PathBuf>,
    #[arg(long)]
    pub steps: Option<usize>,
    #[arg(long)]
    pub crop: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Trunk blocks (the paper: 12).
    #[arg(long)]
    pub blocks: Option<usize>,
    /// Adapter learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning rate of full training.
    #[arg(long)]
    pub full_lr: Option<f64>,
    /// Learning rate of the residue embedding and distogram head.
    #[arg(long)]
    pub head_lr: Option<f64>,
    /// Weight of backbone FAPE in the loss (0: distogram only).
    #[arg(long)]
    pub fape_weight: Option<f64>,
    #[arg(long)]
    pub recycles: Option<usize>,
    #[arg(long)]
    pub max_train_chains: Option<usize>,
    #[arg(long)]
    pub max_val_chains: Option<usize>,
    /// Evaluate validation chains on at most this many leading residues.
    #[arg(long)]
    pub eval_max_len: Option<usize>,
    /// Compute dtype: f32, bf16 (GPU backends).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Round batch lengths (training crops shorter than --crop, validation chains) up to a
    /// multiple of N, so a GPU compiles kernels for few shapes (default: 16 on GPU backends, 1 on
    /// ndarray). Padded positions are masked.
    #[arg(long)]
    pub pad_to_multiple: Option<usize>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// What to do with a chain that cannot be used (default: skip for the training split,
    /// error for the validation split). Skips are counted and listed in data_report.json.
    #[arg(long, value_enum)]
    pub on_bad_chain: Option<OnBadChain>,
    /// Parse cache folder (default `$XDG_CACHE_HOME` or `~/.cache` + `/lorta-experiments/proteins`).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
    /// Continue interrupted runs in OUT (finished methods are reused either way).
    #[arg(long)]
    pub resume: bool,
    #[arg(long)]
    pub quiet: bool,
    /// Testing aid: each method stops after this many steps of this process.
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
    /// Time training steps instead of training (writes profile.json/md into OUT).
    #[arg(long)]
    pub profile: bool,
    /// --profile: residues per chain.
    #[arg(long, default_value_t = 256)]
    pub length: usize,
    /// --profile: timed steps (after --warmup).
    #[arg(long, default_value_t = 20)]
    pub profile_steps: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// --profile: `opm` (the paper's outer product mean) or `s2p` (ESMFold's sequence-to-pair,
    /// what transformers' trunk has).
    #[arg(long, default_value = "opm")]
    pub pair_update: String,
    /// --profile: run the structure module and FAPE in the step.
    #[arg(long)]
    pub structure: bool,
    /// --profile: model sizes `SEQ_DIM,PAIR_DIM,HEAD_WIDTH` (default: the preset's).
    #[arg(long)]
    pub dims: Option<String>,
    #[command(flatten)]
    pub gpu: crate::backend::GpuArgs,
    #[arg(long)]
    pub out: PathBuf,
}

/// The settings of one method's run (`train_config.json`; resuming requires the same).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldRunConfig {
    pub preset: FoldPreset,
    pub method: FoldMethod,
    pub esm: Option<PathBuf>,
    pub train_split: String,
    pub val_split: String,
    pub train_chains: Vec<String>,
    pub val_chains: Vec<String>,
    pub fit: FitConfig,
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("LORTA_PROTEIN_DATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("../shared/data/proteins/pdb"))
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("lorta-experiments").join("proteins"))
}

/// The preset with the command line's overrides.
pub fn effective_preset(a: &Args) -> Result<FoldPreset> {
    let mut p = FoldPreset::get(&a.preset)?;
    if let Some(m) = &a.methods {
        p.methods = m.iter().map(|s| FoldMethod::parse(s, a.rank)).collect::<Result<_>>()?;
    }
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = a.$field.clone() { p.$field = v; } )* };
    }
    set!(steps, crop, batch_size, lr, full_lr, head_lr, fape_weight, recycles, dtype);
    if let Some(b) = a.blocks {
        p.model.blocks = b;
    }
    if a.max_train_chains.is_some() {
        p.max_train_chains = a.max_train_chains;
    }
    if a.max_val_chains.is_some() {
        p.max_val_chains = a.max_val_chains;
    }
    if a.eval_max_len.is_some() {
        p.eval_max_len = a.eval_max_len;
    }
    if p.methods.is_empty() {
        bail!("--methods: no method given");
    }
    if p.steps == 0 || p.batch_size == 0 || p.crop < 2 {
        bail!("--steps and --batch-size must be at least 1, --crop at least 2");
    }
    parse_dtype(&p.dtype).with_context(|| format!("--dtype `{}`: expected f32, f16 or bf16", p.dtype))?;
    Ok(p)
}

fn chain_ids(chains: &[ProteinChain]) -> Vec<String> {
    chains.iter().map(|c| format!("{}:{}", c.file, c.chain)).collect()
}

/// Result of one method's finished run (`<method>/metrics.json`).
fn read_row(dir: &Path, config: &FoldRunConfig) -> Option<FoldRow> {
    let stored: FoldRunConfig = serde_json::from_str(&std::fs::read_to_string(dir.join("train_config.json")).ok()?).ok()?;
    if &stored != config {
        return None;
    }
    serde_json::from_str(&std::fs::read_to_string(dir.join(METRICS_FILE)).ok()?).ok()
}

pub fn run(a: Args) -> Result<()> {
    a.gpu.prepare(a.backend, parse_dtype(&effective_preset(&a)?.dtype).context("--dtype")?)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    if a.profile {
        return run_profile(&a);
    }
    let preset = effective_preset(&a)?;
    let data_dir = a.data_dir.clone().unwrap_or_else(default_data_dir);
    if !data_dir.join("index.tsv").is_file() {
        bail!("{}: no index.tsv (pass --data-dir, or set LORTA_PROTEIN_DATA, to the proteins/pdb folder)", data_dir.display());
    }
    let cache_dir = a.cache_dir.clone().or_else(default_cache_dir);
    let load = |split: &str, max: Option<usize>| -> Result<(Vec<ProteinChain>, LoadReport)> {
        let opts = LoadOptions { cache_dir: cache_dir.clone(), on_bad_chain: a.on_bad_chain, max_chains: max };
        let (c, r) = load_split(&data_dir, split, &opts)?;
        if !a.quiet {
            eprintln!("{}", r.summary());
        }
        Ok((c, r))
    };
    let (train, train_report) = load(&a.train_split, preset.max_train_chains)?;
    let (val, val_report) = load(&a.val_split, preset.max_val_chains)?;
    let data = vec![train_report, val_report];
    write_json(&a.out.join("data_report.json"), &data)?;
    write_json(&a.out.join("settings.json"), &serde_json::json!({ "preset": preset, "data_dir": data_dir, "esm": a.esm, "backend": a.backend.name(), "seed": a.seed }))?;

    let mut rows = Vec::new();
    for (i, m) in preset.methods.iter().enumerate() {
        let dir = a.out.join(m.dir_name());
        let total = preset.steps;
        let fit_cfg = FitConfig {
            label: m.label(),
            epochs: 1,
            max_steps: Some(total),
            lr: if m.method == "full" { preset.full_lr } else { preset.lr },
            head_lr: preset.head_lr,
            weight_decay: 0.0,
            warmup_ratio: preset.warmup_ratio,
            lr_scheduler: Default::default(),
            max_grad_norm: preset.max_grad_norm,
            seed: a.seed,
            eval_every: Some((total / preset.evals.max(1)).max(1)),
        };
        let run_config = FoldRunConfig {
            preset: preset.clone(),
            method: m.clone(),
            esm: a.esm.clone(),
            train_split: a.train_split.clone(),
            val_split: a.val_split.clone(),
            train_chains: chain_ids(&train),
            val_chains: chain_ids(&val),
            fit: fit_cfg.clone(),
        };
        let what = format!("[{}/{}] {}", i + 1, preset.methods.len(), m.label());
        if let Some(row) = read_row(&dir, &run_config) {
            if !a.quiet {
                eprintln!("{what}: finished earlier, reused ({})", dir.display());
            }
            rows.push(row);
            continue;
        }
        if !a.quiet {
            eprintln!("{what}: training {} steps", total);
        }
        let row = with_backend!(a.backend, |B, device| train_method::<burn_autodiff::Autodiff<B>>(&a, &run_config, &train, &val, &dir, &device))?;
        match row {
            Some(r) => rows.push(r),
            None => {
                println!("stopped early (--stop-after); continue with --resume");
                return Ok(());
            }
        }
    }
    let report = FoldReport::new(&preset.name, &a.val_split, rows, data)?;
    report.write(&a.out)?;
    println!("{}", report.markdown);
    println!("results in {}", a.out.display());
    Ok(())
}

fn train_method<B: AutodiffBackend>(
    a: &Args,
    rc: &FoldRunConfig,
    train: &[ProteinChain],
    val: &[ProteinChain],
    dir: &Path,
    device: &B::Device,
) -> Result<Option<FoldRow>> {
    let p = &rc.preset;
    let dtype = parse_dtype(&p.dtype).context("--dtype")?;
    let config = esmfold_config(&p.model, None);
    let tuning = tuning_of(&rc.method, a.seed)?;
    let model = build_model::<B>(&config, &tuning, a.esm.as_deref(), dtype, a.seed, device)?;
    let trainable_params = model.trainable_params();
    let task_cfg = || FoldTaskConfig {
        crop: p.crop,
        batch_size: p.batch_size,
        recycles: p.recycles,
        fape_weight: p.fape_weight,
        eval_max_len: p.eval_max_len,
        eval_structure: p.model.structure.is_some() || p.fape_weight > 0.0,
        pad_to_multiple: crate::backend::pad_multiple(a.backend, a.pad_to_multiple),
    };
    // The curve's evaluations use the first `curve_val_chains` validation chains; the final
    // metrics use all of them.
    let curve_val: Vec<ProteinChain> = val.iter().take(p.curve_val_chains.max(1)).cloned().collect();
    let task = FoldTrainTask::<lorta_models::esmfold::EsmFold<B>>::new(FoldTask::new(train.to_vec(), curve_val, task_cfg())?, a.seed, &HEAD_PREFIXES);
    // a run is one partial epoch: checkpoint five times along it, so an interrupted run (a GPU
    // job's time limit) resumes with --resume near where it stopped
    let save_every = Some((p.steps / 5).max(1));
    let opts = RunOptions { resume: a.resume, quiet: a.quiet, stop_after: a.stop_after, save_every, ..Default::default() };
    let started = std::time::Instant::now();
    let outcome = fit(&task, model, &rc.fit, &serde_json::to_value(rc)?, dir, &opts, device)?;
    if !outcome.finished {
        return Ok(None);
    }
    let full = FoldTask::new(train.to_vec(), val.to_vec(), task_cfg())?;
    let metrics = full.evaluate(&outcome.model.valid(), device)?;
    let row = FoldRow {
        label: rc.method.label(),
        method: rc.method.method.clone(),
        rank: rc.method.rank.filter(|_| rc.method.method != "full"),
        trainable_params,
        steps: outcome.total_steps,
        metrics,
        loss_curve: outcome.log.iter().map(|e| (e.step as f64, e.train_loss)).collect(),
        seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&dir.join(METRICS_FILE), &row)?;
    Ok(Some(row))
}

fn run_profile(a: &Args) -> Result<()> {
    let preset = effective_preset(a)?;
    let mut spec_model = preset.model.clone();
    if let Some(d) = &a.dims {
        let v: Vec<usize> = d.split(',').map(|x| x.trim().parse()).collect::<std::result::Result<_, _>>().map_err(|_| anyhow::anyhow!("--dims `{d}`: expected SEQ_DIM,PAIR_DIM,HEAD_WIDTH"))?;
        if v.len() != 3 {
            bail!("--dims `{d}`: expected SEQ_DIM,PAIR_DIM,HEAD_WIDTH");
        }
        spec_model.sequence_dim = v[0];
        spec_model.pair_dim = v[1];
        spec_model.sequence_head_width = v[2];
        spec_model.pair_head_width = v[2];
    }
    spec_model.outer_product_mean = match a.pair_update.as_str() {
        "opm" => Some(spec_model.outer_product_mean.unwrap_or(32)),
        "s2p" => None,
        other => bail!("--pair-update `{other}`: expected opm or s2p"),
    };
    let dtype = parse_dtype(&preset.dtype).context("--dtype")?;
    let spec = FoldProfileSpec {
        config: esmfold_config(&spec_model, None),
        methods: preset.methods.clone(),
        length: a.length,
        batch: preset.batch_size,
        dtype,
        steps: a.profile_steps,
        warmup: a.warmup,
        structure: a.structure,
        backend: a.backend.name().to_string(),
    };
    let kind = a.backend;
    let memory = move || memory_usage(kind);
    let mut print = |r: &FoldProfileRow| println!("{}", serde_json::to_string(r).unwrap_or_default());
    let rows = with_backend!(a.backend, |B, device| profile_fold::<burn_autodiff::Autodiff<B>>(&spec, &device, &memory, &mut print))?;
    write_json(&a.out.join("profile.json"), &rows)?;
    let gib = |b: Option<u64>| b.map(|x| format!("{:.2}", x as f64 / (1u64 << 30) as f64)).unwrap_or_else(|| "n/a".into());
    let header: Vec<String> = ["method", "rank", "trainable params", "median ms/step", "min", "max", "peak GiB", "reserved GiB"].map(String::from).to_vec();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.method.clone(),
                r.rank.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
                thousands(r.trainable_params),
                format!("{:.1}", r.ms_median),
                format!("{:.1}", r.ms_min),
                format!("{:.1}", r.ms_max),
                gib(r.peak_memory_bytes),
                gib(r.peak_reserved_bytes),
            ]
        })
        .collect();
    let md = format!(
        "ours ({}): {} blocks, L = {}, batch {}, {:?}, pair update {}, structure module {}\n\n{}",
        a.backend.name(),
        spec.config.trunk.num_blocks,
        spec.length,
        spec.batch,
        spec.dtype,
        a.pair_update,
        if spec.structure { "on" } else { "off" },
        markdown_table(&header, &body)
    );
    write_atomic(&a.out.join("profile.md"), md.as_bytes())?;
    eprintln!("{md}");
    Ok(())
}
