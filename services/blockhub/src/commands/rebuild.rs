//! `blockhub rebuild --into URL`: replays every topic from its beginning
//! into a fresh database, which ends holding what the live store holds.
//!
//! The facts come from the fact and dead-letter topics through the same
//! merger code as the live store; alert states (acknowledgements included)
//! come from the alerts topic, where the hub publishes every change; the
//! gateway's audit log from the audit topic, where the hub copies every
//! entry (entries the hub had not yet published are not there). The
//! rebuilt store's offsets are given to the live merger's group too, so a
//! hub pointed at it carries on where the rebuild stopped.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use blockhub_merger::{MergerConfig, Store};
use blockhub_model::KafkaSettings;
use clap::Args;
use tokio::sync::oneshot;
use tracing::info;

use crate::BrokerArgs;
use crate::config::DataDir;

/// Flags of `rebuild`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The fresh database to rebuild into (postgres://... or sqlite://FILE;
    /// an SQLite file is created). It must not hold anything yet.
    #[arg(long)]
    pub into: String,
    /// The consumer group of the live merger, whose offsets the rebuilt
    /// store is given at the end.
    #[arg(long, default_value = "blockhub-merger")]
    pub merger_group: String,
    /// Broker settings.
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// What a rebuild did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildSummary {
    /// Messages replayed (every partition's end when it caught up).
    pub messages: i64,
    /// Alerts restored from the alerts topic.
    pub alerts: u64,
    /// Audit entries restored from the audit topic.
    pub audit_entries: u64,
}

/// Replays every topic into `target` (which must be fresh) and restores
/// the alert states; `merger_group` gets the offsets reached.
pub async fn rebuild_into(
    settings: &KafkaSettings,
    target: &Store,
    merger_group: &str,
) -> Result<RebuildSummary> {
    if !target.is_fresh().await? {
        bail!("the database to rebuild into already holds data; give a fresh one");
    }
    let mut config = MergerConfig::new(settings.clone());
    config.group = format!(
        "{}rebuild-{}",
        settings.topic_prefix,
        chrono::Utc::now().timestamp_millis()
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let merger = tokio::spawn(blockhub_merger::run(
        config.clone(),
        target.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let mut last_report = std::time::Instant::now();
    let messages = loop {
        if merger.is_finished() {
            break None;
        }
        let lag = blockhub_merger::lag(&config, target).await?;
        let behind: i64 = lag.iter().map(|p| p.lag()).sum();
        if behind == 0 {
            break Some(lag.iter().map(|p| p.high_watermark).sum::<i64>());
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            info!(behind, "Rebuilding.");
            last_report = std::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = stop.send(());
    let result = merger.await.context("the rebuild's merger task")?;
    result.context("the rebuild's merger failed")?;
    let Some(messages) = messages else {
        bail!("the rebuild's merger stopped before it caught up");
    };
    let alerts = blockhub_rules::read_alert_states(settings).await?;
    let alerts = target.restore_alerts(&alerts).await?;
    let (audit, _) = blockhub_gateway::audit_topic::read_published(settings)
        .await
        .context("reading the audit topic")?;
    let audit_entries = target.restore_audit(&audit).await?;
    target.copy_offsets(&config.group, merger_group).await?;
    Ok(RebuildSummary {
        messages,
        alerts,
        audit_entries,
    })
}

/// Runs `rebuild`.
pub async fn run(data: &DataDir, args: RebuildArgs) -> Result<ExitCode> {
    let settings = super::kafka_settings(data, &args.broker)?;
    let target = Store::open(&args.into)
        .await
        .context("opening the database to rebuild into")?;
    let summary = rebuild_into(&settings, &target, &args.merger_group).await?;
    target.close().await;
    println!(
        "Rebuilt {} from {} messages; {} alerts restored with their states, {} audit \
         entries with their chain.",
        blockhub_merger::store::redact(&args.into),
        summary.messages,
        summary.alerts,
        summary.audit_entries
    );
    Ok(ExitCode::SUCCESS)
}
