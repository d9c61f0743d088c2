//! The Changes service: staffing changes streamed from the topics
//! themselves, with cursors made of topic offsets.
//!
//! A subscription reads the roster topic and the alerts topic with its own
//! consumer (no group, nothing committed), assigned at the cursor's
//! offsets. A cursor names, for every partition of both topics, the offset
//! of the next message to read, so resuming with the cursor of the last
//! message received continues exactly after it: no gap and no duplicate,
//! whatever the messages' timestamps. Messages the caller may not or did
//! not ask to see move the cursor on without being sent; heartbeats carry
//! that progress. Each batch of changes is recorded in the audit log
//! before it is sent.

use std::pin::Pin;
use std::time::{Duration, Instant};

use blockhub_model::{
    EventKind, Fact, KafkaSettings, Operation, RosterEntry, SchemaRegistry, StaffStatus,
};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::access::{Access, Admitted};
use crate::lookup::{date_text, time_text};
use crate::policy::{Field, Grant};
use crate::proto::changes_server::Changes;
use crate::proto::{Change, RosterPost, SubscribeRequest};

/// The alerts topic's name under the deployment prefix (the rules loop
/// publishes there).
pub const ALERTS_TOPIC: &str = "alerts";
/// Changes sent, and recorded in the audit log, per batch at most.
const BATCH: usize = 100;
/// The kinds a subscriber may ask for.
pub const KINDS: [&str; 4] = ["HIRE", "DEPARTURE", "CHANGE", "ALERT"];

/// Positions in both topics: the next offset to read per partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Per partition of the roster topic.
    pub roster: Vec<i64>,
    /// Per partition of the alerts topic.
    pub alerts: Vec<i64>,
}

impl Cursor {
    /// The cursor as sent to clients: `c1:r=0,5;a=3`.
    pub fn encode(&self) -> String {
        let join = |offsets: &[i64]| {
            offsets
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        format!("c1:r={};a={}", join(&self.roster), join(&self.alerts))
    }

    /// Reads a cursor this service gave; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let body = text.trim().strip_prefix("c1:")?;
        let (roster, alerts) = body.split_once(';')?;
        let offsets = |part: &str, tag: &str| -> Option<Vec<i64>> {
            let list = part.strip_prefix(tag)?;
            if list.is_empty() {
                return Some(Vec::new());
            }
            list.split(',')
                .map(|o| o.parse::<i64>().ok().filter(|o| *o >= 0))
                .collect()
        };
        Some(Self {
            roster: offsets(roster, "r=")?,
            alerts: offsets(alerts, "a=")?,
        })
    }
}

/// Serves Changes.Subscribe.
#[derive(Clone)]
pub struct ChangesService {
    access: Access,
    kafka: Option<KafkaSettings>,
    closing: watch::Receiver<bool>,
}

impl ChangesService {
    /// A service reading the topics of `kafka` (none: subscriptions are
    /// refused as unavailable). Open streams end when `closing` turns
    /// true, so that the server can shut down.
    pub fn new(
        access: Access,
        kafka: Option<KafkaSettings>,
        closing: watch::Receiver<bool>,
    ) -> Self {
        Self {
            access,
            kafka,
            closing,
        }
    }
}

/// Partition counts and watermarks of both topics.
struct Layout {
    roster: Vec<(i64, i64)>,
    alerts: Vec<(i64, i64)>,
}

fn layout(settings: &KafkaSettings, topics: &[String; 2]) -> Result<Layout, String> {
    let timeout = Duration::from_secs(10);
    let consumer: BaseConsumer = settings
        .client_config()
        .set("group.id", "blockhub-gateway-changes")
        .create()
        .map_err(|e| e.to_string())?;
    let mut marks = Vec::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| e.to_string())?;
        let mut partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions())
            .map(|p| p.id())
            .collect();
        partitions.sort_unstable();
        let mut topic_marks = Vec::new();
        for partition in partitions {
            topic_marks.push(
                consumer
                    .fetch_watermarks(topic, partition, timeout)
                    .map_err(|e| e.to_string())?,
            );
        }
        marks.push(topic_marks);
    }
    let alerts = marks.pop().unwrap_or_default();
    let roster = marks.pop().unwrap_or_default();
    Ok(Layout { roster, alerts })
}

/// Where a subscription starts, or why it cannot.
fn start(request: &SubscribeRequest, layout: &Layout) -> Result<Cursor, Status> {
    if request.cursor.trim().is_empty() {
        let pick = |marks: &[(i64, i64)]| {
            marks
                .iter()
                .map(|(low, high)| if request.from_beginning { *low } else { *high })
                .collect()
        };
        return Ok(Cursor {
            roster: pick(&layout.roster),
            alerts: pick(&layout.alerts),
        });
    }
    let cursor = Cursor::parse(&request.cursor)
        .ok_or_else(|| Status::invalid_argument("the cursor is not one this service gave"))?;
    if cursor.roster.len() != layout.roster.len() || cursor.alerts.len() != layout.alerts.len() {
        return Err(Status::failed_precondition(
            "the topics were repartitioned since this cursor was given; re-read a snapshot \
             (Staff.List, Alerts.List) and subscribe without a cursor",
        ));
    }
    for (offsets, marks) in [
        (&cursor.roster, &layout.roster),
        (&cursor.alerts, &layout.alerts),
    ] {
        for (partition, (offset, (low, high))) in offsets.iter().zip(marks).enumerate() {
            if offset < low {
                return Err(Status::failed_precondition(format!(
                    "the cursor is older than the changes still retained (partition \
                     {partition} now starts at {low}, the cursor asks for {offset}); re-read a \
                     snapshot (Staff.List, Alerts.List) and subscribe without a cursor"
                )));
            }
            if offset > high {
                return Err(Status::invalid_argument(
                    "the cursor is ahead of the topics: it is not one this hub gave",
                ));
            }
        }
    }
    Ok(cursor)
}

type ChangeStream = Pin<Box<dyn Stream<Item = Result<Change, Status>> + Send>>;

#[tonic::async_trait]
impl Changes for ChangesService {
    type SubscribeStream = ChangeStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let purpose = request.get_ref().purpose.clone();
        let admitted = self
            .access
            .admit(&request, "Changes.Subscribe", &purpose, "")
            .await?;
        let request = request.into_inner();
        if let Some(kind) = request.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
            self.access.record(&admitted, 0).await?;
            return Err(Status::invalid_argument(format!(
                "unknown kind {kind}; kinds are {}",
                KINDS.join(", ")
            )));
        }
        let Some(settings) = self.kafka.clone() else {
            self.access.record(&admitted, 0).await?;
            return Err(Status::unavailable(
                "this gateway runs without a broker, so it has no changes to stream",
            ));
        };
        let topics = [
            settings.topic(EventKind::RosterEntry),
            settings.named_topic(ALERTS_TOPIC),
        ];
        let unavailable = |reason: String| {
            warn!(%reason, "Subscription could not read the topics.");
            Status::unavailable("the change topics cannot be read now; retry later")
        };
        settings
            .ensure_named_topics(&topics)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let layout = {
            let (settings, topics) = (settings.clone(), topics.clone());
            tokio::task::spawn_blocking(move || layout(&settings, &topics))
                .await
                .map_err(|e| unavailable(e.to_string()))?
                .map_err(unavailable)?
        };
        let cursor = match start(&request, &layout) {
            Ok(cursor) => cursor,
            Err(status) => {
                self.access.record(&admitted, 0).await?;
                return Err(status);
            }
        };
        let consumer: StreamConsumer = settings
            .client_config()
            .set(
                "group.id",
                format!("blockhub-gateway-{}", uuid::Uuid::new_v4()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(|e| unavailable(e.to_string()))?;
        let mut assignment = rdkafka::TopicPartitionList::new();
        for (topic, offsets) in topics.iter().zip([&cursor.roster, &cursor.alerts]) {
            for (partition, offset) in offsets.iter().enumerate() {
                assignment
                    .add_partition_offset(topic, partition as i32, rdkafka::Offset::Offset(*offset))
                    .map_err(|e| unavailable(e.to_string()))?;
            }
        }
        consumer
            .assign(&assignment)
            .map_err(|e| unavailable(e.to_string()))?;
        self.access.record(&admitted, 0).await?;
        info!(
            department = %admitted.grant.department,
            from = %cursor.encode(),
            "Subscription opened."
        );
        let heartbeat = Duration::from_secs(match request.heartbeat_seconds {
            0 => 10,
            n => u64::from(n.clamp(1, 300)),
        });
        let (sender, receiver) = mpsc::channel(BATCH);
        let probe: BaseConsumer = settings
            .client_config()
            .set("group.id", "blockhub-gateway-changes")
            .create()
            .map_err(|e| unavailable(e.to_string()))?;
        let follower = Follower {
            access: self.access.clone(),
            admitted,
            request,
            topics,
            cursor,
            heartbeat,
            probe: std::sync::Arc::new(probe),
            closing: self.closing.clone(),
        };
        tokio::spawn(follower.run(consumer, sender));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

/// One subscription's reading loop.
struct Follower {
    access: Access,
    admitted: Admitted,
    request: SubscribeRequest,
    topics: [String; 2],
    cursor: Cursor,
    heartbeat: Duration,
    probe: std::sync::Arc<BaseConsumer>,
    closing: watch::Receiver<bool>,
}

impl Follower {
    /// Whether the cursor has reached the end of every partition now.
    async fn caught_up(&self) -> bool {
        let (probe, topics, cursor) =
            (self.probe.clone(), self.topics.clone(), self.cursor.clone());
        let check = tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(5);
            for (topic, offsets) in topics.iter().zip([&cursor.roster, &cursor.alerts]) {
                for (partition, offset) in offsets.iter().enumerate() {
                    let (_, high) = probe.fetch_watermarks(topic, partition as i32, timeout)?;
                    if *offset < high {
                        return Ok(false);
                    }
                }
            }
            Ok::<_, rdkafka::error::KafkaError>(true)
        });
        matches!(check.await, Ok(Ok(true)))
    }

    async fn run(mut self, consumer: StreamConsumer, sender: mpsc::Sender<Result<Change, Status>>) {
        let department = self.admitted.grant.department.clone();
        let mut last_sent = Instant::now();
        loop {
            // The policy may have changed since the last batch: narrowed,
            // the stream goes on masked anew; revoked, it ends.
            match self.access.regrant(&self.admitted) {
                Ok(grant) if grant == self.admitted.grant => {}
                Ok(grant) => {
                    info!(%department, "Subscription's grant changed with the policy.");
                    self.admitted.grant = grant;
                }
                Err(denial) => {
                    let status = self.access.revoke(&self.admitted, &denial).await;
                    info!(%department, "Subscription ended: the policy no longer allows it.");
                    let _ = sender.send(Err(status)).await;
                    return;
                }
            }
            let wait = self.heartbeat.saturating_sub(last_sent.elapsed());
            let mut batch = Vec::new();
            let received = tokio::select! {
                _ = self.closing.changed() => {
                    let status = Status::unavailable(
                        "the gateway is shutting down; resubscribe with the last cursor",
                    );
                    let _ = sender.send(Err(status)).await;
                    return;
                }
                received = tokio::time::timeout(wait, consumer.recv()) => received,
            };
            match received {
                Err(_) => {}
                Ok(Err(error)) => {
                    warn!(%department, %error, "Subscription lost the broker.");
                    let status = Status::unavailable(
                        "the change topics cannot be read now; resubscribe with the last cursor",
                    );
                    let _ = sender.send(Err(status)).await;
                    return;
                }
                Ok(Ok(message)) => {
                    self.take(&message, &mut batch);
                    // Whatever else is already here joins the batch.
                    while batch.len() < BATCH {
                        let next = tokio::time::timeout(Duration::from_millis(5), consumer.recv());
                        match next.await {
                            Ok(Ok(message)) => self.take(&message, &mut batch),
                            _ => break,
                        }
                    }
                }
            }
            if batch.is_empty() {
                if last_sent.elapsed() >= self.heartbeat {
                    let beat = Change {
                        cursor: self.cursor.encode(),
                        kind: "HEARTBEAT".into(),
                        caught_up: self.caught_up().await,
                        ..Change::default()
                    };
                    if sender.send(Ok(beat)).await.is_err() {
                        break;
                    }
                    last_sent = Instant::now();
                }
                continue;
            }
            if let Err(status) = self.access.record(&self.admitted, batch.len()).await {
                let _ = sender.send(Err(status)).await;
                return;
            }
            for change in batch {
                if sender.send(Ok(change)).await.is_err() {
                    info!(%department, "Subscriber went away.");
                    return;
                }
            }
            last_sent = Instant::now();
        }
        info!(%department, "Subscriber went away.");
    }

    /// Moves the cursor past `message` and adds its change to `batch` when
    /// the caller may see it and asked for it.
    fn take(&mut self, message: &rdkafka::message::BorrowedMessage<'_>, batch: &mut Vec<Change>) {
        let partition = message.partition() as usize;
        let next = message.offset() + 1;
        let roster = message.topic() == self.topics[0];
        let offsets = if roster {
            &mut self.cursor.roster
        } else {
            &mut self.cursor.alerts
        };
        if let Some(slot) = offsets.get_mut(partition) {
            *slot = next;
        }
        let payload = message.payload().unwrap_or_default();
        let change = if roster {
            roster_change(payload, &self.admitted.grant)
        } else {
            alert_change(payload, &self.admitted.grant)
        };
        let Some(mut change) = change else {
            return;
        };
        let wanted_kind =
            self.request.kinds.is_empty() || self.request.kinds.contains(&change.kind);
        let wanted_unit = self.request.unit_codes.is_empty()
            || self.request.unit_codes.contains(&change.unit_code);
        if wanted_kind && wanted_unit {
            change.cursor = self.cursor.encode();
            batch.push(change);
        }
    }
}

fn roster_post(entry: &RosterEntry) -> RosterPost {
    RosterPost {
        unit_code: entry.unit_code.as_str().to_string(),
        unit_name: entry.unit_name.clone(),
        post_category: entry.post_category.label().to_string(),
        post_category_label: entry.post_category_label.clone(),
        employment_form: entry.employment_form.clone(),
        hire_date: date_text(entry.hire_date),
        contract_start: date_text(entry.contract_start),
        contract_end: date_text(entry.contract_end),
        contract_open_ended: entry.contract_open_ended,
        status: entry.status.label().to_string(),
        status_label: entry.status_label.clone(),
        left_on: date_text(entry.left_on),
        provenance: None,
    }
}

/// A roster event as a change the grant may see; `None` when it is out of
/// scope or not a roster event this gateway can read (the merger
/// dead-letters those; a subscription skips them).
fn roster_change(payload: &[u8], grant: &Grant) -> Option<Change> {
    let event = SchemaRegistry::get().ok()?.decode_event(payload).ok()?;
    let Fact::RosterEntry(entry) = &event.fact else {
        return None;
    };
    let unit = entry.unit_code.as_str();
    if !grant.sees_unit(unit) {
        return None;
    }
    let kind = match (event.envelope.operation, entry.status) {
        (Operation::Delete, _) | (_, StaffStatus::Left) => "DEPARTURE",
        (Operation::Insert, StaffStatus::Active) => "HIRE",
        _ => "CHANGE",
    };
    Some(Change {
        kind: kind.into(),
        unit_code: unit.to_string(),
        citizen_id: grant.show_id(entry.citizen_id.as_str()),
        name: grant.show_name(&entry.name),
        post: grant.fields.has(Field::Posts).then(|| roster_post(entry)),
        event_id: event.envelope.event_id.clone(),
        observed_at: event
            .envelope
            .observed_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ..Change::default()
    })
}

/// An alert state change (JSON from the rules loop) as the grant may see
/// it. A scoped caller sees only alerts about its units.
fn alert_change(payload: &[u8], grant: &Grant) -> Option<Change> {
    let alert: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let text = |key: &str| alert.get(key).and_then(|v| v.as_str()).unwrap_or("");
    let unit = text("unit");
    if grant.units.is_some() && (unit.is_empty() || !grant.sees_unit(unit)) {
        return None;
    }
    let observed = alert.get("last_seen").and_then(|v| v.as_i64()).unwrap_or(0);
    Some(Change {
        kind: "ALERT".into(),
        unit_code: unit.to_string(),
        citizen_id: grant.show_id(text("id")),
        alert_id: text("alert_id").to_string(),
        alert_kind: text("kind").to_string(),
        alert_state: text("state").to_string(),
        evidence: if grant.fields.has(Field::Evidence) {
            text("evidence").to_string()
        } else {
            String::new()
        },
        observed_at: time_text(observed),
        ..Change::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let cursor = Cursor {
            roster: vec![0, 17, 3],
            alerts: vec![],
        };
        assert_eq!(cursor.encode(), "c1:r=0,17,3;a=");
        assert_eq!(Cursor::parse(&cursor.encode()), Some(cursor));
        for bad in [
            "",
            "c1:r=1;",
            "c2:r=1;a=2",
            "c1:r=-1;a=",
            "c1:r=x;a=",
            "c1:a=1;r=1",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    fn layout() -> Layout {
        Layout {
            roster: vec![(0, 10), (5, 8)],
            alerts: vec![(0, 0)],
        }
    }

    #[test]
    fn a_subscription_starts_now_from_the_beginning_or_at_its_cursor() {
        let now = start(&SubscribeRequest::default(), &layout()).unwrap();
        assert_eq!((now.roster, now.alerts), (vec![10, 8], vec![0]));
        let request = SubscribeRequest {
            from_beginning: true,
            ..Default::default()
        };
        assert_eq!(start(&request, &layout()).unwrap().roster, vec![0, 5]);
        let request = SubscribeRequest {
            cursor: "c1:r=4,6;a=0".into(),
            ..Default::default()
        };
        assert_eq!(start(&request, &layout()).unwrap().roster, vec![4, 6]);
    }

    #[test]
    fn stale_foreign_and_future_cursors_are_refused_with_the_reason() {
        let with = |cursor: &str| SubscribeRequest {
            cursor: cursor.into(),
            ..Default::default()
        };
        let stale = start(&with("c1:r=4,2;a=0"), &layout()).unwrap_err();
        assert_eq!(stale.code(), tonic::Code::FailedPrecondition);
        assert!(
            stale
                .message()
                .contains("older than the changes still retained")
        );
        let other = start(&with("c1:r=4;a=0"), &layout()).unwrap_err();
        assert_eq!(other.code(), tonic::Code::FailedPrecondition);
        let ahead = start(&with("c1:r=11,5;a=0"), &layout()).unwrap_err();
        assert_eq!(ahead.code(), tonic::Code::InvalidArgument);
        let junk = start(&with("yesterday"), &layout()).unwrap_err();
        assert_eq!(junk.code(), tonic::Code::InvalidArgument);
    }
}
