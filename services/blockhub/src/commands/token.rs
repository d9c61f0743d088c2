//! `blockhub token issue DEPARTMENT`: a new gateway token;
//! `blockhub token pin-cert DEPARTMENT CERT.pem`: a client certificate
//! that acts for a department over mutual TLS.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use crate::config::{DataDir, add_certificate, add_token, random_hex};

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
    /// Let a client certificate (PEM) act for a department; the gateway
    /// must run with --tls-client-ca naming the CA that signed it.
    PinCert {
        /// The department the certificate acts for.
        department: String,
        /// The client certificate, PEM.
        certificate: PathBuf,
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
        TokenCommand::PinCert {
            department,
            certificate,
            tokens_file,
        } => {
            let file = tokens_file.unwrap_or_else(|| data.path("tokens.toml"));
            let pem = std::fs::read_to_string(&certificate)
                .with_context(|| format!("reading {}", certificate.display()))?;
            let Some(fingerprint) = blockhub_gateway::tls::pem_fingerprint(&pem) else {
                anyhow::bail!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    certificate.display()
                );
            };
            add_certificate(&file, &department, &fingerprint)?;
            eprintln!(
                "Certificate {} (SHA-256 {fingerprint}) acts for {department}; added to {}. \
                 A running gateway reads it when restarted.",
                certificate.display(),
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
