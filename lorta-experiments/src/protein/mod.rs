//! Protein folding: PDB/mmCIF reading, chains with gap and atom masks, distogram targets, the
//! contact / distogram / lDDT metrics, and the folding experiment.
pub mod batch;
pub mod chain;
pub mod dataset;
pub mod distogram;
pub mod experiment;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod profile;
pub mod residues;
pub mod structure;
pub mod task;

pub use chain::ProteinChain;
pub use dataset::{load_split, LoadOptions, LoadReport, OnBadChain};
