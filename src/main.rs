//! `tongban`: the one binary a city's data bureau runs.
//!
//! This file only parses the command line and hands each subcommand to its module under
//! `commands/`. The work itself lives in the library crates (`crates/standards`, `crates/synth`,
//! and those that follow), which know nothing of the terminal.

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tongban",
    version,
    about = "Tongban (通办): connect department data silos, clean and link their records into shared base libraries, and share them under rules",
    after_help = "Examples:\n  tongban demo                                  generate the default street (唯亭街道) and print its summary\n  tongban synth --seed 1 --out data/synth       write eleven department exports and the ground truth\n  tongban check id 11010519491231002X           validate and explain a citizen id\n  tongban check address '园区唯亭青剑湖花园12-3-1001'\n  tongban divisions 唯亭                         look a division up by name, abbreviation or code\n  tongban bench synth --people 1000000          measure generation speed and peak memory"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the default synthetic street into the data directory and print its summary.
    Demo(commands::demo::Args),
    /// Generate a synthetic city: department exports plus the ground truth behind them.
    Synth(commands::synth::Args),
    /// Validate, clean and explain one value against the national standards.
    Check(commands::check::Args),
    /// Look up administrative divisions by code, name or abbreviation.
    Divisions(commands::divisions::Args),
    /// Measure speed and memory (benchmarks, never timed tests).
    Bench(commands::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => commands::demo::run(a),
        Command::Synth(a) => commands::synth::run(a),
        Command::Check(a) => commands::check::run(a),
        Command::Divisions(a) => commands::divisions::run(a),
        Command::Bench(a) => commands::bench::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
