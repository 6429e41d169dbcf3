//! Table configuration files (`lorta-experiments/tables/<table>.toml`): the methods of a table,
//! and per preset the model, tasks, seeds and per-task recipe. Versioned (`version = 1`).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lorta_core::AdapterConfig;
use serde::{Deserialize, Serialize};

use crate::commands::train::{adapter_config, parse_head, paper_recipe};
use crate::glue::GlueTask;
use crate::train::TrainConfig;

pub const CONFIG_VERSION: u32 = 1;

/// Which trainable-parameter count the table prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamCount {
    /// Adapter parameters only (Table 2, LoTR setting).
    ExclClassifier,
    /// Adapter + trainable head parameters (Table 1, LoReTTA setting).
    InclClassifier,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    /// Row label in the table.
    pub name: String,
    /// lora, lorta, vera, ia3, fact-tt, fact-tk, lotr, loretta-rep or none.
    pub method: String,
    pub rank: usize,
    pub alpha: Option<f64>,
    /// Adapted matrices (q, k, v, o).
    pub targets: Vec<String>,
    /// full, frozen or lora:R.
    #[serde(default = "full")]
    pub head: String,
    /// Adapter learning rate for every task (overrides the preset's per-task value).
    pub lr: Option<f64>,
    pub head_lr: Option<f64>,
    /// Adapter learning rate per task (overrides `lr`).
    #[serde(default)]
    pub task_lr: BTreeMap<String, f64>,
}

fn full() -> String {
    "full".into()
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRecipe {
    pub epochs: Option<usize>,
    pub lr: Option<f64>,
    pub head_lr: Option<f64>,
    pub max_steps: Option<usize>,
    pub max_train_samples: Option<usize>,
    pub max_eval_samples: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub description: String,
    /// Model folder or HF-cache name; `${VAR}` is replaced by the environment variable.
    pub model: String,
    /// GLUE folder (`${VAR}` expanded); absent = `--glue-dir` or the `fetch glue` cache.
    pub glue_dir: Option<String>,
    pub tasks: Vec<String>,
    pub seeds: Vec<u64>,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub max_seq_len: usize,
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    /// 0 disables clipping.
    pub max_grad_norm: f64,
    /// Defaults for every task; `task.<name>` entries override them.
    #[serde(default)]
    pub defaults: TaskRecipe,
    #[serde(default)]
    pub task: BTreeMap<String, TaskRecipe>,
    pub bucket_chunks: Option<usize>,
    pub eval_every: Option<usize>,
    /// Multiply every learning rate of the recipe by this (quick/smoke budgets).
    pub lr_scale: Option<f64>,
    /// Dropout replacing the checkpoint's (absent: the checkpoint's config.json values).
    pub dropout: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    pub version: u32,
    pub table: String,
    pub title: String,
    pub params: ParamCount,
    pub methods: Vec<MethodSpec>,
    pub presets: BTreeMap<String, Preset>,
}

pub use crate::runner::config::{expand_env, slug};

impl TableConfig {
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let c: TableConfig = crate::runner::config::parse_versioned(text, file, CONFIG_VERSION)?;
        c.validate().with_context(|| format!("{}", file.display()))?;
        Ok(c)
    }

    pub fn read(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading table config {}", file.display()))?;
        Self::parse(&text, file)
    }

    pub fn validate(&self) -> Result<()> {
        if self.methods.is_empty() {
            bail!("no [[methods]]");
        }
        for (i, m) in self.methods.iter().enumerate() {
            self.method_adapter(m).with_context(|| format!("methods[{i}] (`{}`)", m.name))?;
            parse_head(&m.head).with_context(|| format!("methods[{i}] (`{}`)", m.name))?;
            for t in m.task_lr.keys() {
                t.parse::<GlueTask>().with_context(|| format!("methods[{i}].task_lr"))?;
            }
        }
        for (name, p) in &self.presets {
            for t in &p.tasks {
                t.parse::<GlueTask>().with_context(|| format!("presets.{name}.tasks"))?;
            }
            for t in p.task.keys() {
                t.parse::<GlueTask>().with_context(|| format!("presets.{name}.task.{t}"))?;
            }
            if p.seeds.is_empty() {
                bail!("presets.{name}.seeds is empty");
            }
        }
        Ok(())
    }

    pub fn method_adapter(&self, m: &MethodSpec) -> Result<Option<AdapterConfig>> {
        adapter_config(&m.method, m.rank, m.alpha, &m.targets.join(","))
    }

    pub fn preset(&self, name: &str) -> Result<&Preset> {
        crate::runner::config::pick_preset(&self.presets, name, "table")
    }
}

/// One cell: method × task × seed, with the settings it trains with.
#[derive(Clone, Debug)]
pub struct Cell {
    pub method_index: usize,
    pub task: GlueTask,
    pub seed: u64,
    pub config: TrainConfig,
}

/// The training settings of every cell of `preset` (model and GLUE folder already resolved).
pub fn cells(table: &TableConfig, preset: &Preset, tasks: &[GlueTask], model: &Path, glue_dir: &Path) -> Result<Vec<Cell>> {
    let mut out = Vec::new();
    let scale = preset.lr_scale.unwrap_or(1.0);
    for (mi, m) in table.methods.iter().enumerate() {
        let adapter = table.method_adapter(m)?;
        let head = parse_head(&m.head)?;
        for &task in tasks {
            let d = &preset.defaults;
            let r = preset.task.get(task.name()).cloned().unwrap_or_default();
            let (rec_epochs, rec_head, rec_lr) = paper_recipe(task);
            let lr = m.task_lr.get(task.name()).copied().or(m.lr).or(r.lr).or(d.lr).unwrap_or(rec_lr) * scale;
            let head_lr = m.head_lr.or(r.head_lr).or(d.head_lr).unwrap_or(rec_head) * scale;
            for &seed in &preset.seeds {
                let config = TrainConfig {
                    task: task.name().to_string(),
                    label: m.name.clone(),
                    adapter: adapter.clone(),
                    head,
                    model: model.to_path_buf(),
                    glue_dir: glue_dir.to_path_buf(),
                    epochs: r.epochs.or(d.epochs).unwrap_or(rec_epochs),
                    max_steps: r.max_steps.or(d.max_steps),
                    max_train_samples: r.max_train_samples.or(d.max_train_samples),
                    max_eval_samples: r.max_eval_samples.or(d.max_eval_samples),
                    batch_size: preset.batch_size,
                    eval_batch_size: preset.eval_batch_size,
                    max_seq_len: preset.max_seq_len,
                    lr,
                    head_lr,
                    weight_decay: preset.weight_decay,
                    warmup_ratio: preset.warmup_ratio,
                    max_grad_norm: (preset.max_grad_norm > 0.0).then_some(preset.max_grad_norm),
                    seed,
                    eval_every: preset.eval_every,
                    bucket_chunks: preset.bucket_chunks,
                    dropout: preset.dropout,
                    dtype: burn::tensor::DType::F32,
                    pad_to_multiple: 1,
                    random_weights: false,
                };
                out.push(Cell { method_index: mi, task, seed, config });
            }
        }
    }
    Ok(out)
}

/// The run folder of a cell under the table's output folder.
pub fn cell_dir(out: &Path, preset: &str, table: &TableConfig, c: &Cell) -> PathBuf {
    out.join("runs")
        .join(preset)
        .join(c.task.name())
        .join(slug(&table.methods[c.method_index].name))
        .join(format!("seed{}", c.seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> (PathBuf, TableConfig) {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tables").join(format!("{name}.toml"));
        let c = TableConfig::read(&p).unwrap();
        (p, c)
    }

    #[test]
    fn shipped_configs_parse() {
        let (_, t2) = shipped("table2");
        assert_eq!(t2.table, "table2");
        assert_eq!(t2.params, ParamCount::ExclClassifier);
        let names: Vec<&str> = t2.methods.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["LoRA r8", "LoTR", "LoRTA r16", "LoRTA r4"]);
        for p in ["paper", "quick", "smoke"] {
            t2.preset(p).unwrap();
        }
        let paper = t2.preset("paper").unwrap();
        assert_eq!(paper.batch_size, 64);
        assert_eq!(paper.task["rte"].epochs, Some(160));
        let (_, t1) = shipped("table1");
        assert_eq!(t1.params, ParamCount::InclClassifier);
        assert!(t1.methods.iter().any(|m| m.head == "lora:8" || m.head.starts_with("lora:")));
        let tasks = [GlueTask::Rte, GlueTask::Stsb];
        let cells = cells(&t2, paper, &tasks, Path::new("/m"), Path::new("/g")).unwrap();
        assert_eq!(cells.len(), 4 * 2 * paper.seeds.len());
        let rte_lorta = cells.iter().find(|c| c.task == GlueTask::Rte && c.config.label == "LoRTA r4").unwrap();
        assert_eq!(rte_lorta.config.epochs, 160);
        assert_eq!(rte_lorta.config.lr, 1e-2);
        assert_eq!(rte_lorta.config.head_lr, 1e-2);
        assert_eq!(rte_lorta.config.max_grad_norm, Some(1000.0));
        let stsb = cells.iter().find(|c| c.task == GlueTask::Stsb && c.config.label == "LoRTA r4").unwrap();
        assert_eq!(stsb.config.lr, 5e-2);
        assert_eq!(
            cell_dir(Path::new("results/table2"), "paper", &t2, rte_lorta),
            Path::new("results/table2/runs/paper/rte/lorta-r4/seed42")
        );
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let f = Path::new("t.toml");
        let base = r#"
version = 1
table = "t"
title = "T"
params = "excl_classifier"
[[methods]]
name = "X"
method = "lorta"
rank = 4
targets = ["q", "v"]
[presets.p]
description = ""
model = "m"
tasks = ["rte"]
seeds = [1]
batch_size = 8
eval_batch_size = 8
max_seq_len = 16
warmup_ratio = 0.0
weight_decay = 0.0
max_grad_norm = 0.0
"#;
        TableConfig::parse(base, f).unwrap();
        let e = TableConfig::parse(&base.replace("\"lorta\"", "\"lortax\""), f).unwrap_err();
        assert!(format!("{e:#}").contains("methods[0]") && format!("{e:#}").contains("unknown method"), "{e:#}");
        let e = TableConfig::parse(&base.replace("tasks = [\"rte\"]", "tasks = [\"rtf\"]"), f).unwrap_err();
        assert!(format!("{e:#}").contains("presets.p.tasks"), "{e:#}");
        let e = TableConfig::parse(&base.replace("version = 1", "version = 2"), f).unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
        let e = TableConfig::parse(&base.replace("rank = 4", "rank = 4\nrnak = 3"), f).unwrap_err();
        assert!(e.to_string().contains("t.toml") && e.to_string().contains("rnak"), "{e}");
        let c = TableConfig::parse(base, f).unwrap();
        assert!(c.preset("nope").unwrap_err().to_string().contains("this table has: p"));
    }
}
