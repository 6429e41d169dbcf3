//! The `fold` experiment's settings (presets `smoke`, `quick`, `gpu`) and its report: one row per
//! method with trainable parameters and the PSICOV-150 metrics (`table.md`, `results.json`,
//! `results.csv`), and the training-loss curves (`loss_curves.png`, the paper's figure).
use std::path::Path;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::dataset::LoadReport;
use crate::report::{csv_string, markdown_table, thousands, write_atomic, write_json};

/// Trunk and structure-module sizes of a preset (turned into lorta-models' ESMFold config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldModelSpec {
    pub blocks: usize,
    pub sequence_dim: usize,
    pub pair_dim: usize,
    pub sequence_head_width: usize,
    pub pair_head_width: usize,
    pub position_bins: usize,
    /// AlphaFold 2's outer product mean of this width in place of ESMFold's sequence-to-pair
    /// (the paper's choice); `None` keeps sequence-to-pair.
    pub outer_product_mean: Option<usize>,
    /// Structure module sizes; `None` = ESMFold's.
    pub structure: Option<StructureSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StructureSpec {
    pub sequence_dim: usize,
    pub pairwise_dim: usize,
    pub ipa_dim: usize,
    pub resnet_dim: usize,
    pub num_heads_ipa: usize,
    pub num_qk_points: usize,
    pub num_v_points: usize,
    pub num_blocks: usize,
}

/// One method of the experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldMethod {
    /// `lora`, `lorta` or `full`.
    pub method: String,
    pub rank: Option<usize>,
}

impl FoldMethod {
    pub fn label(&self) -> String {
        match (self.method.as_str(), self.rank) {
            ("full", _) => "Full".into(),
            ("lora", Some(r)) => format!("LoRA r{r}"),
            ("lorta", Some(r)) => format!("LoRTA r{r}"),
            (m, Some(r)) => format!("{m} r{r}"),
            (m, None) => m.into(),
        }
    }
    /// Folder name of the method's run.
    pub fn dir_name(&self) -> String {
        match self.rank {
            Some(r) if self.method != "full" => format!("{}-r{r}", self.method),
            _ => self.method.clone(),
        }
    }
    /// Parses `lora:8`, `lorta:4`, `full` (or `lora` with `default_rank`).
    pub fn parse(s: &str, default_rank: usize) -> Result<FoldMethod> {
        let t = s.trim().to_ascii_lowercase();
        let (m, r) = match t.split_once(':') {
            Some((m, r)) => (m.to_string(), Some(r.parse::<usize>().map_err(|_| anyhow::anyhow!("--methods `{s}`: rank `{r}` is not a number"))?)),
            None => (t.clone(), None),
        };
        match m.as_str() {
            "full" => Ok(FoldMethod { method: m, rank: None }),
            "lora" | "lorta" => {
                let r = r.unwrap_or(default_rank);
                if r == 0 {
                    bail!("--methods `{s}`: rank must be at least 1");
                }
                Ok(FoldMethod { method: m, rank: Some(r) })
            }
            _ => bail!("--methods `{s}`: expected lora[:R], lorta[:R] or full"),
        }
    }
}

/// Everything a preset sets (command-line flags override single fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldPreset {
    pub name: String,
    pub model: FoldModelSpec,
    pub methods: Vec<FoldMethod>,
    pub crop: usize,
    pub batch_size: usize,
    pub steps: usize,
    /// Adapter (and full-training) learning rate; heads use `head_lr`.
    pub lr: f64,
    pub full_lr: f64,
    pub head_lr: f64,
    pub warmup_ratio: f64,
    pub max_grad_norm: Option<f64>,
    pub fape_weight: f64,
    pub recycles: usize,
    /// Evaluations during training (on `curve_val_chains` chains) for the curves.
    pub evals: usize,
    pub curve_val_chains: usize,
    pub max_train_chains: Option<usize>,
    pub max_val_chains: Option<usize>,
    pub eval_max_len: Option<usize>,
    pub dtype: String,
}

impl FoldPreset {
    pub fn get(name: &str) -> Result<FoldPreset> {
        let tiny_sm = StructureSpec {
            sequence_dim: 16,
            pairwise_dim: 8,
            ipa_dim: 4,
            resnet_dim: 8,
            num_heads_ipa: 2,
            num_qk_points: 2,
            num_v_points: 2,
            num_blocks: 2,
        };
        let methods = |r_lora: usize, r_lorta: usize| {
            vec![
                FoldMethod { method: "lora".into(), rank: Some(r_lora) },
                FoldMethod { method: "lorta".into(), rank: Some(r_lorta) },
                FoldMethod { method: "full".into(), rank: None },
            ]
        };
        Ok(match name {
            // CI: seconds on ndarray in a debug build; the fixture chains.
            "smoke" => FoldPreset {
                name: name.into(),
                model: FoldModelSpec {
                    blocks: 1,
                    sequence_dim: 16,
                    pair_dim: 8,
                    sequence_head_width: 8,
                    pair_head_width: 4,
                    position_bins: 8,
                    outer_product_mean: Some(4),
                    structure: Some(tiny_sm),
                },
                methods: methods(2, 2),
                crop: 16,
                batch_size: 2,
                steps: 4,
                lr: 1e-3,
                full_lr: 1e-3,
                head_lr: 1e-3,
                warmup_ratio: 0.0,
                max_grad_norm: Some(1.0),
                fape_weight: 0.5,
                recycles: 0,
                evals: 2,
                curve_val_chains: 2,
                max_train_chains: Some(4),
                max_val_chains: Some(3),
                eval_max_len: Some(32),
                dtype: "f32".into(),
            },
            // CPU, minutes: a 2-block trunk on 64-residue crops.
            "quick" => FoldPreset {
                name: name.into(),
                model: FoldModelSpec {
                    blocks: 2,
                    sequence_dim: 64,
                    pair_dim: 32,
                    sequence_head_width: 16,
                    pair_head_width: 16,
                    position_bins: 32,
                    outer_product_mean: Some(16),
                    structure: Some(StructureSpec { sequence_dim: 32, pairwise_dim: 16, ipa_dim: 8, resnet_dim: 16, num_heads_ipa: 4, num_qk_points: 4, num_v_points: 4, num_blocks: 2 }),
                },
                methods: methods(4, 4),
                crop: 48,
                batch_size: 2,
                steps: 150,
                lr: 5e-3,
                full_lr: 1e-3,
                head_lr: 5e-3,
                warmup_ratio: 0.05,
                max_grad_norm: Some(1.0),
                fape_weight: 0.0,
                recycles: 0,
                evals: 10,
                curve_val_chains: 4,
                max_train_chains: None,
                max_val_chains: Some(30),
                eval_max_len: Some(128),
                dtype: "f32".into(),
            },
            // One H200, about 10 min for the three methods (within the 30): the paper's
            // 12-block trunk, bf16, 256-residue crops, distogram + FAPE; `--steps` for longer runs.
            "gpu" => FoldPreset {
                name: name.into(),
                model: FoldModelSpec {
                    blocks: 12,
                    sequence_dim: 1024,
                    pair_dim: 128,
                    sequence_head_width: 32,
                    pair_head_width: 32,
                    position_bins: 32,
                    outer_product_mean: Some(32),
                    structure: None,
                },
                methods: methods(8, 8),
                crop: 256,
                batch_size: 1,
                steps: 200,
                lr: 1e-3,
                full_lr: 1e-4,
                head_lr: 1e-3,
                warmup_ratio: 0.05,
                max_grad_norm: Some(1.0),
                fape_weight: 0.5,
                recycles: 0,
                evals: 10,
                curve_val_chains: 8,
                max_train_chains: None,
                max_val_chains: None,
                eval_max_len: None,
                dtype: "bf16".into(),
            },
            other => bail!("--preset `{other}`: expected smoke, quick or gpu"),
        })
    }
}

/// One method's result row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldRow {
    pub label: String,
    pub method: String,
    pub rank: Option<usize>,
    pub trainable_params: usize,
    pub steps: usize,
    /// Final metrics on the validation split (`p_at_l`, `p_at_l5`, `distogram_ce`, `lddt_ca`, `n_*`).
    pub metrics: std::collections::BTreeMap<String, f64>,
    /// (step, mean training loss since the previous point).
    pub loss_curve: Vec<(f64, f64)>,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FoldReport {
    pub preset: String,
    pub split: String,
    pub rows: Vec<FoldRow>,
    pub data: Vec<LoadReport>,
    #[serde(skip)]
    pub markdown: String,
}

fn fmt_metric(m: &std::collections::BTreeMap<String, f64>, k: &str, scale: f64) -> String {
    match m.get(k) {
        Some(v) if v.is_finite() => format!("{:.2}", v * scale),
        _ => "–".into(),
    }
}

impl FoldReport {
    pub fn new(preset: &str, split: &str, rows: Vec<FoldRow>, data: Vec<LoadReport>) -> Result<FoldReport> {
        let mut r = FoldReport { preset: preset.into(), split: split.into(), rows, data, markdown: String::new() };
        let (h, rows) = r.table();
        let n_val = r.data.iter().find(|d| d.split != "train").map(|d| d.loaded).unwrap_or(0);
        r.markdown = format!(
            "## Protein folding ({} preset): long-range contact precision on {} ({} chains)\n\n{}\nP@L, P@L/5: long-range (|i−j| ≥ 24) Cβ contacts (< 8 Å) ×100; distogram CE in nats; lDDT-Cα ×100.\n",
            r.preset,
            r.split,
            n_val,
            markdown_table(&h, &rows)
        );
        Ok(r)
    }

    fn table(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let h: Vec<String> = ["method", "trainable params", "steps", "P@L", "P@L/5", "distogram CE", "lDDT-Cα"].iter().map(|s| s.to_string()).collect();
        let rows = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.label.clone(),
                    thousands(r.trainable_params),
                    r.steps.to_string(),
                    fmt_metric(&r.metrics, "p_at_l", 100.0),
                    fmt_metric(&r.metrics, "p_at_l5", 100.0),
                    fmt_metric(&r.metrics, "distogram_ce", 1.0),
                    fmt_metric(&r.metrics, "lddt_ca", 100.0),
                ]
            })
            .collect();
        (h, rows)
    }

    /// `table.md`, `results.json`, `results.csv`, `loss_curves.png` in `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        write_atomic(&out.join("table.md"), self.markdown.as_bytes())?;
        write_json(&out.join("results.json"), self)?;
        let header: Vec<String> = ["method", "rank", "trainable_params", "steps", "p_at_l", "p_at_l5", "distogram_ce", "lddt_ca", "n_chains", "seconds"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let get = |r: &FoldRow, k: &str| r.metrics.get(k).map(|v| format!("{v}")).unwrap_or_default();
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.method.clone(),
                    r.rank.map(|x| x.to_string()).unwrap_or_default(),
                    r.trainable_params.to_string(),
                    r.steps.to_string(),
                    get(r, "p_at_l"),
                    get(r, "p_at_l5"),
                    get(r, "distogram_ce"),
                    get(r, "lddt_ca"),
                    get(r, "n_p_at_l"),
                    format!("{:.1}", r.seconds),
                ]
            })
            .collect();
        write_atomic(&out.join("results.csv"), csv_string(&header, &rows)?.as_bytes())?;
        let series: Vec<(String, Vec<(f64, f64)>)> = self.rows.iter().map(|r| (r.label.clone(), r.loss_curve.clone())).collect();
        crate::runner::plot::line_series(
            &out.join("loss_curves.png"),
            &format!("Protein folding ({}): training loss", self.preset),
            "optimizer step",
            "training loss (distogram CE + FAPE)",
            &series,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_with_ranks_and_errors_name_the_flag() {
        assert_eq!(FoldMethod::parse("lora:8", 4).unwrap(), FoldMethod { method: "lora".into(), rank: Some(8) });
        assert_eq!(FoldMethod::parse("LoRTA", 4).unwrap().label(), "LoRTA r4");
        assert_eq!(FoldMethod::parse("full", 4).unwrap().dir_name(), "full");
        assert!(FoldMethod::parse("vera", 4).unwrap_err().to_string().contains("--methods"));
        assert!(FoldMethod::parse("lora:x", 4).is_err());
        assert!(FoldMethod::parse("lora:0", 4).is_err());
        for p in ["smoke", "quick", "gpu"] {
            assert_eq!(FoldPreset::get(p).unwrap().name, p);
        }
        assert!(FoldPreset::get("paper").is_err());
    }

    #[test]
    fn report_writes_tables_and_the_loss_plot() {
        let dir = tempfile::tempdir().unwrap();
        let row = |label: &str, m: &str, p: f64| FoldRow {
            label: label.into(),
            method: m.into(),
            rank: Some(4),
            trainable_params: 12345,
            steps: 10,
            metrics: [("p_at_l".to_string(), p), ("p_at_l5".to_string(), 0.5), ("distogram_ce".to_string(), 3.2), ("n_p_at_l".to_string(), 3.0)]
                .into_iter()
                .collect(),
            loss_curve: vec![(0.0, 4.1), (5.0, 3.5), (10.0, 3.2)],
            seconds: 1.0,
        };
        let rep = FoldReport::new("smoke", "val_psicov150", vec![row("LoRA r4", "lora", 0.25), row("LoRTA r4", "lorta", 0.3)], vec![]).unwrap();
        rep.write(dir.path()).unwrap();
        let md = std::fs::read_to_string(dir.path().join("table.md")).unwrap();
        assert!(md.contains("| LoRTA r4 | 12,345 | 10 | 30.00 | 50.00 | 3.20 | – |"), "{md}");
        let csv = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
        assert!(csv.lines().nth(2).unwrap().starts_with("lorta,4,12345,10,0.3,0.5,3.2,,3,"), "{csv}");
        let png = std::fs::read(dir.path().join("loss_curves.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
