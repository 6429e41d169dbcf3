//! Flags shared by `sft` and `dpo`: the model, the method, the optimisation settings.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::backend::Backend;
use lorta_models::llama::LlamaForCausalLM;

use crate::lm::method::LlmMethod;
use crate::train::schedule::ScheduleKind;
use crate::backend::{BackendKind, ComputeArgs};
use burn::tensor::DType;
use crate::lm::run_report::write_run_report;
use crate::report::write_json;
use crate::train::{FitConfig, FitOutcome, RunOptions};

#[derive(clap::Args, Debug, Clone)]
pub struct MethodArgs {
    /// full, houlsby, prefix, or an adapter method (lora, lorta, ia3, vera, loretta-rep, ...).
    #[arg(long, default_value = "lorta")]
    pub method: String,
    /// Adapter rank (Houlsby bottleneck width, prefix length).
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// α (update scaled by α/r).
    #[arg(long, default_value_t = 16.0)]
    pub alpha: f64,
    /// Adapted matrices, comma list of q,k,v,o.
    #[arg(long, default_value = "q,k,v,o", value_delimiter = ',')]
    pub targets: Vec<String>,
}

impl MethodArgs {
    pub fn method(&self) -> LlmMethod {
        let has_alpha = !matches!(self.method.as_str(), "full" | "ft" | "houlsby" | "adapter" | "prefix" | "ia3");
        LlmMethod {
            name: format!("{} r{}", self.method, self.rank),
            method: self.method.clone(),
            rank: self.rank,
            alpha: has_alpha.then_some(self.alpha),
            targets: self.targets.clone(),
            lr: None,
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct OptimArgs {
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Stop after this many optimizer steps (overrides --epochs for the schedule).
    #[arg(long)]
    pub max_steps: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Warm-up as a fraction of the steps (overrides --warmup-steps).
    #[arg(long)]
    pub warmup_ratio: Option<f64>,
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// Decay after warm-up (default: linear; `dpo`: cosine, the paper's DPO schedule).
    #[arg(long, value_enum)]
    pub lr_scheduler: Option<ScheduleKind>,
    /// Global gradient-norm clipping; 0 disables.
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long, default_value_t = 8)]
    pub eval_batch_size: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Evaluate every N optimizer steps (default: every epoch).
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Also checkpoint every N steps.
    #[arg(long)]
    pub save_every: Option<usize>,
    /// Wait for the device after every step and record step times (run.json: step_ms, median).
    #[arg(long)]
    pub time_steps: bool,
}

/// Device, dtype and run control shared by the LLM training commands (`sft`, `dpo`).
#[derive(clap::Args, Debug, Clone)]
pub struct LlmRunArgs {
    #[command(flatten)]
    pub compute: ComputeArgs,
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
    #[arg(long)]
    pub resume: bool,
    #[arg(long)]
    pub quiet: bool,
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
}

impl LlmRunArgs {
    /// The compute dtype, with the backend readied for it (kernel cache, f32 matmul precision).
    pub fn prepare(&self) -> Result<DType> {
        let dtype = self.compute.dtype()?;
        self.compute.prepare(self.backend, dtype)?;
        Ok(dtype)
    }

    pub fn pad_to_multiple(&self) -> usize {
        self.compute.pad_to_multiple(self.backend)
    }

    /// The training loop's options for these flags and the optimiser's checkpoint/timing flags.
    pub fn options(&self, optim: &OptimArgs) -> RunOptions {
        RunOptions {
            resume: self.resume,
            quiet: self.quiet,
            save_every: optim.save_every,
            stop_after: self.stop_after,
            time_steps: optim.time_steps,
            ..Default::default()
        }
    }
}

impl OptimArgs {
    /// The fit settings; `warmup_steps` becomes a ratio of `total_steps`.
    pub fn fit(&self, label: &str, lr: f64, weight_decay: f64, total_steps: usize) -> FitConfig {
        let warmup_ratio = match (self.warmup_ratio, self.warmup_steps) {
            (Some(r), _) => r,
            (None, Some(s)) => (s as f64 / total_steps.max(1) as f64).min(1.0),
            (None, None) => 0.0,
        };
        FitConfig {
            label: label.to_string(),
            epochs: self.epochs,
            max_steps: self.max_steps,
            lr,
            head_lr: lr,
            weight_decay,
            warmup_ratio,
            lr_scheduler: self.lr_scheduler.unwrap_or_default(),
            max_grad_norm: (self.max_grad_norm > 0.0).then_some(self.max_grad_norm),
            seed: self.seed,
            eval_every: self.eval_every,
        }
    }
}

/// What `sft` and `dpo` write after training: `metrics.json` (settings, best and last evaluation,
/// history), the markdown/PNG report (`title`, `metric` plotted), and the adapter folder; printed
/// unless `quiet`.
pub fn write_llm_results<B: Backend>(
    outcome: &FitOutcome<LlamaForCausalLM<B>>,
    settings: &serde_json::Value,
    out: &Path,
    (title, metric): (&str, &str),
    base: &str,
    quiet: bool,
) -> Result<()> {
    let (best, last) = outcome.best_and_last(false)?;
    write_json(&out.join("metrics.json"), &serde_json::json!({"settings": settings, "best": best, "last": last, "history": outcome.log, "total_steps": outcome.total_steps}))?;
    let md = write_run_report(out, title, settings, metric, &outcome.log)?;
    let adapter = save_adapter(&outcome.model, out, base)?;
    if !quiet {
        println!("{md}");
        if let Some(d) = adapter {
            println!("adapter saved in {}", d.display());
        }
    }
    Ok(())
}

/// Saves the trained adapter (PEFT / LoRTA folder layout) when the method has one.
pub fn save_adapter<B: Backend>(model: &LlamaForCausalLM<B>, dir: &Path, base: &str) -> Result<Option<PathBuf>> {
    match &model.adapters {
        Some(a) => {
            let out = dir.join("adapter");
            lorta_core::io::save_adapter(a, &out, &model.naming(), Some(base)).with_context(|| format!("saving the adapter to {}", out.display()))?;
            Ok(Some(out))
        }
        None => {
            let _ = model.num_params();
            Ok(None)
        }
    }
}
