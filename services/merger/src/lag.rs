//! How far the store is behind the topics, per partition.
//!
//! Lag is measured against the store's own offsets, the ones committed
//! with the facts, so "caught up" means the facts are in the store, not
//! merely that Kafka was told so.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;

use crate::consume::MergerConfig;
use crate::error::MergerError;
use crate::store::Store;

/// One partition's position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The partition's high watermark (next offset to be written).
    pub high_watermark: i64,
    /// The next offset the store will apply.
    pub next_offset: i64,
}

impl PartitionLag {
    /// Messages written but not yet in the store.
    pub fn lag(&self) -> i64 {
        (self.high_watermark - self.next_offset).max(0)
    }
}

/// The lag of every partition of every merger topic.
pub async fn lag(config: &MergerConfig, store: &Store) -> Result<Vec<PartitionLag>, MergerError> {
    let offsets = store.next_offsets(&config.group).await?;
    let kafka = config.kafka.clone();
    let topics = config.topics();
    let group = config.group.clone();
    let watermarks =
        tokio::task::spawn_blocking(move || -> Result<Vec<(String, i32, i64)>, MergerError> {
            let consumer: BaseConsumer = kafka
                .client_config()
                .set("group.id", format!("{group}-lag"))
                .create()
                .map_err(|source| MergerError::Consumer {
                    group: group.clone(),
                    action: "measure lag",
                    source,
                })?;
            let timeout = Duration::from_secs(10);
            let mut marks = Vec::new();
            for topic in topics {
                let metadata =
                    consumer
                        .fetch_metadata(Some(&topic), timeout)
                        .map_err(|source| MergerError::Consumer {
                            group: group.clone(),
                            action: "read metadata",
                            source,
                        })?;
                for meta in metadata.topics() {
                    // A topic the broker lists without partitions (still
                    // being created, or a leader missing) is not "caught
                    // up": the caller asks again.
                    if meta.partitions().is_empty() || meta.error().is_some() {
                        return Err(MergerError::Consumer {
                            group: group.clone(),
                            action: "read partitions",
                            source: rdkafka::error::KafkaError::MetadataFetch(
                                rdkafka::types::RDKafkaErrorCode::UnknownPartition,
                            ),
                        });
                    }
                    for partition in meta.partitions() {
                        let (_, high) = consumer
                            .fetch_watermarks(&topic, partition.id(), timeout)
                            .map_err(|source| MergerError::Consumer {
                                group: group.clone(),
                                action: "read watermarks",
                                source,
                            })?;
                        marks.push((topic.clone(), partition.id(), high));
                    }
                }
            }
            Ok(marks)
        })
        .await
        .map_err(|join| MergerError::Corrupt {
            column: "lag",
            reason: join.to_string(),
        })??;

    Ok(watermarks
        .into_iter()
        .map(|(topic, partition, high_watermark)| {
            let next_offset = offsets
                .get(&(topic.clone(), partition))
                .copied()
                .unwrap_or(0);
            PartitionLag {
                topic,
                partition,
                high_watermark,
                next_offset,
            }
        })
        .collect())
}
