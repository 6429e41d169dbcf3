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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Params(a) => commands::params::run(a),
    }
}
