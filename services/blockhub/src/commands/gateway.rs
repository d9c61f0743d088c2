//! `blockhub gateway`: the gateway alone.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use blockhub_gateway::{BoundGateway, TokenRegistry};
use blockhub_merger::Store;
use clap::Args;

use crate::StoreArgs;
use crate::config::{DEFAULT_GATEWAY_LISTEN, DataDir};

/// Flags of `gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "BLOCKHUB_LISTEN", default_value = DEFAULT_GATEWAY_LISTEN)]
    pub listen: String,
    /// The tokens file (hashes only). Default: tokens.toml in --data-dir.
    #[arg(long, env = "BLOCKHUB_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
}

/// Runs `gateway` until stopped.
pub async fn run(data: &DataDir, args: GatewayArgs) -> Result<ExitCode> {
    let url = args.store.url(data);
    let tokens_file = args.tokens_file.unwrap_or_else(|| data.path("tokens.toml"));
    let tokens = TokenRegistry::load(&tokens_file).context("loading gateway tokens")?;
    let store = Store::open(&url).await.context("opening the store")?;
    let gateway = BoundGateway::bind(&args.listen, store, tokens).await?;
    gateway.serve(super::stop_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
