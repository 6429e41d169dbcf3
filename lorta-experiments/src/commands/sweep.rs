//! `sweep`: the rank sweep (dev score vs trainable parameters for LoRA and LoRTA), from
//! `lorta-experiments/tables/sweep.toml`.
use std::path::PathBuf;

use anyhow::Result;

use crate::backend::BackendKind;
use crate::glue::GlueTask;
use crate::tables::sweep::{default_config, run_sweep};
use crate::tables::TableRun;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// GLUE task(s), comma list (default: the preset's).
    #[arg(long, value_delimiter = ',')]
    pub task: Option<Vec<String>>,
    /// Methods of the sweep config to run, comma list (default: all, i.e. lorta,lora).
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<String>>,
    /// Ranks, comma list (default: the config's 1,2,4,…,256).
    #[arg(long, value_delimiter = ',')]
    pub ranks: Option<Vec<usize>>,
    /// Seeds, comma list (default: the preset's).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// quick (CPU, all-MiniLM-L6-v2), gpu (RoBERTa-base, --backend cuda) or smoke (CI).
    #[arg(long, default_value = "quick")]
    pub preset: String,
    /// Sweep config file (default: lorta-experiments/tables/sweep.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output folder (default: results/sweep).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Model folder or HF-cache name (overrides the preset's).
    #[arg(long)]
    pub model: Option<String>,
    /// GLUE folder (overrides the preset's; default the `fetch glue` cache).
    #[arg(long)]
    pub glue_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
    #[command(flatten)]
    pub compute: crate::backend::ComputeArgs,
    #[command(flatten)]
    pub jobs: crate::runner::jobs::JobsArgs,
    /// Retrain cells that already have results.
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: Args) -> Result<()> {
    let tasks = match &a.task {
        Some(t) => Some(t.iter().map(|s| s.parse::<GlueTask>()).collect::<std::result::Result<Vec<_>, _>>()?),
        None => None,
    };
    let r = TableRun {
        config_file: a.config.unwrap_or_else(default_config),
        preset: a.preset,
        out: a.out.unwrap_or_else(|| PathBuf::from("results").join("sweep")),
        model: a.model,
        glue_dir: a.glue_dir,
        tasks,
        seeds: a.seeds,
        backend: a.backend,
        compute: a.compute,
        force: a.force,
        skip_missing: false,
        quiet: a.quiet,
        jobs: a.jobs,
    };
    run_sweep(&r, a.methods.as_deref(), a.ranks.as_deref())
}
