//! Training: the task-agnostic loop ([`fit`]) driven by a [`Task`], its optimizer, schedule and
//! checkpoints, and GLUE fine-tuning on top of it ([`run`]).
pub mod checkpoint;
pub mod data;
pub mod fit;
pub mod optim;
pub mod run;
pub mod schedule;
pub mod task;

pub use fit::{fit, FitConfig, FitOutcome, LogEntry, RunOptions};
pub use run::{train, RunMetrics, TrainConfig};
pub use task::{Metrics, Task};
