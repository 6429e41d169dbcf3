use clap::{Parser, Subcommand};
use lorta_experiments::commands;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` of mimalloc's `mi_option_e` (15 in mimalloc 2 and 3; the sys crate
/// has no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory mapped: a CPU training step frees and reallocates the same large buffers,
/// and returning them to the OS costs a page fault and a page clear per 4 KiB each time (a
/// quarter of an ndarray MiniLM step). The process's footprint stays at its peak, as with
/// PyTorch's caching allocators.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads it at its next purge decision.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// Reproduce the LoRTA paper: parameter tables, GLUE tables, profiling; train, run, merge.
#[derive(Parser)]
#[command(name = "lorta-experiments", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parameter counts of every method (the paper's Table 4 and more).
    Params(commands::params::Args),
    /// The paper's profiling table: memory, FLOPs, ms per training step (LoRA vs LoRTA on LLaMA).
    Profile(commands::profile::Args),
    /// Run a checkpoint (optionally adapted) on token ids or texts; write hidden states / logits as JSON.
    Forward(commands::forward::Args),
    /// Merge an adapter into a checkpoint (HF layout, same keys and dtypes).
    Merge(commands::merge::Args),
    /// Generate text with a LLaMA checkpoint (greedy or temperature / top-p sampling).
    Generate(commands::generate::Args),
    /// Fine-tune one adapter method on one GLUE task (checkpoints, --resume, metrics.json).
    Train(commands::train::Args),
    /// The paper's Table 1 (GLUE, LoReTTA setting, params incl. classifier): --preset paper|quick|smoke.
    Table1(commands::table::Args),
    /// The paper's Table 2 (GLUE, LoTR setting, params excl. classifier): --preset paper|quick|smoke.
    Table2(commands::table::Args),
    /// The paper's Table 3 (LLaMA on COPA, ReCoRD, SQuAD, DROP, MeZO setting): --preset paper|quick|smoke.
    Table3(commands::table3::Args),
    /// Instruction tuning on Alpaca-format data (response-only loss), optionally MT-bench answers after.
    Sft(commands::sft::Args),
    /// MT-bench answers in FastChat's format (two turns, chat template); judging is external.
    Mtbench(commands::mtbench::Args),
    /// Direct preference optimisation (HH-RLHF / Orca-DPO pairs; reference = adapter switched off).
    Dpo(commands::dpo::Args),
    /// Protein folding (the paper's ESMFold experiment): LoRA / LoRTA / full training of the
    /// folding trunk, contact precision on PSICOV-150, loss curves; --profile times steps.
    Fold(commands::fold::Args),
    /// Rank sweep: dev score vs trainable parameters, LoRA and LoRTA curves (--task, --ranks, --seeds).
    Sweep(commands::sweep::Args),
    /// Download data: `fetch glue --tasks rte,mrpc`.
    Fetch(commands::fetch::Args),
}

fn main() -> anyhow::Result<()> {
    keep_freed_memory();
    let cli = Cli::parse();
    match cli.command {
        Command::Params(a) => commands::params::run(a),
        Command::Profile(a) => commands::profile::run(a),
        Command::Forward(a) => commands::forward::run(a),
        Command::Merge(a) => commands::merge::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Train(a) => commands::train::run(a),
        Command::Table1(a) => commands::table::run("table1", a),
        Command::Table2(a) => commands::table::run("table2", a),
        Command::Table3(a) => commands::table3::run(a),
        Command::Sft(a) => commands::sft::run(a),
        Command::Mtbench(a) => commands::mtbench::run(a),
        Command::Dpo(a) => commands::dpo::run(a),
        Command::Sweep(a) => commands::sweep::run(a),
        Command::Fetch(a) => commands::fetch::run(a),
        Command::Fold(a) => commands::fold::run(a),
    }
}
