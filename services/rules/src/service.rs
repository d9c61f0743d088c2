//! The hub's rules loop: evaluates the alerts as of today at an interval,
//! keeps their states in the store, and publishes every state change
//! (opened, reopened, resolved, acknowledged) to the alerts topic.
//!
//! Publishing works as an outbox: the store records which state of each
//! alert was last published, and the loop publishes any alert whose state
//! differs, whoever changed it (this loop, `blockhub alerts ack` or the
//! gRPC Acknowledge). A crash between publishing and recording publishes
//! that change again on the next round: subscribers see at least once,
//! keyed by alert id, with the state in the value.

use std::time::Duration;

use blockhub_merger::Store;
use blockhub_merger::store::StoredAlert;
use blockhub_model::{BrokerError, KafkaSettings, error_chain, read_topic_to_end, send_all};
use chrono::Local;
use rdkafka::producer::FutureProducer;
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::{Policy, evaluate};

/// The alerts topic's name, before the deployment prefix.
pub const ALERTS_TOPIC: &str = "alerts";

/// Why a round of the rules loop failed.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] blockhub_merger::MergerError),
    /// The broker refused.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// A message could not be serialised.
    #[error("alert {alert_id} could not be written as JSON")]
    Encode {
        /// The alert.
        alert_id: String,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
}

/// One state change as published (JSON), keyed by alert id.
#[derive(Debug, Serialize)]
pub struct AlertMessage<'a> {
    /// Stable id.
    pub alert_id: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// The person (normalised ID), where the kind concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    /// The unit's credit code, where the kind concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'a str>,
    /// open, acknowledged or resolved.
    pub state: &'a str,
    /// Which facts raised it.
    pub evidence: &'a str,
    /// First raised, last found to hold (ms since the epoch).
    pub first_seen: i64,
    /// Last found to hold.
    pub last_seen: i64,
    /// Who acknowledged it, if anyone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<&'a str>,
    /// Their note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_note: Option<&'a str>,
    /// When (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<i64>,
    /// When its condition cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
}

impl<'a> AlertMessage<'a> {
    /// The message for a kept alert.
    pub fn of(alert: &'a StoredAlert) -> Self {
        Self {
            alert_id: &alert.alert_id,
            kind: &alert.kind,
            id: alert.citizen_id.as_deref(),
            unit: alert.unit_code.as_deref(),
            state: &alert.state,
            evidence: &alert.evidence,
            first_seen: alert.first_seen,
            last_seen: alert.last_seen,
            acknowledged_by: alert.acknowledged_by.as_deref(),
            acknowledged_note: alert.acknowledged_note.as_deref(),
            acknowledged_at: alert.acknowledged_at,
            resolved_at: alert.resolved_at,
        }
    }
}

/// A published alert message read back: the same fields, owned.
#[derive(Debug, serde::Deserialize)]
struct PublishedAlert {
    alert_id: String,
    kind: String,
    id: Option<String>,
    unit: Option<String>,
    state: String,
    evidence: String,
    first_seen: i64,
    last_seen: i64,
    acknowledged_by: Option<String>,
    acknowledged_note: Option<String>,
    acknowledged_at: Option<i64>,
    resolved_at: Option<i64>,
}

/// Every alert's latest published state, read from the alerts topic from
/// its beginning to its end now: what a rebuilt store restores, so that an
/// acknowledgement survives a rebuild.
pub async fn read_alert_states(settings: &KafkaSettings) -> Result<Vec<StoredAlert>, RulesError> {
    let topic = settings.named_topic(ALERTS_TOPIC);
    let config = settings.client_config();
    let brokers = settings.brokers.clone();
    let read = tokio::task::spawn_blocking(move || read_alert_topic(config, &topic)).await;
    match read {
        Ok(Ok(latest)) => Ok(latest.into_values().collect()),
        Ok(Err(source)) => Err(BrokerError::Client { brokers, source }.into()),
        Err(_) => Err(BrokerError::Client {
            brokers,
            source: rdkafka::error::KafkaError::Canceled,
        }
        .into()),
    }
}

fn read_alert_topic(
    config: rdkafka::ClientConfig,
    topic: &str,
) -> Result<std::collections::BTreeMap<String, StoredAlert>, rdkafka::error::KafkaError> {
    let mut latest = std::collections::BTreeMap::new();
    let complete = read_topic_to_end(config, topic, "blockhub-alert-restore", |payload| {
        let Ok(alert) = serde_json::from_slice::<PublishedAlert>(payload) else {
            warn!(%topic, "An alerts message did not parse; skipped.");
            return;
        };
        latest.insert(
            alert.alert_id.clone(),
            StoredAlert {
                alert_id: alert.alert_id,
                kind: alert.kind,
                citizen_id: alert.id,
                unit_code: alert.unit,
                evidence: alert.evidence,
                state: alert.state,
                first_seen: alert.first_seen,
                last_seen: alert.last_seen,
                acknowledged_by: alert.acknowledged_by,
                acknowledged_note: alert.acknowledged_note,
                acknowledged_at: alert.acknowledged_at,
                resolved_at: alert.resolved_at,
            },
        );
    })?;
    if !complete {
        warn!(%topic, "Alerts topic stopped answering; some alert states not restored.");
    }
    Ok(latest)
}

/// One round: evaluate as of today, sync the kept states, publish what
/// changed. Returns how many changes were published.
pub async fn round(
    store: &Store,
    policy: &Policy,
    settings: &KafkaSettings,
    producer: &FutureProducer,
) -> Result<usize, RulesError> {
    let facts = store.rule_facts().await?;
    let today = Local::now().date_naive();
    let records: Vec<_> = evaluate(&facts, today, policy)
        .iter()
        .map(|alert| alert.record())
        .collect();
    let now = chrono::Utc::now().timestamp_millis();
    let sync = store.sync_alerts(&records, now).await?;
    if !(sync.opened.is_empty() && sync.reopened.is_empty() && sync.resolved.is_empty()) {
        info!(
            opened = sync.opened.len(),
            reopened = sync.reopened.len(),
            resolved = sync.resolved.len(),
            "Alerts changed."
        );
    }
    let topic = settings.named_topic(ALERTS_TOPIC);
    let mut published = 0;
    loop {
        let pending = store.unpublished_alerts(500).await?;
        if pending.is_empty() {
            return Ok(published);
        }
        // A page at a time, all in flight together, then one transaction
        // to record them.
        let mut messages = Vec::with_capacity(pending.len());
        for alert in &pending {
            let payload = serde_json::to_vec(&AlertMessage::of(alert)).map_err(|source| {
                RulesError::Encode {
                    alert_id: alert.alert_id.clone(),
                    source,
                }
            })?;
            messages.push((alert.alert_id.clone(), payload));
        }
        send_all(producer, &topic, &messages).await?;
        let states: Vec<(&str, &str)> = pending
            .iter()
            .map(|a| (a.alert_id.as_str(), a.state.as_str()))
            .collect();
        store.mark_alerts_published(&states).await?;
        published += pending.len();
        debug!(published, "Alert changes published.");
    }
}

/// Runs rounds every `interval` until `stop` resolves. A failed round is
/// logged once (not every interval) and retried; recovery is logged too.
pub async fn run(
    store: Store,
    policy: Policy,
    settings: KafkaSettings,
    interval: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), RulesError> {
    settings
        .ensure_named_topics(&[settings.named_topic(ALERTS_TOPIC)])
        .await?;
    let producer = settings.producer()?;
    tokio::pin!(stop);
    let mut failing = false;
    info!(every_seconds = interval.as_secs(), "Rules loop started.");
    loop {
        match round(&store, &policy, &settings, &producer).await {
            Ok(_) if failing => {
                info!("Rules loop recovered.");
                failing = false;
            }
            Ok(_) => {}
            Err(error) if !failing => {
                warn!(error = %error_chain(&error), "Rules round failed; retrying.");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = &mut stop => {
                info!("Rules loop stopped.");
                return Ok(());
            }
            () = tokio::time::sleep(interval) => {}
        }
    }
}
