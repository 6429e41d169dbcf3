//! The experiment layer: data (GLUE), training, the paper's tables and the CLI commands.
//! `main.rs` only parses arguments and dispatches to [`commands`].
pub mod backend;
pub mod commands;
pub mod glue;
pub mod lm;
pub mod profile;
pub mod instruct;
pub mod preference;
pub mod protein;
pub mod report;
pub mod runner;
pub mod superglue;
pub mod train;
pub mod tables;
