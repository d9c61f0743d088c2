//! Kafka plumbing shared by the connectors and the merger: topic names,
//! client settings, topic creation and the dead-letter sink.
//!
//! Everything goes through rdkafka (librdkafka), so the same code talks to
//! the embedded tansu broker and to a production Kafka cluster.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tracing::info;

use crate::avro::SchemaRegistry;

/// The topic writer schemas are published to, before the prefix.
pub const SCHEMAS_TOPIC: &str = "schemas";

/// Reads every message of `topic` from its beginning up to the end each
/// partition has when the read starts, in order within each partition,
/// handing each payload to `on_payload` (tombstones are skipped). The
/// consumer joins no group: `group` only names it to the broker. A broker
/// that goes away part-way (a restart) is waited for, with one log line,
/// up to a minute. Returns whether every partition was read to its end;
/// false when the topic stopped answering part-way.
pub fn read_topic_to_end(
    config: ClientConfig,
    topic: &str,
    group: &str,
    mut on_payload: impl FnMut(&[u8]),
) -> Result<bool, KafkaError> {
    use rdkafka::Message;
    let timeout = Duration::from_secs(10);
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut assignment = rdkafka::TopicPartitionList::new();
    let mut ends = std::collections::BTreeMap::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(topic, partition.id(), timeout)?;
        if high > low {
            assignment.add_partition_offset(topic, partition.id(), rdkafka::Offset::Beginning)?;
            ends.insert(partition.id(), high);
        }
    }
    if ends.is_empty() {
        return Ok(true);
    }
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut waiting = false;
    while !ends.is_empty() {
        let message = match consumer.poll(timeout) {
            Some(Ok(message)) => message,
            Some(Err(error)) if std::time::Instant::now() < deadline => {
                if !std::mem::replace(&mut waiting, true) {
                    tracing::warn!(%topic, %error, "Broker unavailable while reading; waiting.");
                }
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            Some(Err(error)) => return Err(error),
            None => {
                tracing::warn!(%topic, "Topic stopped answering before its end was read.");
                return Ok(false);
            }
        };
        if std::mem::take(&mut waiting) {
            info!(%topic, "Broker reachable again; reading on.");
        }
        let end = ends.get(&message.partition()).copied().unwrap_or(0);
        if message.offset() >= end {
            // Published after the read started: not part of this read.
            ends.remove(&message.partition());
            continue;
        }
        if message.offset() + 1 >= end {
            ends.remove(&message.partition());
        }
        if let Some(payload) = message.payload() {
            on_payload(payload);
        }
    }
    Ok(true)
}

/// Every value on the schemas topic, up to its end now.
fn read_schema_texts(config: ClientConfig, topic: &str) -> Result<Vec<String>, KafkaError> {
    let mut texts = Vec::new();
    read_topic_to_end(config, topic, "blockhub-schema-reader", |payload| {
        if let Ok(text) = std::str::from_utf8(payload) {
            texts.push(text.to_string());
        }
    })?;
    Ok(texts)
}
use crate::event::{DeadLetter, EventKind};

/// Why talking to Kafka failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A client could not be created from the settings.
    #[error("kafka client for {brokers} could not be created")]
    Client {
        /// Bootstrap servers.
        brokers: String,
        /// rdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// Topic creation failed for a reason other than the topic existing.
    #[error("topic {topic} could not be created: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        reason: String,
    },
    /// The broker did not confirm a message.
    #[error("message to topic {topic} was not confirmed by the broker")]
    Delivery {
        /// The topic.
        topic: String,
        /// rdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// A message could not be encoded.
    #[error("message for topic {topic} could not be encoded")]
    Encode {
        /// The topic.
        topic: String,
        /// The encoder's error.
        #[source]
        source: crate::AvroError,
    },
    /// A topic could not be read to its end.
    #[error(
        "topic {topic} stopped answering before it was read to its end; \
         check the broker and run again"
    )]
    Incomplete {
        /// The topic.
        topic: String,
    },
}

impl BrokerError {
    /// Whether trying again later can help (a broker that is down, say).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Client { .. } | Self::Delivery { .. } | Self::CreateTopic { .. }
        )
    }
}

/// Where the broker is and how topics are named and laid out.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, host:port[,host:port].
    pub brokers: String,
    /// Prepended to every topic name, so several hubs can share a cluster.
    pub topic_prefix: String,
    /// Partitions for new topics.
    pub partitions: i32,
    /// Replication factor for new topics.
    pub replication: i32,
}

impl KafkaSettings {
    /// Settings for a broker with the default topic layout.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic_prefix: "blockhub.".into(),
            partitions: 3,
            replication: 1,
        }
    }

    /// The full topic name of a kind.
    pub fn topic(&self, kind: EventKind) -> String {
        format!("{}{}", self.topic_prefix, kind.topic())
    }

    /// A client configuration with the bootstrap servers set.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            // A broker that restarts must not flood the log: librdkafka
            // retries by itself and the caller reports the outcome once.
            .set("log.connection.close", "false")
            .set("reconnect.backoff.max.ms", "5000");
        config
    }

    /// The names of the topics the cluster has.
    async fn existing_topics(&self) -> Result<Vec<String>, BrokerError> {
        let config = self.client_config();
        let brokers = self.brokers.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create()?;
            let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
            Ok::<_, KafkaError>(
                metadata
                    .topics()
                    .iter()
                    .map(|t| t.name().to_string())
                    .collect(),
            )
        })
        .await;
        match answer {
            Ok(Ok(names)) => Ok(names),
            Ok(Err(source)) => Err(BrokerError::Client { brokers, source }),
            Err(_) => Err(BrokerError::Client {
                brokers,
                source: KafkaError::Canceled,
            }),
        }
    }

    /// Waits up to `timeout` for the cluster to answer a metadata request.
    pub async fn ping(&self, timeout: Duration) -> Result<(), BrokerError> {
        let config = self.client_config();
        let brokers = self.brokers.clone();
        let bootstrap = self.brokers.clone();
        let answer = tokio::task::spawn_blocking(move || {
            // librdkafka can answer a metadata request from its bootstrap
            // list alone, so first make sure some broker accepts a connection.
            let reachable = bootstrap.split(',').any(|address| {
                use std::net::ToSocketAddrs;
                address.trim().to_socket_addrs().is_ok_and(|mut addresses| {
                    addresses.any(|a| std::net::TcpStream::connect_timeout(&a, timeout).is_ok())
                })
            });
            if !reachable {
                return Err(KafkaError::MetadataFetch(
                    rdkafka::types::RDKafkaErrorCode::AllBrokersDown,
                ));
            }
            let consumer: BaseConsumer = config.create()?;
            let metadata = consumer.fetch_metadata(None, timeout)?;
            if metadata.brokers().is_empty() {
                return Err(KafkaError::MetadataFetch(
                    rdkafka::types::RDKafkaErrorCode::AllBrokersDown,
                ));
            }
            Ok(())
        })
        .await;
        match answer {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(BrokerError::Client { brokers, source }),
            Err(_) => Err(BrokerError::Client {
                brokers,
                source: KafkaError::Canceled,
            }),
        }
    }

    /// An idempotent producer that waits for every in-sync replica.
    pub fn producer(&self) -> Result<FutureProducer, BrokerError> {
        self.client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "20")
            .set("message.timeout.ms", "120000")
            .set("compression.type", "lz4")
            .create()
            .map_err(|source| BrokerError::Client {
                brokers: self.brokers.clone(),
                source,
            })
    }

    /// Creates every Blockhub topic that does not exist yet.
    pub async fn ensure_topics(&self) -> Result<(), BrokerError> {
        let names: Vec<String> = EventKind::ALL
            .iter()
            .map(|kind| self.topic(*kind))
            .collect();
        self.ensure_named_topics(&names).await
    }

    /// Publishes the writer schemas of this release to the schemas topic,
    /// keyed by fingerprint, so that readers of an older release can read
    /// events written with them.
    pub async fn publish_schemas(&self, producer: &FutureProducer) -> Result<(), BrokerError> {
        let topic = self.named_topic(SCHEMAS_TOPIC);
        self.ensure_named_topics(std::slice::from_ref(&topic))
            .await?;
        let registry = SchemaRegistry::get().map_err(|source| BrokerError::Encode {
            topic: topic.clone(),
            source,
        })?;
        for (fingerprint, text) in registry.writer_schemas() {
            let record = FutureRecord::to(&topic).key(&fingerprint).payload(&text);
            producer
                .send(record, Duration::from_secs(30))
                .await
                .map_err(|(source, _)| BrokerError::Delivery {
                    topic: topic.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Reads the schemas topic and learns every writer schema this release
    /// does not know; returns how many were new.
    pub async fn learn_schemas(&self) -> Result<usize, BrokerError> {
        let topic = self.named_topic(SCHEMAS_TOPIC);
        let config = self.client_config();
        let brokers = self.brokers.clone();
        let read = tokio::task::spawn_blocking(move || read_schema_texts(config, &topic)).await;
        let texts = match read {
            Ok(Ok(texts)) => texts,
            Ok(Err(source)) => return Err(BrokerError::Client { brokers, source }),
            Err(_) => {
                return Err(BrokerError::Client {
                    brokers,
                    source: KafkaError::Canceled,
                });
            }
        };
        let registry = SchemaRegistry::get().map_err(|source| BrokerError::Encode {
            topic: self.named_topic(SCHEMAS_TOPIC),
            source,
        })?;
        let mut learned = 0;
        for text in texts {
            match registry.learn(&text) {
                Ok(true) => learned += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "A schema on the schemas topic was not usable.")
                }
            }
        }
        Ok(learned)
    }

    /// The name of a topic outside the event kinds (such as `alerts`),
    /// with the deployment prefix.
    pub fn named_topic(&self, name: &str) -> String {
        format!("{}{name}", self.topic_prefix)
    }

    /// Creates the named topics that do not exist yet, kept for good.
    pub async fn ensure_named_topics(&self, wanted: &[String]) -> Result<(), BrokerError> {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config()
                .create()
                .map_err(|source| BrokerError::Client {
                    brokers: self.brokers.clone(),
                    source,
                })?;
        let existing = self.existing_topics().await?;
        let names: Vec<String> = wanted
            .iter()
            .filter(|name| !existing.contains(*name))
            .cloned()
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let topics: Vec<NewTopic> = names
            .iter()
            .map(|name| {
                // Facts are kept for good: the store must be rebuildable
                // from the topics, so nothing may expire by age.
                NewTopic::new(
                    name,
                    self.partitions,
                    TopicReplication::Fixed(self.replication),
                )
                .set("retention.ms", "-1")
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .create_topics(&topics, &options)
            .await
            .map_err(|source| BrokerError::Client {
                brokers: self.brokers.clone(),
                source,
            })?;
        for result in results {
            match result {
                Ok(topic) => info!(%topic, "Topic created."),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(BrokerError::CreateTopic {
                        topic,
                        reason: code.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Sends every (key, payload) to `topic` at once and waits for all of them:
/// one round trip for a page of messages rather than one per message. The
/// first failed delivery is the error; the caller records nothing as sent.
pub async fn send_all(
    producer: &FutureProducer,
    topic: &str,
    messages: &[(String, Vec<u8>)],
) -> Result<(), BrokerError> {
    let deliveries: Vec<_> = messages
        .iter()
        .map(|(key, payload)| {
            producer.send(
                FutureRecord::to(topic).key(key).payload(payload),
                Duration::from_secs(30),
            )
        })
        .collect();
    for delivery in futures_util::future::join_all(deliveries).await {
        delivery.map_err(|(source, _)| BrokerError::Delivery {
            topic: topic.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Publishes rejected rows and events to the dead-letter topic.
#[derive(Clone)]
pub struct DeadLetterSink {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetterSink {
    /// A sink on the deployment's dead-letter topic.
    pub fn new(settings: &KafkaSettings, producer: FutureProducer) -> Self {
        Self {
            producer,
            topic: settings.topic(EventKind::DeadLetter),
        }
    }

    /// Publishes one dead letter and waits until the broker confirms it.
    pub async fn publish(&self, letter: &DeadLetter) -> Result<(), BrokerError> {
        let payload = SchemaRegistry::get()
            .and_then(|registry| registry.encode_dead_letter(letter))
            .map_err(|source| BrokerError::Encode {
                topic: self.topic.clone(),
                source,
            })?;
        let message = [(letter.source_system.clone(), payload)];
        send_all(&self.producer, &self.topic, &message).await
    }
}
