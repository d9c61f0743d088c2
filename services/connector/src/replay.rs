//! Reading a fact topic back from its beginning, for the state a connector
//! needs before it publishes: the unit directory from the quota topic, and
//! what a source last published (the snapshot diff).
//!
//! The topic is the record of what was published: reading it back gives
//! the same answer on every machine and after any crash, since a message
//! the broker confirmed is on it and one it did not confirm is not.

use blockhub_model::{
    BrokerError, Event, EventKind, KafkaSettings, SchemaRegistry, read_topic_to_end,
};
use rdkafka::error::KafkaError;
use tracing::warn;

/// What a replay read, besides the events folded into the caller's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Events decoded and folded.
    pub events: u64,
    /// Messages that did not decode (the merger dead-letters them).
    pub undecodable: u64,
    /// Whether every partition was read to the end it had when the replay
    /// started; false when the broker stopped answering part-way.
    pub complete: bool,
}

/// Reads every message of `kind`'s topic up to the end it has now, in
/// order within each partition, folding each decoded event into `state`.
pub async fn replay<S: Send + 'static>(
    settings: &KafkaSettings,
    kind: EventKind,
    state: S,
    fold: fn(&mut S, Event),
) -> Result<(S, ReplayStats), BrokerError> {
    let topic = settings.topic(kind);
    let config = settings.client_config();
    let brokers = settings.brokers.clone();
    let read = tokio::task::spawn_blocking(move || read_topic(config, &topic, state, fold)).await;
    match read {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(source)) => Err(BrokerError::Client { brokers, source }),
        Err(_) => Err(BrokerError::Client {
            brokers,
            source: KafkaError::Canceled,
        }),
    }
}

fn read_topic<S>(
    config: rdkafka::ClientConfig,
    topic: &str,
    mut state: S,
    fold: fn(&mut S, Event),
) -> Result<(S, ReplayStats), KafkaError> {
    let registry = SchemaRegistry::get().ok();
    let mut stats = ReplayStats::default();
    stats.complete =
        read_topic_to_end(
            config,
            topic,
            "blockhub-connector-replay",
            |payload| match registry.map(|r| r.decode_event(payload)) {
                Some(Ok(event)) => {
                    stats.events += 1;
                    fold(&mut state, event);
                }
                _ => stats.undecodable += 1,
            },
        )?;
    if stats.undecodable > 0 {
        warn!(
            %topic,
            undecodable = stats.undecodable,
            "Messages on the topic did not decode; the merger keeps them as dead letters."
        );
    }
    Ok((state, stats))
}
