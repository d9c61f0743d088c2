//! `blockhub gateway`: the gateway alone; and the gateway settings `up`
//! shares with it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use blockhub_gateway::{
    BoundGateway, DEFAULT_POLICY, GatewayOptions, HealthOptions, PolicyHandle, TlsFiles,
    TokenRegistry,
};
use blockhub_health::HealthConfig;
use blockhub_merger::Store;
use clap::Args;

use crate::StoreArgs;
use crate::config::{DEFAULT_GATEWAY_LISTEN, DEFAULT_STATUS_LISTEN, DataDir, write_private};

/// Flags of `gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "BLOCKHUB_LISTEN", default_value = DEFAULT_GATEWAY_LISTEN)]
    pub listen: String,
    /// Who may call and what they see.
    #[command(flatten)]
    pub gateway: GatewayFlags,
    /// The broker whose topics subscriptions stream (--brokers, else the
    /// hub running with --data-dir; without either, Changes.Subscribe is
    /// refused as unavailable).
    #[command(flatten)]
    pub broker: crate::BrokerArgs,
}

/// Credentials, policy and TLS of the gateway.
#[derive(Debug, Clone, Args)]
pub struct GatewayFlags {
    /// The tokens file (hashes of tokens and client certificates only).
    /// Default: tokens.toml in --data-dir.
    #[arg(long, env = "BLOCKHUB_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// The sharing policy (TOML): departments, methods, purposes, fields,
    /// row scope, rate limits. Re-read when it changes. Default:
    /// gateway-policy.toml in --data-dir, written with the shipped policy
    /// on first start.
    #[arg(long, env = "BLOCKHUB_GATEWAY_POLICY")]
    pub gateway_policy: Option<PathBuf>,
    /// The gateway's TLS certificate chain (PEM). With --tls-key, the
    /// gateway speaks TLS only.
    #[arg(long, env = "BLOCKHUB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The gateway's TLS private key (PEM).
    #[arg(long, env = "BLOCKHUB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The CA that signs client certificates (PEM); a client certificate
    /// pinned in the tokens file then identifies its department.
    #[arg(long, env = "BLOCKHUB_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Address of the status page and the Prometheus metrics (plain HTTP:
    /// `/`, `/metrics`, `/report.json`; they name no person). "off" serves
    /// neither.
    #[arg(long, env = "BLOCKHUB_STATUS_LISTEN", default_value = DEFAULT_STATUS_LISTEN)]
    pub status_listen: String,
    /// When each feed is expected and when it counts as late, stalled or
    /// failing (TOML). Default: the shipped cadences (`blockhub health
    /// --default-config` prints them).
    #[arg(long, env = "BLOCKHUB_HEALTH_CONFIG")]
    pub health_config: Option<PathBuf>,
}

impl GatewayFlags {
    /// The tokens file in use.
    pub fn tokens_path(&self, data: &DataDir) -> PathBuf {
        self.tokens_file
            .clone()
            .unwrap_or_else(|| data.path("tokens.toml"))
    }

    /// The policy file in use.
    pub fn policy_path(&self, data: &DataDir) -> PathBuf {
        self.gateway_policy
            .clone()
            .unwrap_or_else(|| data.path("gateway-policy.toml"))
    }

    /// Everything the gateway needs besides its store. Writes the shipped
    /// policy and an audit key into the data directory when they are
    /// missing there (never over a file named by a flag).
    pub fn options(&self, data: &DataDir) -> Result<GatewayOptions> {
        let tokens =
            TokenRegistry::load(&self.tokens_path(data)).context("loading gateway tokens")?;
        let policy_path = match &self.gateway_policy {
            Some(path) => path.clone(),
            None => {
                let path = data.path("gateway-policy.toml");
                if !path.exists() {
                    // Only a new hub gets the shipped policy: one that has
                    // run (it has an audit key) lost its policy by mistake,
                    // and quietly granting the shipped one would widen it.
                    if data.path("audit.key").exists() {
                        anyhow::bail!(
                            "the gateway policy {} is missing: restore it, or write the \
                             shipped one with `blockhub policy default > {}` and adapt it",
                            path.display(),
                            path.display()
                        );
                    }
                    write_private(&path, DEFAULT_POLICY)?;
                    tracing::info!(file = %path.display(), "Gateway policy written.");
                }
                path
            }
        };
        let policy = PolicyHandle::from_file(&policy_path).context("loading the gateway policy")?;
        data.ensure_audit_key()?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            }),
            _ => None,
        };
        let health = HealthOptions {
            config: match &self.health_config {
                Some(path) => HealthConfig::from_file(path)?,
                None => HealthConfig::default(),
            },
            status_listen: (self.status_listen != "off").then(|| self.status_listen.clone()),
            ..HealthOptions::default()
        };
        Ok(GatewayOptions {
            tokens,
            policy: Arc::new(policy),
            audit_key: data.audit_key()?,
            tls,
            kafka: None,
            health,
        })
    }
}

/// Runs `gateway` until stopped.
pub async fn run(data: &DataDir, args: GatewayArgs) -> Result<ExitCode> {
    let url = args.store.url(data);
    let mut options = args.gateway.options(data)?;
    options.kafka = super::kafka_settings(data, &args.broker).ok();
    if options.kafka.is_none() {
        tracing::warn!("No broker named (--brokers) and no hub running: subscriptions are off.");
    }
    let store = Store::open(&url).await.context("opening the store")?;
    let gateway = BoundGateway::bind(&args.listen, store, options).await?;
    if let Some(status) = gateway.status_address() {
        tracing::info!(address = %status, "Status page at http://{status}/");
    }
    gateway.serve(super::stop_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
