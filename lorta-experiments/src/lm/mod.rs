//! Causal-LM building blocks shared by the LLM families (Table 3 tasks, SFT, DPO): tokenizing a
//! prompt and its continuation ([`tokenize`]), per-sequence log-likelihoods of the continuation
//! tokens under a LLaMA model, the losses built on them and greedy answers ([`score`]).
pub mod chat;
pub mod load;
pub mod method;
pub mod run_report;
pub mod score;
pub mod tokenize;

pub use score::{
    classification_loss, continuation_logprobs, dpo_loss, dpo_stats, greedy_answer, pad_sequences, sft_loss, DpoStats,
    PaddedSequences,
};
pub use tokenize::{LmTokenizer, Sequence};

/// The progress bar every LLM run shows (position, ETA, a message).
pub fn progress_bar(len: u64, prefix: &str) -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new(len);
    b.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len}, {elapsed} elapsed, ETA {eta} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b.set_prefix(prefix.to_string());
    b
}
