//! `blockhub policy default | check FILE`: the gateway's sharing policy.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use blockhub_gateway::{DEFAULT_POLICY, Policy};
use clap::Subcommand;

/// `policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the shipped policy (commented), to start a deployment's own.
    Default,
    /// Check a policy file as the gateway would; exit 0 and list the
    /// departments, or exit 1 with the line and the reason.
    Check {
        /// The policy file.
        file: PathBuf,
    },
}

/// Runs `policy`.
pub fn run(command: PolicyCommand) -> Result<ExitCode> {
    match command {
        PolicyCommand::Default => {
            print!("{DEFAULT_POLICY}");
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Check { file } => match Policy::load(&file) {
            Ok(policy) => {
                for (name, department) in policy.departments() {
                    let purposes: Vec<&str> =
                        department.purposes.keys().map(String::as_str).collect();
                    println!(
                        "{name}: {} method(s), purposes [{}], {} per second{}",
                        department.methods.len(),
                        purposes.join(", "),
                        department.rate_per_second,
                        match &department.units {
                            Some(units) => format!(", {} unit(s) in scope", units.len()),
                            None => String::new(),
                        }
                    );
                }
                println!("{} is a valid policy", file.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                println!("{}", blockhub_model::error_chain(&error));
                Ok(ExitCode::from(1))
            }
        },
    }
}
