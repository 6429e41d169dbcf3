use clap::{Parser, Subcommand};
use lorta_experiments::commands;

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Params(a) => commands::params::run(a),
        Command::Profile(a) => commands::profile::run(a),
        Command::Forward(a) => commands::forward::run(a),
        Command::Merge(a) => commands::merge::run(a),
        Command::Generate(a) => commands::generate::run(a),
    }
}
