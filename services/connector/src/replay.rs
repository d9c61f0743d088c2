//! Reading a fact topic back from its beginning, for the state a connector
//! needs before it publishes: the unit directory from the quota topic, and
//! what a source last published (the snapshot diff).
//!
//! The topic is the record of what was published: reading it back gives
//! the same answer on every machine and after any crash, since a message
//! the broker confirmed is on it and one it did not confirm is not.

use std::collections::BTreeMap;
use std::time::Duration;

use blockhub_model::{BrokerError, Event, EventKind, KafkaSettings, SchemaRegistry};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

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
    let timeout = Duration::from_secs(10);
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "blockhub-connector-replay")
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(topic, partition.id(), timeout)?;
        if high > low {
            assignment.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
            ends.insert(partition.id(), high);
        }
    }
    let mut stats = ReplayStats {
        complete: true,
        ..ReplayStats::default()
    };
    if ends.is_empty() {
        return Ok((state, stats));
    }
    consumer.assign(&assignment)?;
    let registry = SchemaRegistry::get().ok();
    // A broker that goes away part-way (a restart) is waited for, with one
    // log line, up to the deadline; then the read is reported incomplete.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut waiting = false;
    while !ends.is_empty() {
        let message = match consumer.poll(timeout) {
            Some(Ok(message)) => message,
            Some(Err(error)) if std::time::Instant::now() < deadline => {
                if !std::mem::replace(&mut waiting, true) {
                    warn!(%topic, %error, "Broker unavailable while reading; waiting for it.");
                }
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            Some(Err(error)) => return Err(error),
            None => {
                warn!(%topic, "Topic stopped answering before its end was read.");
                stats.complete = false;
                break;
            }
        };
        if std::mem::take(&mut waiting) {
            info!(%topic, "Broker reachable again; reading on.");
        }
        let end = ends.get(&message.partition()).copied().unwrap_or(0);
        if message.offset() >= end {
            // Published after the replay started: not part of this read.
            ends.remove(&message.partition());
            continue;
        }
        if message.offset() + 1 >= end {
            ends.remove(&message.partition());
        }
        let Some(payload) = message.payload() else {
            continue; // A tombstone carries no fact.
        };
        match registry.map(|r| r.decode_event(payload)) {
            Some(Ok(event)) => {
                stats.events += 1;
                fold(&mut state, event);
            }
            _ => stats.undecodable += 1,
        }
    }
    if stats.undecodable > 0 {
        warn!(
            %topic,
            undecodable = stats.undecodable,
            "Messages on the topic did not decode; the merger keeps them as dead letters."
        );
    }
    Ok((state, stats))
}
