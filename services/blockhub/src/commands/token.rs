//! `blockhub token issue DEPARTMENT`: a new gateway token.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::config::{DataDir, add_token, random_hex};

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for a department, store its hash, print it once.
    Issue {
        /// The department the token acts for (court, finance, ...).
        department: String,
        /// The tokens file. Default: tokens.toml in --data-dir.
        #[arg(long, env = "BLOCKHUB_TOKENS_FILE")]
        tokens_file: Option<PathBuf>,
    },
}

/// Runs a token command.
pub fn run(data: &DataDir, command: TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Issue {
            department,
            tokens_file,
        } => {
            let file = tokens_file.unwrap_or_else(|| data.path("tokens.toml"));
            let token = random_hex(32);
            add_token(&file, &department, &token)?;
            eprintln!(
                "Token for {department} added to {} (hash only). It is shown once; a running \
                 gateway reads new tokens when restarted.",
                file.display()
            );
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
