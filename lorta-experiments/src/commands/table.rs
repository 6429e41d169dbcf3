//! `table1` / `table2`: the paper's GLUE tables from `lorta-experiments/tables/<table>.toml`.
use std::path::PathBuf;

use anyhow::Result;

use crate::backend::BackendKind;
use crate::glue::GlueTask;
use crate::tables::{run_table, TableRun};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// paper (full recipe, roberta-base), quick (CPU minutes, all-MiniLM-L6-v2) or smoke (CI).
    #[arg(long, default_value = "quick")]
    pub preset: String,
    /// Table config file (default: lorta-experiments/tables/<table>.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output folder (default: results/<table>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Model folder or HF-cache name (overrides the preset's).
    #[arg(long)]
    pub model: Option<String>,
    /// GLUE folder (overrides the preset's; default the `fetch glue` cache).
    #[arg(long)]
    pub glue_dir: Option<PathBuf>,
    /// Only these tasks (comma list).
    #[arg(long, value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,
    /// Override the preset's seeds (comma list).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
    #[command(flatten)]
    pub compute: crate::backend::ComputeArgs,
    #[command(flatten)]
    pub jobs: crate::runner::jobs::JobsArgs,
    /// Retrain cells that already have results.
    #[arg(long)]
    pub force: bool,
    /// Leave tasks whose data is missing out of the table (marked n/a) instead of stopping.
    #[arg(long)]
    pub skip_missing: bool,
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(table: &str, a: Args) -> Result<()> {
    let config_file = a
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tables").join(format!("{table}.toml")));
    let tasks = match &a.tasks {
        Some(t) => Some(t.iter().map(|s| s.parse::<GlueTask>()).collect::<std::result::Result<Vec<_>, _>>()?),
        None => None,
    };
    run_table(&TableRun {
        config_file,
        preset: a.preset,
        out: a.out.unwrap_or_else(|| PathBuf::from("results").join(table)),
        model: a.model,
        glue_dir: a.glue_dir,
        tasks,
        seeds: a.seeds,
        backend: a.backend,
        compute: a.compute,
        force: a.force,
        skip_missing: a.skip_missing,
        quiet: a.quiet,
        jobs: a.jobs,
    })
}
