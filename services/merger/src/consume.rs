//! The merger's consume loop: read a batch from every source topic, decode
//! it, apply it to the store in one transaction, then tell Kafka.
//!
//! The store holds the authoritative offsets (see `store::apply`); the
//! offsets committed to Kafka only save re-reading after a restart, so a
//! crash between the two costs a re-delivery that the store recognises and
//! skips, never a lost or doubled fact.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use blockhub_model::{
    DeadLetter, DeadLetterSink, EventKind, KafkaSettings, SchemaRegistry, error_chain,
    mask_ids_in_text,
};
use chrono::Utc;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::{Instant, timeout_at};
use tracing::{Instrument, debug, debug_span, error, info, info_span, trace, warn};

use crate::error::MergerError;
use crate::profile::{self, Phase};
use crate::store::{Delivered, DeliveredItem, Store};

/// How the merger consumes.
#[derive(Debug, Clone)]
pub struct MergerConfig {
    /// Broker and topic layout.
    pub kafka: KafkaSettings,
    /// The consumer group; instances sharing it split the partitions.
    pub group: String,
    /// Most messages per store transaction.
    pub batch_size: usize,
    /// Longest wait to fill a batch once its first message arrived.
    pub batch_wait: Duration,
    /// How long the broker waits for a silent member (a merger that
    /// crashed) before giving its partitions to the others. Short, so a
    /// merger restarted after a crash is not kept waiting long.
    pub session_timeout: Duration,
    /// Whether this merger shares the partitions with others through the
    /// consumer group, or reads every partition itself.
    pub membership: Membership,
}

/// How a merger gets its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// Every partition of every topic, assigned by the merger itself and
    /// started at the store's own offsets. No group coordination, so a
    /// merger restarted after a crash resumes at once: the default for one
    /// merger per store (tansu 0.6 keeps a crashed group member, and the
    /// partitions the group gave it, indefinitely).
    Alone,
    /// Partitions split between the mergers of the group by the broker,
    /// for several mergers on a Kafka cluster.
    Group,
}

impl MergerConfig {
    /// Defaults for a broker.
    pub fn new(kafka: KafkaSettings) -> Self {
        Self {
            kafka,
            group: DEFAULT_GROUP.into(),
            batch_size: 1000,
            batch_wait: Duration::from_millis(100),
            session_timeout: Duration::from_secs(10),
            membership: Membership::Alone,
        }
    }

    /// The topics the merger reads.
    pub fn topics(&self) -> Vec<String> {
        EventKind::ALL
            .iter()
            .map(|kind| self.kafka.topic(*kind))
            .collect()
    }
}

/// Runs the merger until `shutdown` completes.
pub async fn run(
    config: MergerConfig,
    store: Store,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MergerError> {
    let span = info_span!("merger", group = %config.group);
    run_inner(config, store, shutdown).instrument(span).await
}

async fn run_inner(
    config: MergerConfig,
    store: Store,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MergerError> {
    config.kafka.ensure_topics().await?;
    let consumer: StreamConsumer = config
        .kafka
        .client_config()
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set(
            "session.timeout.ms",
            config.session_timeout.as_millis().to_string(),
        )
        // The broker waits this long for every known member to rejoin a
        // rebalance; members that crashed never do. Kept short so a
        // restarted merger is not held up for Kafka's default 5 minutes;
        // a batch takes well under it even on a slow database.
        .set(
            "max.poll.interval.ms",
            (config.session_timeout.as_millis() * 3).to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (config.session_timeout.as_millis() / 4)
                .max(100)
                .to_string(),
        )
        .create()
        .map_err(|source| consumer_error(&config, "be created", source))?;
    let topics = config.topics();
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    match config.membership {
        Membership::Group => consumer
            .subscribe(&topic_refs)
            .map_err(|source| consumer_error(&config, "subscribe", source))?,
        Membership::Alone => {
            let assignment = own_assignment(&config, &consumer, &store, &topics).await?;
            consumer
                .assign(&assignment)
                .map_err(|source| consumer_error(&config, "assign partitions", source))?;
        }
    }
    let dead_letters = DeadLetterSink::new(&config.kafka, config.kafka.producer()?);
    info!(topics = ?topics, "Merger started.");

    // Writer schemas of newer releases (published by their connectors).
    match config.kafka.learn_schemas().await {
        Ok(0) => {}
        Ok(learned) => info!(learned, "Writer schemas of newer releases learned."),
        Err(error) => warn!(%error, "Schemas topic not read; unknown schemas will be retried."),
    }
    let mut last_learned: Option<Instant> = None;
    tokio::pin!(shutdown);
    let mut broker_trouble = false;
    loop {
        let waited = Instant::now();
        let first = tokio::select! {
            _ = &mut shutdown => break,
            received = consumer.recv() => received,
        };
        profile::add(Phase::Waiting, waited.elapsed());
        let first = match first {
            Ok(message) => message,
            Err(error) => {
                // One line when the broker goes away, one when it is back.
                if !std::mem::replace(&mut broker_trouble, true) {
                    warn!(%error, "Broker unavailable; the merger keeps retrying.");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if std::mem::take(&mut broker_trouble) {
            info!("Broker reachable again; consuming.");
        }

        let filling = Instant::now();
        let mut decoding = Duration::ZERO;
        let mut decoded = |message: &rdkafka::message::BorrowedMessage<'_>| {
            let started = Instant::now();
            let item = decode(message);
            decoding += started.elapsed();
            item
        };
        learn_unknown_schema(&config, &first, &mut last_learned).await;
        let mut batch = vec![decoded(&first)];
        let deadline = Instant::now() + config.batch_wait;
        while batch.len() < config.batch_size {
            match timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) => {
                    learn_unknown_schema(&config, &message, &mut last_learned).await;
                    batch.push(decoded(&message))
                }
                Ok(Err(error)) => {
                    debug!(%error, "Receive failed while filling a batch.");
                    break;
                }
                Err(_) => break,
            }
        }

        profile::add(Phase::Filling, filling.elapsed().saturating_sub(decoding));
        profile::add(Phase::Decoding, decoding);
        let span = batch_span(&batch);
        async {
            let other = Instant::now();
            publish_dead_letters(&dead_letters, &batch).await?;
            let applying = Instant::now();
            apply_with_retry(&store, &config.group, &batch).await?;
            profile::add(Phase::Applying, applying.elapsed());
            let committing = Instant::now();
            commit_to_kafka(&consumer, &batch);
            profile::add(Phase::Other, (applying - other) + committing.elapsed());
            profile::batch(batch.len());
            Ok::<(), MergerError>(())
        }
        .instrument(span)
        .await?;
    }
    info!("Merger stopped.");
    Ok(())
}

/// A span for one batch, naming the offset range it holds of each
/// partition, with one event per range so that a trace shows which
/// source, topic, partition and offsets a slow or failed batch carried.
fn batch_span(batch: &[Delivered]) -> tracing::Span {
    let mut ranges: BTreeMap<(&str, i32), (i64, i64)> = BTreeMap::new();
    for message in batch {
        let range = ranges
            .entry((message.topic.as_str(), message.partition))
            .or_insert((message.offset, message.offset));
        range.0 = range.0.min(message.offset);
        range.1 = range.1.max(message.offset);
    }
    let text: Vec<String> = ranges
        .iter()
        .map(|((topic, partition), (first, last))| format!("{topic}/{partition}:{first}-{last}"))
        .collect();
    let span = debug_span!("batch", messages = batch.len(), ranges = %text.join(" "));
    for ((topic, partition), (first, last)) in &ranges {
        let source = EventKind::of_topic(topic)
            .and_then(|kind| kind.source())
            .unwrap_or("hub");
        debug!(
            parent: &span,
            source,
            topic,
            partition,
            first_offset = first,
            last_offset = last,
            "Batch range."
        );
    }
    span
}

/// Every partition of `topics`, each from the store's next offset for the
/// group (from the beginning where the store has none).
async fn own_assignment(
    config: &MergerConfig,
    consumer: &StreamConsumer,
    store: &Store,
    topics: &[String],
) -> Result<rdkafka::TopicPartitionList, MergerError> {
    let stored = store.next_offsets(&config.group).await?;
    let mut assignment = rdkafka::TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|source| consumer_error(config, "read topic metadata", source))?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let offset = stored
                .get(&(topic.clone(), partition.id()))
                .map_or(rdkafka::Offset::Beginning, |next| {
                    rdkafka::Offset::Offset(*next)
                });
            assignment
                .add_partition_offset(topic, partition.id(), offset)
                .map_err(|source| consumer_error(config, "assign partitions", source))?;
        }
    }
    Ok(assignment)
}

fn consumer_error(
    config: &MergerConfig,
    action: &'static str,
    source: rdkafka::error::KafkaError,
) -> MergerError {
    MergerError::Consumer {
        group: config.group.clone(),
        action,
        source,
    }
}

/// Applies a batch, retrying while the store is unreachable: data must not
/// be skipped, so the merger waits rather than moves on.
async fn apply_with_retry(
    store: &Store,
    group: &str,
    batch: &[Delivered],
) -> Result<(), MergerError> {
    let mut delay = Duration::from_millis(200);
    loop {
        match store.apply_batch(group, batch).await {
            Ok(_) => return Ok(()),
            // Another writer (the rules, the audit log) holds the store a
            // moment: normal on SQLite, so quietly try again soon.
            Err(error) if error.is_contention() => {
                debug!(%error, "Store busy; retrying the batch.");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) if error.is_retryable() => {
                warn!(%error, "Store unavailable; retrying the batch.");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(error) => {
                error!(%error, "Batch could not be stored; merger stops so nothing is skipped.");
                return Err(error);
            }
        }
    }
}

fn commit_to_kafka(consumer: &StreamConsumer, batch: &[Delivered]) {
    let mut list = TopicPartitionList::new();
    for message in batch {
        // Later messages of a partition overwrite earlier ones.
        let _ = list.add_partition_offset(
            &message.topic,
            message.partition,
            Offset::Offset(message.offset + 1),
        );
    }
    if let Err(error) = consumer.commit(&list, CommitMode::Async) {
        debug!(%error, "Kafka offset commit failed; the store's offsets remain authoritative.");
    }
}

/// Publishes the dead letters the merger raised while decoding a batch,
/// before the batch is stored, so none is lost to a crash in between; the
/// store keeps one copy of each by its stable id.
async fn publish_dead_letters(
    sink: &DeadLetterSink,
    batch: &[Delivered],
) -> Result<(), MergerError> {
    let raised = batch.iter().filter_map(|message| match &message.item {
        DeliveredItem::DeadLetter(letter)
            if letter.source_system == MERGER_SOURCE && !is_dead_letter_topic(&message.topic) =>
        {
            Some(sink.publish(letter))
        }
        _ => None,
    });
    for result in futures_util::future::join_all(raised).await {
        result?;
    }
    Ok(())
}

pub(crate) const MERGER_SOURCE: &str = "merger";

/// The consumer group a merger joins unless told otherwise.
pub const DEFAULT_GROUP: &str = "blockhub-merger";

pub(crate) fn is_dead_letter_topic(topic: &str) -> bool {
    topic.ends_with(EventKind::DeadLetter.topic())
}

/// Decodes one message. An undecodable message becomes a dead letter with
/// its position and reason; it never stalls the partition.
/// Before decoding an event whose writer schema this release does not
/// know, reads the schemas topic again (at most every ten seconds): a
/// newer connector may have published it since. What still does not
/// decode becomes a dead letter naming the fingerprint.
async fn learn_unknown_schema(
    config: &MergerConfig,
    message: &BorrowedMessage<'_>,
    last_learned: &mut Option<Instant>,
) {
    let Some(payload) = message.payload() else {
        return;
    };
    let unknown = SchemaRegistry::get().is_ok_and(|registry| !registry.knows(payload));
    let due = last_learned.is_none_or(|at| at.elapsed() > Duration::from_secs(10));
    if unknown && due && !is_dead_letter_topic(message.topic()) {
        *last_learned = Some(Instant::now());
        match config.kafka.learn_schemas().await {
            Ok(learned) => info!(learned, "Schemas topic read for an unknown writer schema."),
            Err(error) => warn!(%error, "Schemas topic could not be read."),
        }
    }
}

fn decode(message: &BorrowedMessage<'_>) -> Delivered {
    let topic = message.topic().to_string();
    let partition = message.partition();
    let offset = message.offset();
    let Some(payload) = message.payload() else {
        trace!(%topic, partition, offset, "Tombstone skipped.");
        return Delivered {
            topic,
            partition,
            offset,
            item: DeliveredItem::Nothing,
        };
    };

    let registry = SchemaRegistry::get();
    let decoded = registry.and_then(|registry| match EventKind::of_topic(&topic) {
        Some(EventKind::DeadLetter) => registry
            .decode_dead_letter(payload)
            .map(DeliveredItem::DeadLetter),
        Some(EventKind::SyncRun) => registry
            .decode_sync_run(payload)
            .map(DeliveredItem::SyncRun),
        _ => registry.decode_event(payload).map(DeliveredItem::Event),
    });
    let item = match decoded {
        Ok(item) => {
            if let DeliveredItem::Event(event) = &item {
                trace!(%topic, partition, offset, event_id = %event.envelope.event_id, "Decoded.");
            }
            item
        }
        Err(error) => {
            let position = format!("{partition}/{offset}");
            let reason = error_chain(&error);
            warn!(%topic, partition, offset, %reason, "Undecodable message sent to dead letters.");
            // A broken message on the dead-letter topic itself is stored
            // only (see publish_dead_letters), or it would loop.
            DeliveredItem::DeadLetter(DeadLetter {
                dead_letter_id: DeadLetter::stable_id(&[MERGER_SOURCE, &topic, &position]),
                source_system: MERGER_SOURCE.into(),
                location: topic.clone(),
                position,
                reason_code: "UNDECODABLE_EVENT".into(),
                reason,
                raw: printable_masked(payload),
                observed_at: Utc::now(),
            })
        }
    };
    Delivered {
        topic,
        partition,
        offset,
        item,
    }
}

/// The printable part of a payload, ID numbers masked, at most 512 chars.
fn printable_masked(payload: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(payload)
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{FFFD}' {
                '.'
            } else {
                c
            }
        })
        .take(512)
        .collect();
    mask_ids_in_text(&text)
}
