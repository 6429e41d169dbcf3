//! One module per CLI command; each exposes an `Args` (clap) struct and a `run` function.
pub mod params;
pub mod profile;
pub mod forward;
pub mod merge;
pub mod generate;
pub mod train;
pub mod table;
pub mod sweep;
pub mod fetch;
pub mod llm_common;
pub mod table3;
pub mod sft;
pub mod mtbench;
pub mod dpo;
pub mod fold;
