//! GLUE data layer, free of any tensor framework: task facts ([`tasks`]),
//! loading splits ([`data`]), batching tokenized examples ([`batch`]),
//! metrics ([`metrics`]) and downloading the official archives ([`fetch`]).

pub mod batch;
pub mod data;
pub mod fetch;
pub mod metrics;
pub mod tasks;

use std::fmt;
use std::path::{Path, PathBuf};

pub use batch::{
    epoch_batches, epoch_order, epoch_padded, epoch_rng, pad_batch, pad_batch_to, Batch, BatchConfig,
    BatchLabels, Encoded,
};
pub use data::{
    build_mrpc_train_from_original, find_split_file, load_file, load_split, split_candidates,
    write_mrpc_splits, DataError, Dataset, Example, Label, Layout, Split, MAX_RAGGED_ROWS,
};
pub use fetch::{
    archive_name, fetch_glue, fetch_glue_from, required_files, FetchError, GLUE_BASE_URL,
    MRPC_RAW_BASE_URL,
};
pub use metrics::{
    accuracy, average_ranks, f1_binary, matthews_corrcoef, pearson, spearman, task_metrics,
};
pub use tasks::{GlueTask, Metric, UnknownTask};

/// Default GLUE cache: `$LORTA_CACHE/glue` when `LORTA_CACHE` is set,
/// else `~/.cache/lorta/glue` (`./.cache/lorta/glue` without `HOME`).
pub fn default_cache_dir() -> PathBuf {
    if let Some(c) = std::env::var_os("LORTA_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(c).join("glue");
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("lorta").join("glue")
}

/// The splits a training run of `task` needs: train and dev (and MNLI's
/// mismatched dev).
pub fn needed_splits(task: GlueTask) -> &'static [Split] {
    match task {
        GlueTask::Mnli => &[Split::Train, Split::Dev, Split::DevMismatched],
        _ => &[Split::Train, Split::Dev],
    }
}

/// Files of `task` missing under the GLUE directory `dir` (the preferred
/// expected path of each split that [`find_split_file`] cannot find).
pub fn missing_files(dir: &Path, task: GlueTask) -> Vec<PathBuf> {
    needed_splits(task)
        .iter()
        .filter_map(|&s| match find_split_file(dir, task, s) {
            Ok(_) => None,
            Err(DataError::MissingFile { expected, .. }) => Some(expected),
            Err(_) => None,
        })
        .collect()
}

/// GLUE data for a task is not where it was looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingData {
    pub task: GlueTask,
    /// The directory searched (the explicit one, or the default cache).
    pub dir: PathBuf,
    /// Whether `dir` came from `--glue-dir`.
    pub explicit: bool,
    /// Exactly which files are missing.
    pub missing: Vec<PathBuf>,
}

impl MissingData {
    /// Command that downloads the task into the default cache.
    pub fn fetch_command(&self) -> String {
        format!(
            "cargo run --release -p lorta-experiments -- fetch glue --tasks {}",
            self.task.name()
        )
    }
}

impl fmt::Display for MissingData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = if self.explicit {
            "--glue-dir"
        } else {
            "the default cache"
        };
        writeln!(
            f,
            "GLUE {} data not found in {} ({from}); missing:",
            self.task.folder(),
            self.dir.display()
        )?;
        for m in &self.missing {
            writeln!(f, "  {}", m.display())?;
        }
        let files = required_files(self.task)
            .iter()
            .map(|n| format!("{}/{n}", self.task.folder()))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(
            f,
            "Provide it with --glue-dir DIR (a folder holding {files}),"
        )?;
        write!(
            f,
            "or download it into {} with: {}",
            default_cache_dir().display(),
            self.fetch_command()
        )
    }
}

impl std::error::Error for MissingData {}

/// Picks the GLUE directory for `task`: `explicit` (from `--glue-dir`) when
/// given, else [`default_cache_dir`]; fails with the exact missing files and
/// how to get them when the task's splits are not all there.
pub fn resolve_glue_dir(explicit: Option<&Path>, task: GlueTask) -> Result<PathBuf, MissingData> {
    let (dir, is_explicit) = match explicit {
        Some(d) => (d.to_path_buf(), true),
        None => (default_cache_dir(), false),
    };
    let missing = missing_files(&dir, task);
    if missing.is_empty() {
        Ok(dir)
    } else {
        Err(MissingData {
            task,
            dir,
            explicit: is_explicit,
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_reports_missing_files_and_remedy() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("RTE")).unwrap();
        std::fs::write(
            d.path().join("RTE/dev.tsv"),
            "index\tsentence1\tsentence2\tlabel\n",
        )
        .unwrap();
        let err = resolve_glue_dir(Some(d.path()), GlueTask::Rte).unwrap_err();
        assert_eq!(err.missing, vec![d.path().join("RTE/train.tsv")]);
        let msg = err.to_string();
        assert!(msg.contains("RTE/train.tsv"), "{msg}");
        assert!(msg.contains("--glue-dir DIR"), "{msg}");
        assert!(
            msg.contains("cargo run --release -p lorta-experiments -- fetch glue --tasks rte"),
            "{msg}"
        );

        std::fs::write(
            d.path().join("RTE/train.tsv"),
            "index\tsentence1\tsentence2\tlabel\n",
        )
        .unwrap();
        assert_eq!(
            resolve_glue_dir(Some(d.path()), GlueTask::Rte).unwrap(),
            d.path()
        );

        let err = resolve_glue_dir(Some(d.path()), GlueTask::Mnli).unwrap_err();
        assert_eq!(
            err.missing,
            vec![
                d.path().join("MNLI/train.tsv"),
                d.path().join("MNLI/dev_matched.tsv"),
                d.path().join("MNLI/dev_mismatched.tsv")
            ]
        );
    }

    #[test]
    fn cache_dir_ends_in_lorta_glue() {
        let c = default_cache_dir();
        assert!(c.ends_with("glue"), "{}", c.display());
    }

    #[test]
    fn resolve_real_shared_data() {
        let Some(g) = data::tests::shared_glue("resolve_real_shared_data") else {
            return;
        };
        for t in [
            GlueTask::Cola,
            GlueTask::Mrpc,
            GlueTask::Rte,
            GlueTask::Stsb,
            GlueTask::Wnli,
        ] {
            assert_eq!(resolve_glue_dir(Some(&g), t).unwrap(), g);
        }
        let err = resolve_glue_dir(Some(&g), GlueTask::Qnli).unwrap_err();
        assert_eq!(err.missing, vec![g.join("QNLI/train.tsv")]);
    }
}
