//! `table3`: the config file (`tables/table3.toml`), its cells (method × task × seed), running
//! each cell as a resumable training run, and the reports (`table.md`, `results.json`,
//! `results.csv`, `plot.png` score vs parameters, `loss_<task>.png` training-loss curves).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;
use lorta_models::llama::LlamaForCausalLM;
use serde::{Deserialize, Serialize};

use super::data::{load_task_splits, missing_files, missing_message, SplitSizes, TaskSplits};
use super::prompts::RecordTemplate;
use super::task::{Table3Task, Table3TaskConfig};
use super::LlmTask;
use crate::lm::load::LoadedLm;
use crate::lm::method::LlmMethod;
use crate::report::{csv_string, markdown_table, thousands, write_atomic, write_json};
use crate::tables::config::{expand_env, slug};
use crate::runner::plot;
use crate::tables::report::Score;
use crate::train::fit::{check_out_dir, CONFIG_FILE, METRICS_FILE};
use crate::train::{fit, FitConfig, LogEntry, RunOptions};

pub const CONFIG_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table3Preset {
    pub description: String,
    /// HF model folder / cache name, or a `.gguf` file; `${VAR}` expanded.
    pub model: String,
    /// Folder with COPA/, ReCoRD/, SQuAD/, DROP/ (`${VAR}` expanded).
    pub data_dir: String,
    /// f32, bf16 or f16.
    pub dtype: String,
    pub tasks: Vec<String>,
    pub seeds: Vec<u64>,
    pub sizes: SplitSizes,
    pub epochs: usize,
    pub max_steps: Option<usize>,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub max_len: usize,
    pub max_new_tokens: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup_ratio: f64,
    /// 0 disables clipping.
    pub max_grad_norm: f64,
    pub eval_every: Option<usize>,
    #[serde(default)]
    pub record_template: RecordTemplate,
    /// Per-method target overrides (`"LoRTA r4" = ["q", "o"]`) for models whose shapes need them.
    #[serde(default)]
    pub method_targets: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table3Config {
    pub version: u32,
    pub table: String,
    pub title: String,
    pub methods: Vec<LlmMethod>,
    pub presets: BTreeMap<String, Table3Preset>,
}

impl Table3Config {
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let c: Table3Config = toml::from_str(text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
        if c.version != CONFIG_VERSION {
            bail!("{}: version {} is not supported (expected {CONFIG_VERSION})", file.display(), c.version);
        }
        for (i, m) in c.methods.iter().enumerate() {
            m.tuning(0).with_context(|| format!("{}: methods[{i}] (`{}`)", file.display(), m.name))?;
        }
        for (name, p) in &c.presets {
            for t in &p.tasks {
                t.parse::<LlmTask>().with_context(|| format!("{}: presets.{name}.tasks", file.display()))?;
            }
            for k in p.method_targets.keys() {
                if !c.methods.iter().any(|m| &m.name == k) {
                    bail!("{}: presets.{name}.method_targets names `{k}`, which is not a method of this table", file.display());
                }
            }
            if p.seeds.is_empty() || p.batch_size == 0 || p.eval_batch_size == 0 || p.max_len == 0 {
                bail!("{}: presets.{name}: seeds, batch_size, eval_batch_size and max_len must be non-empty / positive", file.display());
            }
            crate::lm::load::parse_dtype_name(&p.dtype).with_context(|| format!("{}: presets.{name}.dtype", file.display()))?;
        }
        Ok(c)
    }

    pub fn read(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading table config {}", file.display()))?;
        Self::parse(&text, file)
    }

    pub fn preset(&self, name: &str) -> Result<&Table3Preset> {
        self.presets.get(name).ok_or_else(|| anyhow!("--preset `{name}` is not defined; this table has: {}", self.presets.keys().cloned().collect::<Vec<_>>().join(", ")))
    }

    /// The method as the preset runs it (target overrides applied).
    pub fn method_for(&self, preset: &Table3Preset, i: usize) -> LlmMethod {
        let mut m = self.methods[i].clone();
        if let Some(t) = preset.method_targets.get(&m.name) {
            m.targets = t.clone();
        }
        m
    }
}

/// Everything that determines one cell's result (its `train_config.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellConfig {
    pub task: LlmTask,
    pub method: LlmMethod,
    pub seed: u64,
    pub model: String,
    pub dtype: String,
    pub sizes: SplitSizes,
    pub record_template: RecordTemplate,
    pub fit: FitConfig,
    pub task_config: Table3TaskConfig,
}

/// `metrics.json` of a finished cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellMetrics {
    pub task: LlmTask,
    pub method: String,
    pub seed: u64,
    pub trainable_params: usize,
    /// Dev metric that selected the reported evaluation.
    pub main_metric: String,
    /// The reported metric (eval set, at the best dev evaluation), ×1.
    pub eval_metric: String,
    pub score: f64,
    pub best: LogEntry,
    pub last: LogEntry,
    pub history: Vec<LogEntry>,
    pub train_examples: usize,
    pub dev_examples: usize,
    pub eval_examples: usize,
    pub total_steps: usize,
    pub config: CellConfig,
}

/// Options of a `table3` run.
#[derive(Clone, Debug)]
pub struct Table3Run {
    pub config_file: PathBuf,
    pub preset: String,
    pub out: PathBuf,
    pub model: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub tasks: Option<Vec<LlmTask>>,
    pub methods: Option<Vec<String>>,
    pub seeds: Option<Vec<u64>>,
    pub force: bool,
    pub quiet: bool,
    /// Stop every cell after this many steps of this process (tests of resuming).
    pub stop_after: Option<usize>,
    /// Synchronise and time every step (run.json of each cell).
    pub time_steps: bool,
    /// Padded lengths are multiples of this (`--pad-to-multiple`).
    pub pad_to_multiple: usize,
}

fn read_cell(dir: &Path) -> Option<CellMetrics> {
    std::fs::read_to_string(dir.join(METRICS_FILE)).ok().and_then(|t| serde_json::from_str(&t).ok())
}

fn expand(s: &str, what: &str) -> Result<String> {
    if s.contains("${CARGO_MANIFEST_DIR}") && std::env::var_os("CARGO_MANIFEST_DIR").is_none() {
        return expand_env(&s.replace("${CARGO_MANIFEST_DIR}", env!("CARGO_MANIFEST_DIR")), what);
    }
    expand_env(s, what)
}

/// Runs (or resumes, or skips) every cell and writes the reports. Returns the markdown table.
pub fn run_table3<B: AutodiffBackend>(r: &Table3Run, device: &B::Device) -> Result<String> {
    let table = Table3Config::read(&r.config_file)?;
    let preset = table.preset(&r.preset)?.clone();
    let tasks: Vec<LlmTask> = match &r.tasks {
        Some(t) => t.clone(),
        None => preset.tasks.iter().map(|t| t.parse()).collect::<Result<_>>()?,
    };
    let seeds = r.seeds.clone().unwrap_or_else(|| preset.seeds.clone());
    let method_idx: Vec<usize> = match &r.methods {
        None => (0..table.methods.len()).collect(),
        Some(names) => names
            .iter()
            .map(|n| table.methods.iter().position(|m| &m.name == n || slug(&m.name) == slug(n)).ok_or_else(|| anyhow!("--methods: `{n}` is not a method of {}", r.config_file.display())))
            .collect::<Result<_>>()?,
    };
    // every missing input in one message
    let mut missing = Vec::new();
    let model = match &r.model {
        Some(m) => Some(m.clone()),
        None => match expand(&preset.model, &format!("presets.{}.model (or --model)", r.preset)) {
            Ok(m) => Some(m),
            Err(e) => {
                missing.push(format!("{e}; or pass --model"));
                None
            }
        },
    };
    if let Some(m) = &model {
        if let Err(e) = crate::lm::load::check_model(m) {
            missing.push(format!("model: {e}"));
        }
    }
    let data_dir = match &r.data_dir {
        Some(d) => Some(d.clone()),
        None => match expand(&preset.data_dir, &format!("presets.{}.data_dir (or --data-dir)", r.preset)) {
            Ok(d) => Some(PathBuf::from(d)),
            Err(e) => {
                missing.push(format!("{e}; or pass --data-dir"));
                None
            }
        },
    };
    if let Some(d) = &data_dir {
        let m = missing_files(d, &tasks);
        if !m.is_empty() {
            missing.push(missing_message(d, &m).trim_end().to_string());
        }
    }
    if !missing.is_empty() {
        bail!("cannot start table3 --preset {}, missing inputs:\n- {}\n(`--tasks` runs a subset)", r.preset, missing.join("\n- "));
    }
    let (model, data_dir) = (model.expect("checked"), data_dir.expect("checked"));
    let dtype = crate::lm::load::parse_dtype_name(&preset.dtype)?;
    std::fs::create_dir_all(&r.out).with_context(|| format!("creating {}", r.out.display()))?;

    let lm: LoadedLm = crate::lm::load::resolve(&model)?;
    let tok = lm.tokenizer()?;
    let mut splits: BTreeMap<LlmTask, TaskSplits> = BTreeMap::new();
    for &t in &tasks {
        let s = load_task_splits(&data_dir, t, preset.sizes, seeds[0], preset.record_template)?;
        splits.insert(t, s);
    }
    let task_config = Table3TaskConfig { batch_size: preset.batch_size, eval_batch_size: preset.eval_batch_size, max_len: preset.max_len, max_new_tokens: preset.max_new_tokens, pad_to_multiple: r.pad_to_multiple };
    let settings = serde_json::json!({
        "table": table.table, "preset": r.preset, "config_file": r.config_file, "preset_settings": preset,
        "methods": method_idx.iter().map(|&i| table.method_for(&preset, i)).collect::<Vec<_>>(),
        "model": model, "data_dir": data_dir, "seeds": seeds,
        "splits": splits.values().map(|s| serde_json::json!({"task": s.task, "train_file": s.train_file, "eval_file": s.eval_file, "train": s.train.len(), "dev": s.dev.len(), "eval": s.eval.len(), "note": s.note})).collect::<Vec<_>>(),
    });
    write_json(&r.out.join("settings.json"), &settings)?;
    if let Ok(text) = std::fs::read_to_string(&r.config_file) {
        write_atomic(&r.out.join("table3.toml"), text.as_bytes())?;
    }

    let mut results: Vec<CellMetrics> = Vec::new();
    let n = method_idx.len() * tasks.len() * seeds.len();
    let mut k = 0;
    for &t in &tasks {
        let sp = &splits[&t];
        for &mi in &method_idx {
            let method = table.method_for(&preset, mi);
            for &seed in &seeds {
                k += 1;
                let lr = method.lr.unwrap_or(preset.lr);
                let cfg = CellConfig {
                    task: t,
                    method: method.clone(),
                    seed,
                    model: model.clone(),
                    dtype: preset.dtype.clone(),
                    sizes: preset.sizes,
                    record_template: preset.record_template,
                    fit: FitConfig {
                        label: method.name.clone(),
                        epochs: preset.epochs,
                        max_steps: preset.max_steps,
                        lr,
                        head_lr: lr,
                        weight_decay: preset.weight_decay,
                        warmup_ratio: preset.warmup_ratio,
                        lr_scheduler: Default::default(),
                        max_grad_norm: (preset.max_grad_norm > 0.0).then_some(preset.max_grad_norm),
                        seed,
                        eval_every: preset.eval_every,
                    },
                    task_config: task_config.clone(),
                };
                let dir = r.out.join("runs").join(&r.preset).join(t.name()).join(slug(&method.name)).join(format!("seed{seed}"));
                let what = format!("[{k}/{n}] {} {} seed {seed}", t.title(), method.name);
                if r.force && dir.exists() {
                    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {} (--force)", dir.display()))?;
                }
                if let Some(done) = read_cell(&dir) {
                    if done.config == cfg {
                        if !r.quiet {
                            eprintln!("{what}: finished earlier, skipped ({})", dir.display());
                        }
                        results.push(done);
                        continue;
                    }
                    bail!("{} holds a run with other settings than the table config now asks for; pass --force to retrain it (or use another --out)", dir.display());
                }
                let resume = check_out_dir(&dir, true)?.is_some();
                if !r.quiet {
                    eprintln!("{what}: {}", if resume { "resuming" } else { "training" });
                }
                let m = run_cell::<B>(&lm, &tok, sp, &cfg, &dir, &RunOptions { resume, quiet: r.quiet, stop_after: r.stop_after, time_steps: r.time_steps, ..Default::default() }, dtype, device)?;
                match m {
                    Some(m) => {
                        if !r.quiet {
                            eprintln!("{what}: {} {:.4}", m.eval_metric, m.score);
                        }
                        results.push(m);
                    }
                    None => return Ok(String::new()),
                }
            }
        }
    }
    let rep = build_report(&table, &r.preset, &tasks, &method_idx, &results);
    write_report(&r.out, &rep, &results)?;
    Ok(rep.markdown)
}

#[allow(clippy::too_many_arguments)]
fn run_cell<B: AutodiffBackend>(
    lm: &LoadedLm,
    tok: &crate::lm::LmTokenizer,
    splits: &TaskSplits,
    cfg: &CellConfig,
    dir: &Path,
    opts: &RunOptions,
    dtype: DType,
    device: &B::Device,
) -> Result<Option<CellMetrics>> {
    let tuning = cfg.method.tuning(cfg.seed)?;
    let model: LlamaForCausalLM<B> = lm.load::<B>(&tuning, dtype, device).with_context(|| format!("building {} on {}", cfg.method.name, lm.describe()))?;
    let trainable_params = model.trainable_params();
    let task = Table3Task::new(splits, tok.clone(), cfg.task_config.clone())?;
    let run_config = serde_json::to_value(cfg)?;
    let outcome = fit::<B, _>(&task, model, &cfg.fit, &run_config, dir, opts, device)?;
    if !outcome.finished {
        return Ok(None);
    }
    let (best, last) = outcome.best_and_last(true)?;
    let eval_metric = format!("eval_{}", cfg.task.main_metric());
    let score = best.metrics.get(&eval_metric).copied().unwrap_or(f64::NAN);
    let m = CellMetrics {
        task: cfg.task,
        method: cfg.method.name.clone(),
        seed: cfg.seed,
        trainable_params,
        main_metric: format!("dev_{}", cfg.task.main_metric()),
        eval_metric,
        score,
        best,
        last,
        history: outcome.log.clone(),
        train_examples: splits.train.len(),
        dev_examples: splits.dev.len(),
        eval_examples: splits.eval.len(),
        total_steps: outcome.total_steps,
        config: cfg.clone(),
    };
    write_json(&dir.join(METRICS_FILE), &m)?;
    let _ = CONFIG_FILE;
    Ok(Some(m))
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub method: String,
    pub params: Option<usize>,
    pub scores: BTreeMap<String, Score>,
    pub average: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub table: String,
    pub title: String,
    pub preset: String,
    pub tasks: Vec<String>,
    pub rows: Vec<Row>,
    #[serde(skip)]
    pub markdown: String,
}

pub fn build_report(table: &Table3Config, preset: &str, tasks: &[LlmTask], methods: &[usize], results: &[CellMetrics]) -> Report {
    let mut rows = Vec::new();
    for &mi in methods {
        let name = &table.methods[mi].name;
        let mine: Vec<&CellMetrics> = results.iter().filter(|c| &c.method == name).collect();
        let mut scores = BTreeMap::new();
        for t in tasks {
            let v: Vec<f64> = mine.iter().filter(|c| c.task == *t).map(|c| 100.0 * c.score).collect();
            if let Some(s) = Score::from_values(v) {
                scores.insert(t.name().to_string(), s);
            }
        }
        let average = (!scores.is_empty()).then(|| scores.values().map(|s| s.mean).sum::<f64>() / scores.len() as f64);
        rows.push(Row { method: name.clone(), params: mine.first().map(|c| c.trainable_params), scores, average });
    }
    let mut header = vec!["Method".to_string(), "Trainable params".to_string()];
    for t in tasks {
        header.push(format!("{} ({})", t.title(), if t.is_generation() { "F1" } else { "Acc" }));
    }
    header.push("Avg.".into());
    let md_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut line = vec![r.method.clone(), r.params.map(thousands).unwrap_or_else(|| "–".into())];
            for t in tasks {
                line.push(r.scores.get(t.name()).map(Score::fmt).unwrap_or_else(|| "–".into()));
            }
            line.push(r.average.map(|a| format!("{a:.1}")).unwrap_or_else(|| "–".into()));
            line
        })
        .collect();
    let mut md = format!(
        "# {} — {}\n\nPreset `{preset}`. Eval-set scores ×100 at the evaluation with the best dev score (COPA, ReCoRD: accuracy by candidate log-likelihood; SQuAD, DROP: F1 of greedy answers, official normalisation); mean ± sample std over seeds when several.\n\n",
        table.table, table.title
    );
    md.push_str(&markdown_table(&header, &md_rows));
    Report { table: table.table.clone(), title: table.title.clone(), preset: preset.to_string(), tasks: tasks.iter().map(|t| t.name().to_string()).collect(), rows, markdown: md }
}

pub fn write_report(out: &Path, rep: &Report, results: &[CellMetrics]) -> Result<()> {
    let mut md = rep.markdown.clone();
    let points: Vec<(String, f64, f64)> = rep.rows.iter().filter_map(|r| Some((r.method.clone(), r.params? as f64, r.average?))).collect();
    match plot::score_vs_params(&out.join("plot.png"), &format!("{} ({})", rep.table, rep.preset), "trainable parameters", "average score", &points) {
        Ok(_) => md.push_str("\n![average score vs trainable parameters](plot.png)\n"),
        Err(e) => md.push_str(&format!("\n(plot not written: {e})\n")),
    }
    for t in &rep.tasks {
        let series: Vec<(String, Vec<(f64, f64)>)> = results
            .iter()
            .filter(|c| c.task.name() == t)
            .map(|c| (format!("{} s{}", c.method, c.seed), c.history.iter().map(|e| (e.step as f64, e.train_loss)).collect()))
            .collect();
        let file = format!("loss_{t}.png");
        match plot::line_series(&out.join(&file), &format!("{t}: training loss"), "optimizer step", "mean training loss since the previous evaluation", &series) {
            Ok(_) => md.push_str(&format!("\n![{t} training loss]({file})\n")),
            Err(e) => md.push_str(&format!("\n({file} not written: {e})\n")),
        }
    }
    write_atomic(&out.join("table.md"), md.as_bytes())?;
    write_json(&out.join("results.json"), &serde_json::json!({"report": rep, "cells": results.iter().map(|c| serde_json::json!({"task": c.task, "method": c.method, "seed": c.seed, "score": c.score, "eval_metric": c.eval_metric, "trainable_params": c.trainable_params, "best": c.best})).collect::<Vec<_>>()}))?;
    let header: Vec<String> = ["method", "task", "seed", "trainable_params", "eval_metric", "score", "best_step", "best_dev", "best_metrics", "total_steps"].iter().map(|s| s.to_string()).collect();
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|c| {
            vec![
                c.method.clone(),
                c.task.name().to_string(),
                c.seed.to_string(),
                c.trainable_params.to_string(),
                c.eval_metric.clone(),
                format!("{}", c.score),
                c.best.step.to_string(),
                format!("{}", c.best.score),
                c.best.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";"),
                c.total_steps.to_string(),
            ]
        })
        .collect();
    write_atomic(&out.join("results.csv"), csv_string(&header, &rows)?.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tables/table3.toml");
        let c = Table3Config::read(&p).unwrap();
        let names: Vec<&str> = c.methods.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["FT", "Adapter", "LoRA r8", "Prefix", "IA3", "LoReTTA_rep", "LoRTA r4", "LoRTA r8"]);
        let paper = c.preset("paper").unwrap();
        assert_eq!((paper.sizes.train, paper.sizes.dev, paper.sizes.eval), (1000, 500, 1000));
        assert_eq!((paper.epochs, paper.batch_size, paper.lr), (3, 8, 1e-4));
        let quick = c.preset("quick").unwrap();
        assert_eq!(c.method_for(quick, 6).targets, vec!["q", "o"]);
        assert_eq!(c.method_for(paper, 6).targets, vec!["q", "k", "v", "o"]);
        c.preset("smoke").unwrap();
        let bad = std::fs::read_to_string(&p).unwrap().replace("\"LoRTA r4\" = [\"q\", \"o\"]", "\"LoRTA r5\" = [\"q\", \"o\"]");
        let e = Table3Config::parse(&bad, &p).unwrap_err().to_string();
        assert!(e.contains("LoRTA r5"), "{e}");
    }
}
