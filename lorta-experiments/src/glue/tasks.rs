//! The nine GLUE tasks and their static facts: folder names, label sets,
//! metrics and split file names.

use std::fmt;
use std::str::FromStr;

/// One GLUE task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GlueTask {
    Sst2,
    Mrpc,
    Cola,
    Qnli,
    Rte,
    Stsb,
    Mnli,
    Qqp,
    Wnli,
}

/// A metric that can be computed for a GLUE task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Accuracy,
    F1,
    Matthews,
    Pearson,
    Spearman,
}

impl Metric {
    /// Key used in metric maps (`task_metrics`) and result files.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::F1 => "f1",
            Metric::Matthews => "mcc",
            Metric::Pearson => "pearson",
            Metric::Spearman => "spearman",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Error for an unknown task name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown GLUE task {0:?} (expected one of: sst2, mrpc, cola, qnli, rte, stsb, mnli, qqp, wnli)"
)]
pub struct UnknownTask(pub String);

const RTE_LABELS: &[&str] = &["entailment", "not_entailment"];
const MNLI_LABELS: &[&str] = &["entailment", "neutral", "contradiction"];
const SST2_LABELS: &[&str] = &["negative", "positive"];
const MRPC_LABELS: &[&str] = &["not_equivalent", "equivalent"];
const COLA_LABELS: &[&str] = &["unacceptable", "acceptable"];
const QQP_LABELS: &[&str] = &["not_duplicate", "duplicate"];
const WNLI_LABELS: &[&str] = &["not_entailment", "entailment"];

impl GlueTask {
    /// All tasks, in the order of the GLUE paper's tables (roughly).
    pub const ALL: [GlueTask; 9] = [
        GlueTask::Cola,
        GlueTask::Sst2,
        GlueTask::Mrpc,
        GlueTask::Stsb,
        GlueTask::Qqp,
        GlueTask::Mnli,
        GlueTask::Qnli,
        GlueTask::Rte,
        GlueTask::Wnli,
    ];

    /// Canonical lower-case name (as used by Hugging Face `glue` configs).
    pub fn name(self) -> &'static str {
        match self {
            GlueTask::Sst2 => "sst2",
            GlueTask::Mrpc => "mrpc",
            GlueTask::Cola => "cola",
            GlueTask::Qnli => "qnli",
            GlueTask::Rte => "rte",
            GlueTask::Stsb => "stsb",
            GlueTask::Mnli => "mnli",
            GlueTask::Qqp => "qqp",
            GlueTask::Wnli => "wnli",
        }
    }

    /// Folder name in the layout written by GLUE's `download_glue_data.py`.
    pub fn folder(self) -> &'static str {
        match self {
            GlueTask::Sst2 => "SST-2",
            GlueTask::Mrpc => "MRPC",
            GlueTask::Cola => "CoLA",
            GlueTask::Qnli => "QNLI",
            GlueTask::Rte => "RTE",
            GlueTask::Stsb => "STS-B",
            GlueTask::Mnli => "MNLI",
            GlueTask::Qqp => "QQP",
            GlueTask::Wnli => "WNLI",
        }
    }

    /// Number of model outputs: 1 for STS-B (regression), else the class count.
    pub fn num_labels(self) -> usize {
        match self {
            GlueTask::Stsb => 1,
            GlueTask::Mnli => 3,
            _ => 2,
        }
    }

    /// True for STS-B, whose label is a similarity score in [0, 5].
    pub fn is_regression(self) -> bool {
        self == GlueTask::Stsb
    }

    /// True when the task has a second text segment.
    pub fn is_pair(self) -> bool {
        !matches!(self, GlueTask::Sst2 | GlueTask::Cola)
    }

    /// Class names indexed by class id (Hugging Face `glue` order).
    /// Empty for STS-B.
    pub fn label_names(self) -> &'static [&'static str] {
        match self {
            GlueTask::Rte | GlueTask::Qnli => RTE_LABELS,
            GlueTask::Mnli => MNLI_LABELS,
            GlueTask::Sst2 => SST2_LABELS,
            GlueTask::Mrpc => MRPC_LABELS,
            GlueTask::Cola => COLA_LABELS,
            GlueTask::Qqp => QQP_LABELS,
            GlueTask::Wnli => WNLI_LABELS,
            GlueTask::Stsb => &[],
        }
    }

    /// Maps a label string of a GLUE file to a class id.
    ///
    /// Accepts the decimal class id (`"0"`, `"1"`, `"2"` within range) and,
    /// for RTE/QNLI/MNLI, the string labels the original files use
    /// (`entailment` = 0, `not_entailment` = 1; MNLI `entailment` = 0,
    /// `neutral` = 1, `contradiction` = 2). Also accepts the HF class names
    /// from [`GlueTask::label_names`]. Returns `None` for anything else and
    /// always for STS-B.
    pub fn class_from_str(self, s: &str) -> Option<usize> {
        if self.is_regression() {
            return None;
        }
        let s = s.trim();
        if let Ok(v) = s.parse::<usize>() {
            return (v < self.num_labels()).then_some(v);
        }
        self.label_names().iter().position(|n| *n == s)
    }

    /// Metrics that apply to the task, in report order.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            GlueTask::Mrpc | GlueTask::Qqp => &[Metric::Accuracy, Metric::F1],
            GlueTask::Cola => &[Metric::Matthews],
            GlueTask::Stsb => &[Metric::Pearson, Metric::Spearman],
            _ => &[Metric::Accuracy],
        }
    }

    /// Metric used to select the best epoch / checkpoint and shown first in tables:
    /// CoLA Matthews, STS-B Pearson, everything else accuracy (MRPC included).
    pub fn main_metric(self) -> Metric {
        match self {
            GlueTask::Cola => Metric::Matthews,
            GlueTask::Stsb => Metric::Pearson,
            _ => Metric::Accuracy,
        }
    }

    /// Metrics reported in result tables: the main metric first, then extras
    /// (STS-B adds Spearman, MRPC and QQP add F1).
    pub fn reported_metrics(self) -> &'static [Metric] {
        match self {
            GlueTask::Cola => &[Metric::Matthews],
            GlueTask::Stsb => &[Metric::Pearson, Metric::Spearman],
            GlueTask::Mrpc | GlueTask::Qqp => &[Metric::Accuracy, Metric::F1],
            _ => &[Metric::Accuracy],
        }
    }

    /// Training file name in the original GLUE layout.
    pub fn train_file(self) -> &'static str {
        "train.tsv"
    }

    /// Dev file name(s) in the original GLUE layout. MNLI has two:
    /// `dev_matched.tsv` (reported as MNLI-m, used by `Split::Dev`) and
    /// `dev_mismatched.tsv` (MNLI-mm, `Split::DevMismatched`).
    pub fn dev_files(self) -> &'static [&'static str] {
        match self {
            GlueTask::Mnli => &["dev_matched.tsv", "dev_mismatched.tsv"],
            _ => &["dev.tsv"],
        }
    }
}

impl fmt::Display for GlueTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GlueTask {
    type Err = UnknownTask;

    /// Case-insensitive; `-` and `_` are ignored, so `SST-2`, `sst_2`, `sst2`,
    /// `STS-B`, `stsb` all work. `sst` and `sts` are accepted as aliases.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(|c| c.to_lowercase())
            .collect();
        Ok(match norm.as_str() {
            "sst2" | "sst" => GlueTask::Sst2,
            "mrpc" => GlueTask::Mrpc,
            "cola" => GlueTask::Cola,
            "qnli" => GlueTask::Qnli,
            "rte" => GlueTask::Rte,
            "stsb" | "sts" => GlueTask::Stsb,
            "mnli" => GlueTask::Mnli,
            "qqp" => GlueTask::Qqp,
            "wnli" => GlueTask::Wnli,
            _ => return Err(UnknownTask(s.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        for (s, t) in [
            ("sst2", GlueTask::Sst2),
            ("SST-2", GlueTask::Sst2),
            ("sst-2", GlueTask::Sst2),
            ("MRPC", GlueTask::Mrpc),
            ("CoLA", GlueTask::Cola),
            ("qnli", GlueTask::Qnli),
            ("Rte", GlueTask::Rte),
            ("stsb", GlueTask::Stsb),
            ("STS-B", GlueTask::Stsb),
            ("sts_b", GlueTask::Stsb),
            ("mnli", GlueTask::Mnli),
            ("QQP", GlueTask::Qqp),
            ("wnli", GlueTask::Wnli),
        ] {
            assert_eq!(s.parse::<GlueTask>().unwrap(), t, "{s}");
        }
        let e = "squad".parse::<GlueTask>().unwrap_err();
        assert!(e.to_string().contains("squad"));
    }

    #[test]
    fn round_trip_names_and_folders() {
        for t in GlueTask::ALL {
            assert_eq!(t.name().parse::<GlueTask>().unwrap(), t);
            assert_eq!(t.folder().parse::<GlueTask>().unwrap(), t);
        }
        assert_eq!(GlueTask::Stsb.folder(), "STS-B");
        assert_eq!(GlueTask::Cola.folder(), "CoLA");
    }

    #[test]
    fn labels() {
        assert_eq!(GlueTask::Stsb.num_labels(), 1);
        assert!(GlueTask::Stsb.is_regression());
        assert_eq!(GlueTask::Mnli.num_labels(), 3);
        assert_eq!(GlueTask::Rte.class_from_str("entailment"), Some(0));
        assert_eq!(GlueTask::Rte.class_from_str("not_entailment"), Some(1));
        assert_eq!(GlueTask::Qnli.class_from_str("not_entailment"), Some(1));
        assert_eq!(GlueTask::Mnli.class_from_str("entailment"), Some(0));
        assert_eq!(GlueTask::Mnli.class_from_str("neutral"), Some(1));
        assert_eq!(GlueTask::Mnli.class_from_str("contradiction"), Some(2));
        assert_eq!(GlueTask::Mnli.class_from_str("2"), Some(2));
        assert_eq!(GlueTask::Rte.class_from_str("2"), None);
        assert_eq!(GlueTask::Rte.class_from_str("maybe"), None);
        assert_eq!(GlueTask::Cola.class_from_str("1"), Some(1));
        assert_eq!(GlueTask::Stsb.class_from_str("1"), None);
    }

    #[test]
    fn metrics_and_files() {
        assert_eq!(GlueTask::Cola.main_metric(), Metric::Matthews);
        assert_eq!(GlueTask::Stsb.main_metric(), Metric::Pearson);
        assert_eq!(GlueTask::Mrpc.main_metric(), Metric::Accuracy);
        assert_eq!(GlueTask::Rte.main_metric(), Metric::Accuracy);
        assert_eq!(GlueTask::Mrpc.metrics(), &[Metric::Accuracy, Metric::F1]);
        assert_eq!(GlueTask::Qqp.metrics(), &[Metric::Accuracy, Metric::F1]);
        assert_eq!(
            GlueTask::Stsb.reported_metrics(),
            &[Metric::Pearson, Metric::Spearman]
        );
        assert_eq!(
            GlueTask::Mnli.dev_files(),
            &["dev_matched.tsv", "dev_mismatched.tsv"]
        );
        assert_eq!(GlueTask::Rte.dev_files(), &["dev.tsv"]);
        for t in GlueTask::ALL {
            assert_eq!(t.reported_metrics()[0], t.main_metric());
        }
    }
}
