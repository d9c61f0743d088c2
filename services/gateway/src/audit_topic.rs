//! Copies the audit log to the `audit` topic, so that a second, separately
//! held record exists outside the store: deleting the newest entries from
//! the database (which the chain alone cannot reveal) shows against it.
//!
//! Entries are published oldest first, keyed by sequence number, and
//! marked in the store once the broker has them; a crash in between
//! publishes some entries twice, with the same sequence number and hash,
//! which a reader recognises.

use std::time::Duration;

use blockhub_merger::Store;
use blockhub_model::{KafkaSettings, error_chain, send_all};
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
