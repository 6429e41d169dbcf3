//! `dpo`: direct preference optimisation of an adapter on HH-RLHF or Orca-DPO pairs; the
//! reference policy is the same model with the adapter switched off. Defaults are the paper's
//! DPO settings (β 0.1, max prompt 1024, max length 1536, lr 5e-5, 200 warm-up steps, batch 16 =
//! 1 × 16 accumulation, 1 epoch, α 16, cosine decay).
use std::path::PathBuf;

use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;

use super::llm_common::{write_llm_results, LlmRunArgs, MethodArgs, OptimArgs};
use crate::lm::load::resolve;
use crate::preference::data::load_preferences;
use crate::preference::task::{encode_pairs, DpoConfig, DpoTask};
use crate::train::schedule::ScheduleKind;
use crate::train::fit;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// HF model folder or cache name.
    #[arg(long)]
    pub model: String,
    /// Preference pairs: HH-RLHF JSONL(.gz) or Orca-DPO JSON/JSONL.
    #[arg(long)]
    pub data: PathBuf,
    /// Separate evaluation pairs (default: the last --eval-pairs of --data).
    #[arg(long)]
    pub eval_data: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    pub eval_pairs: usize,
    #[arg(long)]
    pub max_train_pairs: Option<usize>,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0.1)]
    pub beta: f64,
    #[arg(long, default_value_t = 1024)]
    pub max_prompt_len: usize,
    #[arg(long, default_value_t = 1536)]
    pub max_len: usize,
    /// Render prompts with the tokenizer's chat template.
    #[arg(long)]
    pub chat_template: bool,
    #[command(flatten)]
    pub method: MethodArgs,
    #[command(flatten)]
    pub optim: OptimArgs,
    #[command(flatten)]
    pub run: LlmRunArgs,
}

pub fn run(a: Args) -> Result<()> {
    crate::with_backend!(a.run.backend, |B, device| run_on::<burn_autodiff::Autodiff<B>>(&a, &device))
}

fn run_on<B: AutodiffBackend>(a: &Args, device: &B::Device) -> Result<()> {
    let lm = resolve(&a.model)?;
    let tok = lm.tokenizer()?;
    let dtype = a.run.prepare()?;
    let data = load_preferences(&a.data)?;
    if !data.skipped.is_empty() && !a.run.quiet {
        eprintln!(
            "{}: {} of {} rows not usable (first: row {} — {}); listed in settings.json",
            data.source,
            data.skipped.len(),
            data.skipped.len() + data.pairs.len(),
            data.skipped[0].0,
            data.skipped[0].1
        );
    }
    let mut pairs = data.pairs.clone();
    let eval_pairs = match &a.eval_data {
        Some(p) => load_preferences(p)?.pairs,
        None => {
            if pairs.len() < 2 {
                bail!("{}: need at least 2 pairs (train + eval) or --eval-data", a.data.display());
            }
            let n = a.eval_pairs.clamp(1, pairs.len() - 1);
            pairs.split_off(pairs.len() - n)
        }
    };
    if let Some(m) = a.max_train_pairs {
        pairs.truncate(m);
    }
    let method = a.method.method();
    if matches!(method.method.as_str(), "full" | "ft") {
        bail!("--method full: DPO's reference policy is the model with its adapter switched off; full fine-tuning has none (use an adapter method)");
    }
    let batch_size = a.optim.batch_size.unwrap_or(16);
    let cfg = DpoConfig { beta: a.beta, max_prompt_len: a.max_prompt_len, max_len: a.max_len, batch_size, eval_batch_size: a.optim.eval_batch_size, chat_template: a.chat_template, pad_to_multiple: a.run.pad_to_multiple() };
    let task = DpoTask::new(encode_pairs(&pairs, &tok, &cfg)?, encode_pairs(&eval_pairs, &tok, &cfg)?, tok.pad_id, cfg.clone());
    let tuning = method.tuning(a.optim.seed)?;
    let model = lm.load::<B>(&tuning, dtype, device)?;
    let trainable = model.trainable_params();
    let steps = a.optim.max_steps.unwrap_or(a.optim.epochs * pairs.len().div_ceil(batch_size));
    let mut opt = a.optim.clone();
    if opt.warmup_ratio.is_none() && opt.warmup_steps.is_none() {
        opt.warmup_steps = Some(200);
    }
    opt.lr_scheduler.get_or_insert(ScheduleKind::Cosine);
    let fit_cfg = opt.fit(&method.name, a.optim.lr.unwrap_or(5e-5), a.optim.weight_decay.unwrap_or(0.0), steps);
    let settings = serde_json::json!({
        "command": "dpo", "model": lm.describe(), "data": a.data, "format": data.format, "eval_data": a.eval_data,
        "train_pairs": pairs.len(), "eval_pairs": eval_pairs.len(), "skipped_rows": data.skipped, "dpo": cfg,
        "method": method, "dtype": a.run.compute.dtype, "fit": fit_cfg, "trainable_params": trainable,
        "reference_policy": "the same model with its adapter switched off",
    });
    let opts = a.run.options(&a.optim);
    let outcome = fit::<B, _>(&task, model, &fit_cfg, &settings, &a.out, &opts, device)?;
    if !outcome.finished {
        return Ok(());
    }
    write_llm_results(&outcome, &settings, &a.out, ("DPO (sigmoid loss)", "loss"), &lm.describe(), a.run.quiet)
}
