//! Copies the audit log to the `audit` topic, so that a second, separately
//! held record exists outside the store: deleting the newest entries from
//! the database (which the chain alone cannot reveal) shows against it.
//!
//! Entries are published oldest first, keyed by sequence number, and
//! marked in the store once the broker has them; a crash in between
//! publishes some entries twice, with the same sequence number and hash,
//! which a reader recognises.

use std::collections::BTreeMap;
use std::time::Duration;

use blockhub_merger::Store;
use blockhub_merger::store::AuditEntry;
use blockhub_model::{BrokerError, KafkaSettings, error_chain, read_topic_to_end, send_all};
use tracing::{debug, info, warn};

use crate::error::GatewayError;

/// The topic's name under the deployment prefix.
pub const AUDIT_TOPIC: &str = "audit";

/// Publishes what is pending, a page at a time. Returns how many.
pub async fn publish_pending(
    store: &Store,
    settings: &KafkaSettings,
    producer: &rdkafka::producer::FutureProducer,
) -> Result<usize, GatewayError> {
    let topic = settings.named_topic(AUDIT_TOPIC);
    let mut published = 0;
    loop {
        let pending = store.unpublished_audit(500).await?;
        let Some(last) = pending.last().map(|entry| entry.seq) else {
            return Ok(published);
        };
        let mut messages = Vec::with_capacity(pending.len());
        for entry in &pending {
            let payload = serde_json::to_vec(entry).map_err(|source| GatewayError::Encode {
                seq: entry.seq,
                source,
            })?;
            messages.push((entry.seq.to_string(), payload));
        }
        send_all(producer, &topic, &messages)
            .await
            .map_err(GatewayError::Broker)?;
        store.mark_audit_published(last).await?;
        published += pending.len();
        debug!(published, "Audit entries published.");
    }
}

/// Publishes new audit entries every `every` until `stop` resolves. A
/// failure is logged once and retried; the entries stay pending in the
/// store meanwhile, so none is lost.
pub async fn run(
    store: Store,
    settings: KafkaSettings,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), GatewayError> {
    settings
        .ensure_named_topics(&[settings.named_topic(AUDIT_TOPIC)])
        .await
        .map_err(GatewayError::Broker)?;
    let producer = settings.producer().map_err(GatewayError::Broker)?;
    tokio::pin!(stop);
    let mut failing = false;
    loop {
        match publish_pending(&store, &settings, &producer).await {
            Ok(_) if failing => {
                info!("Audit publishing recovered.");
                failing = false;
            }
            Ok(_) => {}
            Err(error) if !failing => {
                warn!(error = %error_chain(&error), "Audit entries not published; retrying.");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Every entry published on the audit topic, by sequence number: one
/// version each, unless an entry was replaced after it was published (a
/// crash between publishing and marking repeats the same version, which
/// counts once). Messages that are not audit entries are counted.
pub async fn read_published(
    settings: &KafkaSettings,
) -> Result<(BTreeMap<i64, Vec<AuditEntry>>, u64), GatewayError> {
    let topic = settings.named_topic(AUDIT_TOPIC);
    let config = settings.client_config();
    let brokers = settings.brokers.clone();
    let group = format!("blockhub-audit-read-{}", std::process::id());
    let read = tokio::task::spawn_blocking(move || {
        let mut copies: BTreeMap<i64, Vec<AuditEntry>> = BTreeMap::new();
        let mut unreadable = 0;
        let complete =
            read_topic_to_end(
                config,
                &topic,
                &group,
                |payload| match serde_json::from_slice::<AuditEntry>(payload) {
                    Ok(entry) => {
                        let versions = copies.entry(entry.seq).or_default();
                        if !versions.iter().any(|v| v.hash == entry.hash) {
                            versions.push(entry);
                        }
                    }
                    Err(_) => unreadable += 1,
                },
            );
        (complete, copies, unreadable, topic)
    })
    .await;
    let broker = |source| GatewayError::Broker(BrokerError::Client { brokers, source });
    match read {
        Ok((Ok(true), copies, unreadable, _)) => Ok((copies, unreadable)),
        Ok((Ok(false), _, _, topic)) => {
            Err(GatewayError::Broker(BrokerError::Incomplete { topic }))
        }
        Ok((Err(source), ..)) => Err(broker(source)),
        Err(_) => Err(broker(rdkafka::error::KafkaError::Canceled)),
    }
}

/// Puts back into the store the entries the audit topic holds beyond the
/// store's own chain, before the gateway appends anything: a hub switched
/// to a rebuilt store then carries on the chain the old store's hub went
/// on writing while the rebuild ran, instead of starting a second one.
/// Returns how many were restored.
pub async fn catch_up(store: &Store, settings: &KafkaSettings) -> Result<u64, GatewayError> {
    let (published, _) = read_published(settings).await?;
    let restored = store.restore_audit(&published).await?;
    if restored > 0 {
        info!(
            restored,
            "Audit entries the store lacked were restored from the audit topic."
        );
    }
    Ok(restored)
}
