//! Table 3's LLM tasks in the MeZO/LoReTTA setting: COPA and ReCoRD (classification by candidate
//! log-likelihood), SQuAD v1.1 and DROP (greedy generation scored by EM/F1).
//!
//! Free of any tensor framework: loading the official files ([`data`]), MeZO's prompt templates
//! ([`prompts`]), the EM/F1 scorers of the official SQuAD v1.1 and DROP scripts ([`metrics`]),
//! and the fixed-seed train/dev/eval samples ([`data::sample_splits`]).
pub mod data;
pub mod metrics;
pub mod prompts;
pub mod table;
pub mod task;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use data::{load_task_splits, missing_files, sample_splits, SplitSizes, TaskSplits};
pub use metrics::{drop_em_f1, squad_em_f1};
pub use prompts::{LmExample, Target};

/// One of Table 3's tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmTask {
    Copa,
    Record,
    Squad,
    Drop,
}

impl LlmTask {
    pub const ALL: [LlmTask; 4] = [LlmTask::Copa, LlmTask::Record, LlmTask::Squad, LlmTask::Drop];

    /// Lower-case name used on the command line and in folder names.
    pub fn name(self) -> &'static str {
        match self {
            LlmTask::Copa => "copa",
            LlmTask::Record => "record",
            LlmTask::Squad => "squad",
            LlmTask::Drop => "drop",
        }
    }

    /// Column title of the tables (the paper's spelling).
    pub fn title(self) -> &'static str {
        match self {
            LlmTask::Copa => "COPA",
            LlmTask::Record => "ReCoRD",
            LlmTask::Squad => "SQuAD",
            LlmTask::Drop => "DROP",
        }
    }

    /// True for the tasks scored by generation (EM/F1), false for candidate scoring (accuracy).
    pub fn is_generation(self) -> bool {
        matches!(self, LlmTask::Squad | LlmTask::Drop)
    }

    /// Key of the main metric (what Table 3 reports): accuracy or F1.
    pub fn main_metric(self) -> &'static str {
        if self.is_generation() {
            "f1"
        } else {
            "accuracy"
        }
    }
}

impl fmt::Display for LlmTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LlmTask {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let l = s.to_ascii_lowercase();
        LlmTask::ALL
            .into_iter()
            .find(|t| t.name() == l || (l == "squad1.1" && *t == LlmTask::Squad))
            .ok_or_else(|| anyhow::anyhow!("unknown task `{s}` (Table 3 tasks: copa, record, squad, drop)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in LlmTask::ALL {
            assert_eq!(t.name().parse::<LlmTask>().unwrap(), t);
        }
        assert_eq!("ReCoRD".parse::<LlmTask>().unwrap(), LlmTask::Record);
        let e = "boolq".parse::<LlmTask>().unwrap_err().to_string();
        assert!(e.contains("boolq") && e.contains("copa"), "{e}");
        assert_eq!(LlmTask::Squad.main_metric(), "f1");
        assert_eq!(LlmTask::Copa.main_metric(), "accuracy");
    }
}
