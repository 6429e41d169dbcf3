//! GLUE fine-tuning: optimizer and schedule, checkpoints, data preparation, the training loop.
pub mod checkpoint;
pub mod data;
pub mod optim;
pub mod run;
pub mod schedule;

pub use run::{train, RunMetrics, RunOptions, TrainConfig};
