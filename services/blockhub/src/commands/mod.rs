//! One module per command.

pub mod alerts;
pub mod audit;
pub mod connect;
pub mod dead_letters;
pub mod gateway;
pub mod health;
pub mod ingest;
pub mod lookup;
pub mod merger;
pub mod policy;
pub mod rebuild;
pub mod report;
pub mod staff;
pub mod superseded;
pub mod token;
pub mod up;

use std::process::ExitCode;

use anyhow::{Result, bail};
use blockhub_model::KafkaSettings;

use crate::config::{DEFAULT_BROKER_PORT, DataDir};
use crate::{BrokerArgs, Cli, ClientArgs, Command};

/// Runs a command.
pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let data = match &cli.command {
        Command::Up(_) | Command::Merger(_) | Command::Gateway(_) => {
            DataDir::create(&cli.data_dir)?
        }
        _ => DataDir::at(&cli.data_dir),
    };
    match cli.command {
        Command::Up(args) => up::run(&data, args).await,
        Command::Ingest(args) => ingest::run(&data, args).await,
        Command::Connect(args) => connect::run(&data, args).await,
        Command::Merger(args) => merger::run(&data, args).await,
        Command::Gateway(args) => gateway::run(&data, args).await,
        Command::Lookup(args) => lookup::run(&data, args).await,
        Command::Health(args) => health::run(&data, args).await,
        Command::DeadLetters(args) => dead_letters::run(&data, args).await,
        Command::Superseded(args) => superseded::run(&data, args).await,
        Command::Alerts(args) => alerts::run(&data, args).await,
        Command::Report(args) => report::run(&data, args).await,
        Command::Staff(args) => staff::run(&data, args).await,
        Command::Rebuild(args) => rebuild::run(&data, args).await,
        Command::Token(command) => token::run(&data, command),
        Command::Audit(command) => audit::run(&data, command).await,
        Command::Policy(command) => policy::run(command),
    }
}

/// Kafka settings from flags, else the hub running with this data
/// directory. There is no silent default: a client that guessed a port
/// could publish into some other hub's broker.
pub fn kafka_settings(data: &DataDir, args: &BrokerArgs) -> Result<KafkaSettings> {
    let hub = data.hub();
    let brokers = match (&args.brokers, &hub) {
        (Some(brokers), _) => brokers.clone(),
        (None, Some(hub)) => hub.brokers.clone(),
        (None, None) => bail!(
            "no hub is running with data directory {} ({}): start one with `blockhub up`, \
             pass the same --data-dir as the hub, or pass --brokers HOST:PORT",
            data.root().display(),
            no_hub_reason(data)
        ),
    };
    let mut settings = KafkaSettings::new(brokers);
    if let Some(prefix) = args
        .topic_prefix
        .clone()
        .or_else(|| hub.map(|hub| hub.topic_prefix))
    {
        settings.topic_prefix = prefix;
    }
    settings.partitions = args.partitions;
    settings.replication = args.replication;
    Ok(settings)
}

/// Kafka settings from flags only, for the hub that is starting (its own
/// earlier hub.json must not be read back).
pub fn kafka_settings_fresh(args: &BrokerArgs) -> KafkaSettings {
    let brokers = args
        .brokers
        .clone()
        .unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_BROKER_PORT}"));
    let mut settings = KafkaSettings::new(brokers);
    if let Some(prefix) = &args.topic_prefix {
        settings.topic_prefix = prefix.clone();
    }
    settings.partitions = args.partitions;
    settings.replication = args.replication;
    settings
}

/// The gateway URL and token from flags, else the hub running with this
/// data directory and its operator token. The operator token is only ever
/// sent to that hub's own gateway, never to one named by --gateway.
pub fn client_settings(data: &DataDir, args: &ClientArgs) -> Result<(String, Option<String>)> {
    let with_scheme = |url: String| {
        if url.contains("://") {
            url
        } else {
            format!("http://{url}")
        }
    };
    match (&args.gateway, data.hub()) {
        (Some(gateway), _) => Ok((with_scheme(gateway.clone()), args.token.clone())),
        (None, Some(hub)) => {
            let token = args.token.clone().or_else(|| data.operator_token());
            Ok((with_scheme(hub.gateway), token))
        }
        (None, None) => bail!(
            "no hub is running with data directory {} ({}): start one with `blockhub up`, \
             pass the same --data-dir as the hub, or pass --gateway URL --token T",
            data.root().display(),
            no_hub_reason(data)
        ),
    }
}

/// Why no running hub was found, for the messages that say so.
fn no_hub_reason(data: &DataDir) -> &'static str {
    if data.stale_hub_file() {
        "its hub.json is left from a hub that stopped without removing it"
    } else {
        "no hub.json there"
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
