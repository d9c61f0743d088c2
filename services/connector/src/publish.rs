//! Publishing events to Kafka with bounded in-flight deliveries.
//!
//! The producer is idempotent with acks=all, so a retry inside librdkafka
//! never writes a message twice. A message counts as published only once
//! the broker confirms it; at most `MAX_IN_FLIGHT` wait for confirmation at
//! a time, which keeps memory flat however large the export.

use std::collections::VecDeque;
use std::time::Duration;

use blockhub_model::{
    BrokerError, DeadLetter, DeadLetterSink, Event, EventKind, KafkaSettings, PersonKeyer,
    SchemaRegistry, SyncRun,
};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use tracing::trace;

use crate::error::ConnectorError;

const MAX_IN_FLIGHT: usize = 10_000;

/// Sends events and dead letters for one ingest run.
pub struct Publisher {
    producer: FutureProducer,
    settings: KafkaSettings,
    keyer: PersonKeyer,
    dead_letters: DeadLetterSink,
    in_flight: VecDeque<(String, DeliveryFuture)>,
    confirmed: u64,
}

impl Publisher {
    /// Connects a producer and makes sure every topic exists.
    pub async fn connect(
        settings: &KafkaSettings,
        keyer: PersonKeyer,
    ) -> Result<Self, ConnectorError> {
        settings.ping(Duration::from_secs(5)).await.map_err(|_| {
            ConnectorError::BrokerUnreachable {
                brokers: settings.brokers.clone(),
            }
        })?;
        settings.ensure_topics().await?;
        let producer = settings.producer()?;
        // Readers of an older release learn this release's schemas there.
        settings.publish_schemas(&producer).await?;
        let dead_letters = DeadLetterSink::new(settings, producer.clone());
        Ok(Self {
            producer,
            settings: settings.clone(),
            keyer,
            dead_letters,
            in_flight: VecDeque::new(),
            confirmed: 0,
        })
    }

    /// Messages the broker has confirmed so far.
    pub fn confirmed(&self) -> u64 {
        self.confirmed
    }

    /// Queues one event; waits for older deliveries when too many are open.
    pub async fn send(&mut self, event: &Event) -> Result<(), ConnectorError> {
        let topic = self.settings.topic(event.kind());
        // Facts about a person are keyed by the person's keyed hash, so one
        // person's facts stay in order on one partition; facts about a unit
        // only (quotas, purchased services) by its public credit code.
        let key = match (event.person(), event.fact.unit()) {
            (Some(person), _) => self.keyer.key(person),
            (None, Some(unit)) => unit.as_str().to_string(),
            (None, None) => String::new(),
        };

        let payload = SchemaRegistry::get()
            .and_then(|registry| registry.encode_event(event))
            .map_err(|source| BrokerError::Encode {
                topic: topic.clone(),
                source,
            })?;

        let mut record = FutureRecord::to(&topic).key(&key).payload(&payload);
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    trace!(%topic, event_id = %event.envelope.event_id, "Event queued.");
                    self.in_flight.push_back((topic.clone(), delivery));
                    break;
                }
                // The local queue is full: wait for confirmations, then retry.
                Err((_, returned)) => {
                    record = returned;
                    if !self.confirm_oldest().await? {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
        while self.in_flight.len() > MAX_IN_FLIGHT {
            self.confirm_oldest().await?;
        }
        Ok(())
    }

    /// Publishes a dead letter and waits for it to be confirmed.
    pub async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), ConnectorError> {
        self.dead_letters
            .publish(letter)
            .await
            .map_err(ConnectorError::from)
    }

    async fn confirm_oldest(&mut self) -> Result<bool, ConnectorError> {
        let Some((topic, delivery)) = self.in_flight.pop_front() else {
            return Ok(false);
        };
        match delivery.await {
            Ok(Ok(_)) => {
                self.confirmed += 1;
                Ok(true)
            }
            Ok(Err((source, _))) => Err(BrokerError::Delivery { topic, source }.into()),
            Err(_) => Err(ConnectorError::ProducerClosed { topic }),
        }
    }

    /// Publishes the record of a finished run and waits for the broker to
    /// confirm it. Keyed by source, so a source's runs stay in order.
    pub async fn sync_run(&self, run: &SyncRun) -> Result<(), ConnectorError> {
        let topic = self.settings.topic(EventKind::SyncRun);
        let payload = SchemaRegistry::get()
            .and_then(|registry| registry.encode_sync_run(run))
            .map_err(|source| BrokerError::Encode {
                topic: topic.clone(),
                source,
            })?;
        let message = [(run.source_system.clone(), payload)];
        blockhub_model::send_all(&self.producer, &topic, &message).await?;
        Ok(())
    }

    /// Waits until every queued message is confirmed.
    pub async fn finish(&mut self) -> Result<(), ConnectorError> {
        while self.confirm_oldest().await? {}
        let _ = self.producer.flush(Timeout::After(Duration::from_secs(30)));
        Ok(())
    }

    /// The topic events of a kind go to.
    pub fn topic(&self, kind: EventKind) -> String {
        self.settings.topic(kind)
    }
}
