//! What an LLM run trains: full fine-tuning, Houlsby adapters, prefix tuning, or one of the
//! adapter methods of lorta-core at the attention (IA3: K, V, FFN) sites.
use anyhow::{bail, Result};
use lorta_models::tuning::{HeadTuning, Tuning};
use serde::{Deserialize, Serialize};

use crate::commands::train::adapter_config;

/// One row of an LLM table (or the method of an `sft` / `dpo` run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmMethod {
    /// Row label (`LoRTA r4`).
    pub name: String,
    /// `full` (FT), `houlsby`, `prefix`, or an adapter method: lora, lorta, ia3, vera,
    /// loretta-rep, fact-tt, fact-tk, lotr.
    pub method: String,
    /// Adapter rank; Houlsby bottleneck width; prefix length.
    #[serde(default)]
    pub rank: usize,
    pub alpha: Option<f64>,
    /// Adapted matrices (q, k, v, o) of adapter methods.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Learning rate of this method (overrides the preset's).
    pub lr: Option<f64>,
}

impl LlmMethod {
    /// The `Tuning` that builds this method into a model (base frozen unless `full`).
    pub fn tuning(&self, seed: u64) -> Result<Tuning> {
        let base = Tuning { head: HeadTuning::Frozen, seed, ..Default::default() };
        Ok(match self.method.to_ascii_lowercase().as_str() {
            "full" | "ft" => Tuning { full: true, ..base },
            "houlsby" | "adapter" => {
                if self.rank == 0 {
                    bail!("method `{}`: houlsby needs `rank` = the bottleneck width", self.name);
                }
                Tuning { houlsby: Some(self.rank), ..base }
            }
            "prefix" => {
                if self.rank == 0 {
                    bail!("method `{}`: prefix needs `rank` = the prefix length", self.name);
                }
                Tuning { prefix_len: Some(self.rank), ..base }
            }
            m => {
                let targets = if self.targets.is_empty() { "q,k,v,o".to_string() } else { self.targets.join(",") };
                let a = adapter_config(m, self.rank, self.alpha, &targets).map_err(|e| anyhow::anyhow!("method `{}`: {e}", self.name))?;
                Tuning { adapter: a, ..base }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table3_method_builds_a_tuning() {
        let m = |method: &str, rank: usize| LlmMethod { name: method.into(), method: method.into(), rank, alpha: Some(16.0), targets: vec!["q".into(), "v".into()], lr: None };
        assert!(m("full", 0).tuning(0).unwrap().full);
        assert_eq!(m("houlsby", 16).tuning(0).unwrap().houlsby, Some(16));
        assert_eq!(m("prefix", 5).tuning(0).unwrap().prefix_len, Some(5));
        for a in ["lora", "lorta", "loretta-rep"] {
            assert!(m(a, 4).tuning(0).unwrap().adapter.is_some(), "{a}");
        }
        let mut ia3 = m("ia3", 1);
        ia3.alpha = None;
        assert!(ia3.tuning(0).unwrap().adapter.is_some());
        assert!(m("prefix", 0).tuning(0).unwrap_err().to_string().contains("prefix length"));
        assert!(m("lorax", 4).tuning(0).is_err());
    }
}
