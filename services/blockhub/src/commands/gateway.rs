//! `blockhub gateway`: the gateway alone.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use blockhub_gateway::{BoundGateway, TokenRegistry};
use blockhub_merger::Store;
use clap::Args;

use crate::config::{DEFAULT_GATEWAY_LISTEN, DataDir};

/// Flags of `gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The store to read: postgres://user@host/db, or sqlite://FILE.
    /// Default: the SQLite store in --data-dir.
    #[arg(long, env = "BLOCKHUB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "BLOCKHUB_LISTEN", default_value = DEFAULT_GATEWAY_LISTEN)]
    pub listen: String,
    /// The tokens file (hashes only). Default: tokens.toml in --data-dir.
    #[arg(long, env = "BLOCKHUB_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
}

/// Runs `gateway` until stopped.
pub async fn run(data: &DataDir, args: GatewayArgs) -> Result<ExitCode> {
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| data.store_url());
    let tokens_file = args.tokens_file.unwrap_or_else(|| data.path("tokens.toml"));
    let tokens = TokenRegistry::load(&tokens_file).context("loading gateway tokens")?;
    let store = Store::open(&url).await.context("opening the store")?;
    let gateway = BoundGateway::bind(&args.listen, store, tokens).await?;
    gateway.serve(super::stop_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
