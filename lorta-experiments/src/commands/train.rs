//! `train`: fine-tune one adapter method on one GLUE task (see [`crate::train`]).
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use lorta_core::{AdapterConfig, MatrixKind, Method};
use lorta_models::tuning::HeadTuning;

use crate::backend::BackendKind;
use crate::glue::{self, GlueTask};
use crate::train::data::load_task;
use crate::train::{RunOptions, TrainConfig};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// GLUE task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli.
    #[arg(long)]
    pub task: String,
    /// Adapter method: lora, lorta, vera, ia3, fact-tt, fact-tk, lotr, loretta-rep, or `none`
    /// (head only).
    #[arg(long)]
    pub method: String,
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// Adapter scaling numerator α (update scaled by α/r); default: the method's (α = r).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Adapted matrices, comma list of q,k,v,o.
    #[arg(long, default_value = "q,k,v,o")]
    pub targets: String,
    /// Head training: `full` (dense + output trainable), `lora:R` (LoRTA+LoRA: dense frozen and
    /// adapted by a rank-R LoRA, output trainable) or `frozen`.
    #[arg(long, default_value = "full")]
    pub head: String,
    /// Checkpoint folder, or a model name resolved in the local Hugging Face cache.
    #[arg(long)]
    pub model: String,
    /// GLUE folder (original layout, e.g. RTE/train.tsv); default the cache `fetch glue` fills.
    #[arg(long)]
    pub glue_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Stop after this many optimizer steps (overrides --epochs for the schedule).
    #[arg(long)]
    pub max_steps: Option<usize>,
    #[arg(long)]
    pub max_train_samples: Option<usize>,
    #[arg(long)]
    pub max_eval_samples: Option<usize>,
    /// Adapter learning rate (default: the paper's recipe for the task).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Head learning rate (default: the paper's recipe for the task).
    #[arg(long)]
    pub head_lr: Option<f64>,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 0.06)]
    pub warmup_ratio: f64,
    /// Global gradient-norm clipping; 0 disables.
    #[arg(long, default_value_t = 1000.0)]
    pub max_grad_norm: f64,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 64)]
    pub eval_batch_size: usize,
    #[arg(long, default_value_t = 128)]
    pub max_seq_len: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Evaluate every N steps instead of every epoch.
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Also checkpoint every N steps (always at each epoch end).
    #[arg(long)]
    pub save_every: Option<usize>,
    /// Length bucketing: sort chunks of K·batch-size shuffled examples by length.
    #[arg(long)]
    pub bucket: Option<usize>,
    /// Dropout probability for every dropout of the model (hidden, attention, classifier) in
    /// training; default: the checkpoint's config.json (`hidden_dropout_prob`, ...). 0 disables.
    #[arg(long)]
    pub dropout: Option<f64>,
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
    #[command(flatten)]
    pub compute: crate::backend::ComputeArgs,
    /// Read the training loss back from the device every N steps (GPU: avoids a host sync per
    /// step; the logged means are the same).
    #[arg(long, default_value_t = crate::train::fit::DEFAULT_LOSS_EVERY)]
    pub loss_every: usize,
    /// Measurement: wait for the device after each step and record step times in run.json
    /// (median after 5 warm-up steps). Slows GPU training slightly.
    #[arg(long)]
    pub time_steps: bool,
    /// Random weights from the checkpoint's config.json (timing runs on an architecture whose
    /// weights are not at hand); the tokenizer still comes from the folder.
    #[arg(long)]
    pub random_weights: bool,
    /// Continue from `OUT/checkpoint.safetensors` (same settings required).
    #[arg(long)]
    pub resume: bool,
    #[arg(long)]
    pub quiet: bool,
    /// Testing aid: exit after this many steps of this process (the checkpoint stays).
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
    #[arg(long)]
    pub out: PathBuf,
}

/// The paper's per-task (epochs, head lr, adapter lr) from the LoRTA/VeRA GLUE recipe.
pub fn paper_recipe(task: GlueTask) -> (usize, f64, f64) {
    match task {
        GlueTask::Sst2 => (60, 4e-3, 4e-3),
        GlueTask::Mrpc => (30, 4e-3, 1e-2),
        GlueTask::Cola => (80, 1e-3, 1e-2),
        GlueTask::Qnli => (25, 4e-3, 1e-2),
        GlueTask::Rte => (160, 1e-2, 1e-2),
        GlueTask::Stsb => (80, 5e-3, 5e-2),
        _ => (10, 4e-3, 4e-3),
    }
}

pub fn parse_head(s: &str) -> Result<HeadTuning> {
    let t = s.trim().to_ascii_lowercase();
    Ok(match t.as_str() {
        "full" => HeadTuning::Full,
        "frozen" => HeadTuning::Frozen,
        _ => match t.strip_prefix("lora:").and_then(|r| r.parse::<usize>().ok()) {
            Some(r) if r > 0 => HeadTuning::Lora { r },
            _ => bail!("--head `{s}`: expected full, frozen or lora:R (R a positive rank)"),
        },
    })
}

/// The adapter config of `method` (`none` → no adapter) at `rank` on `targets`.
pub fn adapter_config(method: &str, rank: usize, alpha: Option<f64>, targets: &str) -> Result<Option<AdapterConfig>> {
    if method.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let m: Method = method.parse().map_err(|e: String| anyhow::anyhow!("--method: {e}"))?;
    let t = MatrixKind::parse_list(targets)
        .ok_or_else(|| anyhow::anyhow!("--targets `{targets}`: expected a comma list of q, k, v, o"))?;
    if rank == 0 {
        bail!("--rank must be at least 1");
    }
    let mut c = AdapterConfig::default_for(m, rank, &t);
    if let Some(a) = alpha {
        set_alpha(&mut c, a)?;
    }
    Ok(Some(c))
}

/// Sets α on methods that have one (through the serialized form, so every method's field works).
pub fn set_alpha(c: &mut AdapterConfig, alpha: f64) -> Result<()> {
    let mut v = serde_json::to_value(&*c)?;
    match v.get_mut("alpha") {
        Some(a) => *a = serde_json::json!(alpha),
        None => bail!("--alpha: method {} has no α", c.method().label()),
    }
    *c = serde_json::from_value(v)?;
    Ok(())
}

/// Everything a run needs that is missing, with the flag or command that provides it.
pub fn missing_inputs(model: &str, glue_dir: Option<&Path>, tasks: &[GlueTask]) -> Vec<String> {
    let mut out = Vec::new();
    if let Err(e) = lorta_models::hub::ModelDir::resolve(model) {
        out.push(format!("model `{model}`: {e}"));
    }
    for &t in tasks {
        if let Err(m) = glue::resolve_glue_dir(glue_dir, t) {
            let mut s = m.to_string();
            // Some GLUE exports ship QNLI's dev split only; say so for the folder actually searched.
            let train_only_missing = m.missing.iter().all(|p| p.file_stem().is_some_and(|f| f == "train"));
            if t == GlueTask::Qnli && train_only_missing {
                s.push_str(&format!("\n(note: {} has QNLI's dev split but no train split)", m.dir.display()));
            }
            out.push(s);
        }
    }
    out
}

pub fn stop_if_missing(missing: &[String]) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    bail!("cannot start, missing inputs:\n- {}", missing.join("\n- "))
}

pub fn build_config(a: &Args) -> Result<TrainConfig> {
    let task: GlueTask = a.task.parse()?;
    let (_, rec_head, rec_lr) = paper_recipe(task);
    let model = lorta_models::hub::resolve_model_dir(&a.model)?;
    let glue_dir = glue::resolve_glue_dir(a.glue_dir.as_deref(), task)?;
    let adapter = adapter_config(&a.method, a.rank, a.alpha, &a.targets)?;
    let label = match &adapter {
        Some(c) => format!("{} r{}", c.method().label(), a.rank),
        None => "head only".to_string(),
    };
    let c = TrainConfig {
        task: task.name().to_string(),
        label,
        adapter,
        head: parse_head(&a.head)?,
        model,
        glue_dir,
        epochs: a.epochs,
        max_steps: a.max_steps,
        max_train_samples: a.max_train_samples,
        max_eval_samples: a.max_eval_samples,
        batch_size: a.batch_size,
        eval_batch_size: a.eval_batch_size,
        max_seq_len: a.max_seq_len,
        lr: a.lr.unwrap_or(rec_lr),
        head_lr: a.head_lr.unwrap_or(rec_head),
        weight_decay: a.weight_decay,
        warmup_ratio: a.warmup_ratio,
        max_grad_norm: (a.max_grad_norm > 0.0).then_some(a.max_grad_norm),
        seed: a.seed,
        eval_every: a.eval_every,
        bucket_chunks: a.bucket,
        dropout: a.dropout,
        dtype: a.compute.dtype()?,
        pad_to_multiple: a.compute.pad_to_multiple(a.backend),
        random_weights: a.random_weights,
    };
    c.validate()?;
    Ok(c)
}

/// Trains one configuration on the chosen backend (data loaded here).
pub fn run_config(
    config: &TrainConfig,
    backend: BackendKind,
    compute: &crate::backend::ComputeArgs,
    out: &Path,
    opts: &RunOptions,
) -> Result<Option<crate::train::RunMetrics>> {
    let task = config.task()?;
    compute.prepare(backend, config.dtype)?;
    let data = load_task(
        &config.glue_dir,
        task,
        &config.model,
        config.max_seq_len,
        config.max_train_samples,
        config.max_eval_samples,
    )?;
    write_data_report(out, &data)?;
    crate::with_backend!(backend, |B, device| crate::train::train::<burn_autodiff::Autodiff<B>>(
        config, &data, out, opts, &device
    ))
}

/// File in a run folder that records the data actually used (sources, sizes, rows left out).
pub const DATA_REPORT_FILE: &str = "data.json";

fn write_data_report(out: &Path, data: &crate::train::data::TaskData) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| anyhow::anyhow!("creating {}: {e}", out.display()))?;
    let skipped: usize = data.skipped_rows.iter().map(|s| s.count).sum();
    crate::report::write_json(
        &out.join(DATA_REPORT_FILE),
        &serde_json::json!({
            "train_source": data.train_source,
            "dev_source": data.dev_source,
            "train_examples": data.train.len(),
            "dev_examples": data.dev.len(),
            "skipped_rows_total": skipped,
            "skipped_rows": data.skipped_rows,
        }),
    )
}

pub fn run(a: Args) -> Result<()> {
    let task: GlueTask = a.task.parse()?;
    stop_if_missing(&missing_inputs(&a.model, a.glue_dir.as_deref(), &[task]))?;
    let config = build_config(&a)?;
    let opts =
        RunOptions { resume: a.resume, save_every: a.save_every, quiet: a.quiet, stop_after: a.stop_after, loss_every: a.loss_every, time_steps: a.time_steps };
    match run_config(&config, a.backend, &a.compute, &a.out, &opts)? {
        Some(m) => {
            let base = m.majority_baseline.map(|b| format!(", majority baseline {b:.4}")).unwrap_or_default();
            println!(
                "{} {}: best {} {:.4} (step {}), last {:.4}; {} trainable parameters ({} excl. head){base}; results in {}",
                m.task,
                m.label,
                m.main_metric,
                m.best.score,
                m.best.step,
                m.last.score,
                m.trainable_params,
                m.trainable_params_excl_head,
                a.out.display()
            );
        }
        None => println!("stopped early (--stop-after); resume with --resume"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qnli_note_names_the_folder_searched() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("QNLI")).unwrap();
        std::fs::write(d.path().join("QNLI/dev.tsv"), "index\tquestion\tsentence\tlabel\n").unwrap();
        let msgs = missing_inputs("/nonexistent-model-dir", Some(d.path()), &[GlueTask::Qnli]);
        let all = msgs.join("\n");
        assert!(all.contains(&format!("{} has QNLI's dev split but no train split", d.path().display())), "{all}");
        assert!(!all.contains("/work/"), "{all}");
    }
}
