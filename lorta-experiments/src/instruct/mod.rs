//! Instruction tuning (SFT on Alpaca-format data, response-only loss, optional packing) and the
//! MT-bench answer export (FastChat format; judging is external).
pub mod data;
pub mod mtbench;
pub mod task;
