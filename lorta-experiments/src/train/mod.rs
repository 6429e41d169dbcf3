//! GLUE fine-tuning: optimizer and schedule, checkpoints, the training loop.
pub mod checkpoint;
pub mod optim;
pub mod schedule;
