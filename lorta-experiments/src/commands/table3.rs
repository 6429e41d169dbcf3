//! `table3`: the paper's Table 3 (LLaMA on COPA, ReCoRD, SQuAD, DROP in the MeZO setting) from
//! `lorta-experiments/tables/table3.toml`.
use std::path::PathBuf;

use anyhow::Result;

use crate::backend::BackendKind;
use crate::superglue::table::{run_table3, Table3Run};
use crate::superglue::LlmTask;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// paper (LLaMA-2-7B, HF cache), quick (SmolLM2-135M, data at hand) or smoke (CI).
    #[arg(long, default_value = "quick")]
    pub preset: String,
    /// Table config file (default: lorta-experiments/tables/table3.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output folder (default: results/table3).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Model (HF folder or cache name) overriding the preset's.
    #[arg(long)]
    pub model: Option<String>,
    /// Data folder with COPA/, ReCoRD/, SQuAD/, DROP/ (overrides the preset's).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Only these tasks (comma list of copa, record, squad, drop).
    #[arg(long, value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,
    /// Only these methods (row names or their slugs, comma list: `lora-r8,lorta-r4`).
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
    /// Retrain cells that already have results.
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub quiet: bool,
    /// Wait for the device after every step and record step times (each cell's run.json).
    #[arg(long)]
    pub time_steps: bool,
    /// Stop each cell after N steps of this process (to test resuming).
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
    /// Round padded sequence lengths up to a multiple of N, so a GPU sees few distinct shapes
    /// (default: 16 on GPU backends, 1 on ndarray).
    #[arg(long)]
    pub pad_to_multiple: Option<usize>,
    #[command(flatten)]
    pub gpu: crate::backend::GpuArgs,
}

pub fn run(a: Args) -> Result<()> {
    let config_file = a.config.clone().unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tables").join("table3.toml"));
    let tasks = match &a.tasks {
        Some(t) => Some(t.iter().map(|s| s.parse::<LlmTask>()).collect::<Result<Vec<_>>>()?),
        None => None,
    };
    let r = Table3Run {
        config_file,
        preset: a.preset.clone(),
        out: a.out.clone().unwrap_or_else(|| PathBuf::from("results").join("table3")),
        model: a.model.clone(),
        data_dir: a.data_dir.clone(),
        tasks,
        methods: a.methods.clone(),
        seeds: a.seeds.clone(),
        force: a.force,
        quiet: a.quiet,
        stop_after: a.stop_after,
        time_steps: a.time_steps,
        pad_to_multiple: crate::backend::pad_multiple(a.backend, a.pad_to_multiple),
    };
    let preset = crate::superglue::table::Table3Config::read(&r.config_file)?.preset(&r.preset)?.clone();
    a.gpu.prepare(a.backend, crate::lm::load::parse_dtype_name(&preset.dtype)?)?;
    let md = crate::with_backend!(a.backend, |B, device| run_table3::<burn_autodiff::Autodiff<B>>(&r, &device))?;
    if !md.is_empty() {
        println!("{md}");
        println!("results in {}", r.out.display());
    }
    Ok(())
}
