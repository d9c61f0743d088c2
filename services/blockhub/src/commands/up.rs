//! `blockhub up`: a whole hub on one machine.
//!
//! Starts (or uses) a broker, opens the store, runs the merger and the
//! gateway in this process, writes `hub.json` for the client commands, and
//! stops everything cleanly on Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use blockhub_gateway::BoundGateway;
use blockhub_merger::store::redact;
use blockhub_merger::{MergerConfig, Store};
use clap::Args;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::BrokerArgs;
use crate::StoreArgs;
use crate::broker::EmbeddedBroker;
use crate::config::{DEFAULT_BROKER_PORT, DEFAULT_GATEWAY_LISTEN, DataDir, HubFile};

/// Flags of `up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The gateway's address.
    #[arg(long, env = "BLOCKHUB_LISTEN", default_value = DEFAULT_GATEWAY_LISTEN)]
    pub listen: String,
    /// Port of the embedded broker (ignored with --brokers).
    #[arg(long, env = "BLOCKHUB_BROKER_PORT", default_value_t = DEFAULT_BROKER_PORT)]
    pub broker_port: u16,
    /// The tansu binary for the embedded broker. Default: BLOCKHUB_TANSU,
    /// the cache, PATH; installed with cargo when none is found.
    #[arg(long)]
    pub tansu: Option<PathBuf>,
    /// Who may call the gateway and what they see.
    #[command(flatten)]
    pub gateway: super::gateway::GatewayFlags,
    /// Seconds between evaluations of the alerts (0: never; then only
    /// `blockhub alerts` evaluates them).
    #[arg(long, env = "BLOCKHUB_RULES_INTERVAL", default_value_t = 60)]
    pub rules_interval: u64,
    /// Thresholds and retirement policy for the alerts (TOML); default the
    /// statutory policy.
    #[arg(long, env = "BLOCKHUB_POLICY")]
    pub policy: Option<PathBuf>,
    /// Broker settings; --brokers uses an external Kafka instead of the
    /// embedded broker.
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// Runs the hub until Ctrl-C or SIGTERM.
pub async fn run(data: &DataDir, args: UpArgs) -> Result<ExitCode> {
    run_until(data, args, super::stop_signal()).await
}

/// Runs the hub until `stop` completes.
pub async fn run_until(
    data: &DataDir,
    args: UpArgs,
    stop: impl std::future::Future<Output = ()>,
) -> Result<ExitCode> {
    if let Some(hub) = data.hub()
        && hub.pid != std::process::id()
    {
        bail!(
            "a hub (pid {}) already runs with data directory {}; stop it first \
                 (kill -TERM {}) or pass another --data-dir",
            hub.pid,
            data.root().display(),
            hub.pid
        );
    }
    // Everything the hub and its broker write holds personal data: keep
    // new files private to the operator, whatever the shell's umask.
    #[cfg(unix)]
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    // A broken health configuration is said before anything starts.
    if let Some(path) = &args.gateway.health_config {
        blockhub_health::HealthConfig::from_file(path)?;
    }
    let tokens_file = args.gateway.tokens_path(data);
    let operator_token = data.ensure_operator_token(&tokens_file)?;
    data.ensure_key_secret()?;

    let embedded = match &args.broker.brokers {
        Some(_) => None,
        None => Some(EmbeddedBroker::start(data, args.broker_port, args.tansu.as_deref()).await?),
    };
    let mut broker_args = args.broker.clone();
    if let Some(broker) = &embedded {
        broker_args.brokers = Some(broker.address.clone());
    }
    let kafka = super::kafka_settings_fresh(&broker_args);
    let result = serve(data, &args, kafka, stop, &operator_token, embedded.as_ref()).await;

    data.remove_hub();
    if let Some(broker) = embedded {
        broker.stop().await;
    }
    result
}

async fn serve(
    data: &DataDir,
    args: &UpArgs,
    kafka: blockhub_model::KafkaSettings,
    stop: impl std::future::Future<Output = ()>,
    operator_token: &std::path::Path,
    embedded: Option<&EmbeddedBroker>,
) -> Result<ExitCode> {
    // Its own flag or the data directory's file, never an earlier hub's
    // store: starting on another database must be asked for.
    let url = args
        .store
        .database_url
        .clone()
        .unwrap_or_else(|| data.store_url());
    let policy = match &args.policy {
        Some(path) => blockhub_rules::Policy::from_file(path)?,
        None => blockhub_rules::Policy::default(),
    };
    let store = Store::open(&url).await.context("opening the store")?;
    // Before the gateway appends anything: entries the old store's hub
    // wrote while this store was being rebuilt are put back first, so the
    // chain goes on instead of forking.
    if let Err(error) = blockhub_gateway::audit_topic::catch_up(&store, &kafka).await {
        warn!(
            error = %blockhub_model::error_chain(&error),
            "The audit topic was not read at start; if this store was rebuilt while the old \
             hub ran, `blockhub audit verify` may report a second chain."
        );
    }
    let mut options = args.gateway.options(data)?;
    options.kafka = Some(kafka.clone());
    let tls = options.tls.is_some();
    let gateway = BoundGateway::bind(&args.listen, store.clone(), options).await?;
    let address = gateway.address();
    let status_page = gateway.status_address().map(|at| format!("http://{at}/"));

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let merger_config = MergerConfig::new(kafka.clone());
    let mut merger = tokio::spawn(blockhub_merger::run(
        merger_config,
        store.clone(),
        stopped(stop_rx.clone()),
    ));
    let mut gateway = tokio::spawn(gateway.serve(stopped(stop_rx.clone())));
    let mut audit = tokio::spawn(blockhub_gateway::audit_topic::run(
        store.clone(),
        kafka.clone(),
        std::time::Duration::from_secs(2),
        stopped(stop_rx.clone()),
    ));
    let mut rules = tokio::spawn({
        let (store, kafka) = (store.clone(), kafka.clone());
        let interval = args.rules_interval;
        let stop = stopped(stop_rx);
        async move {
            if interval == 0 {
                stop.await;
                return Ok(());
            }
            let every = std::time::Duration::from_secs(interval);
            blockhub_rules::run(store, policy, kafka, every, stop).await
        }
    });

    data.write_hub(&HubFile {
        brokers: kafka.brokers.clone(),
        topic_prefix: kafka.topic_prefix.clone(),
        gateway: format!("{}://{address}", if tls { "https" } else { "http" }),
        store: redact(&url),
        pid: std::process::id(),
        status: status_page.clone(),
    })?;
    data.write_last_store(&redact(&url))?;
    let broker_line = match embedded {
        Some(broker) => format!(
            "{} (embedded tansu, pid {}, data {}, log {})",
            broker.address,
            broker.pid().unwrap_or_default(),
            broker.storage.display(),
            broker.log.display()
        ),
        None => format!("{} (external)", kafka.brokers),
    };
    println!("Blockhub is up.");
    println!("  broker   {broker_line}");
    println!("  store    {}", redact(&url));
    println!(
        "  merger   consumer group blockhub-merger, topics {}*",
        kafka.topic_prefix
    );
    println!(
        "  gateway  {}://{address} (operator token in {})",
        if tls { "https" } else { "http" },
        operator_token.display()
    );
    println!(
        "  alerts   evaluated every {} s, changes on topic {}{}",
        args.rules_interval,
        kafka.topic_prefix,
        blockhub_rules::ALERTS_TOPIC
    );
    println!(
        "  policy   {} (who may see what; re-read when it changes)",
        args.gateway.policy_path(data).display()
    );
    println!(
        "  audit    every gateway decision chained in the store (blockhub audit verify), \
         copied to topic {}{}",
        kafka.topic_prefix,
        blockhub_gateway::audit_topic::AUDIT_TOPIC
    );
    match &status_page {
        Some(page) => println!(
            "  status   {page} (sync health of every feed; metrics at {page}metrics; \
             blockhub health)"
        ),
        None => println!("  status   page off (--status-listen off); blockhub health still works"),
    }
    println!("  stop     Ctrl-C, or: kill -TERM {}", std::process::id());
    info!(%address, "Hub running.");

    let outcome = tokio::select! {
        _ = stop => { info!("Stop requested."); Ok(()) }
        result = &mut merger => match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(anyhow::Error::new(error).context("merger failed")),
            Err(join) => Err(anyhow::anyhow!("merger task ended: {join}")),
        },
        result = &mut gateway => match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(anyhow::Error::new(error).context("gateway failed")),
            Err(join) => Err(anyhow::anyhow!("gateway task ended: {join}")),
        },
        result = &mut audit => match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(anyhow::Error::new(error).context("audit publishing failed")),
            Err(join) => Err(anyhow::anyhow!("audit task ended: {join}")),
        },
        result = &mut rules => match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(anyhow::Error::new(error).context("rules loop failed")),
            Err(join) => Err(anyhow::anyhow!("rules task ended: {join}")),
        },
    };
    let _ = stop_tx.send(true);
    if !merger.is_finished() {
        let _ = merger.await;
    }
    if !gateway.is_finished() {
        let _ = gateway.await;
    }
    if !rules.is_finished() {
        let _ = rules.await;
    }
    if !audit.is_finished() {
        let _ = audit.await;
    }
    copy_last_audit_entries(&store, &kafka).await;
    store.close().await;
    match outcome {
        Ok(()) => {
            info!("Hub stopped.");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            error!(error = %blockhub_model::error_chain(error.as_ref()), "Hub stopped after a failure.");
            Err(error)
        }
    }
}

/// Copies to the audit topic what the gateway audited since the copier's
/// last round (it runs every 2 s), once the gateway has answered its last
/// call: a store rebuilt from the topics, or a hub switched to one, then
/// misses none of it. Bounded, so a broker that went first cannot hold the
/// stop up; what is not copied stays marked pending in this store.
async fn copy_last_audit_entries(store: &Store, kafka: &blockhub_model::KafkaSettings) {
    let copy = async {
        let producer = kafka
            .producer()
            .map_err(blockhub_gateway::GatewayError::Broker)?;
        blockhub_gateway::audit_topic::publish_pending(store, kafka, &producer).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(10), copy).await {
        Ok(Ok(0)) => {}
        Ok(Ok(copied)) => info!(copied, "Last audit entries copied to the audit topic."),
        Ok(Err(error)) => warn!(
            error = %blockhub_model::error_chain(&error),
            "The last audit entries were not copied to the audit topic; they stay pending \
             in the store and are copied when a hub runs on it again."
        ),
        Err(_) => warn!(
            "The last audit entries were not copied within 10 s; they stay pending in the \
             store and are copied when a hub runs on it again."
        ),
    }
}
