//! The `blockhub` command: parse flags, start logging, dispatch.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = blockhub::Cli::parse();
    blockhub::logging::init(cli.verbose);
    blockhub::run(cli)
}
