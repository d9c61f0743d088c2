//! SyncHealth: the data centre's view of the feeds over gRPC.
//!
//! Get answers from a report made at the call; Watch sends every source's
//! status, then each change the monitor sees, until the caller goes, the
//! policy withdraws the grant, or the gateway shuts down. Both are
//! admitted and recorded like any other call; neither names a person.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use blockhub_health::{HealthReport, Monitor, Status as FeedState};
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::access::Access;
use crate::proto;
use crate::proto::sync_health_server::SyncHealth;

/// Serves SyncHealth from the monitor.
#[derive(Clone)]
pub struct SyncHealthService {
    monitor: Arc<Monitor>,
    access: Access,
    closing: watch::Receiver<bool>,
}

impl SyncHealthService {
    /// A service over `monitor`; open watches end when `closing` turns
    /// true.
    pub fn new(monitor: Arc<Monitor>, access: Access, closing: watch::Receiver<bool>) -> Self {
        Self {
            monitor,
            access,
            closing,
        }
    }
}

impl SyncHealthService {
    /// A report made now, for a caller who asked about `wanted` (empty:
    /// every source). A failure or an unknown source ends the call, on
    /// record.
    async fn report_for(
        &self,
        admitted: &crate::access::Admitted,
        wanted: &str,
    ) -> Result<Arc<HealthReport>, Status> {
        let refused = match self.monitor.report().await {
            Ok(report) => match known(&report, wanted) {
                Ok(()) => return Ok(report),
                Err(status) => status,
            },
            Err(error) => {
                warn!(%error, "Health report failed.");
                Status::unavailable("the hub's store cannot be read now; retry")
            }
        };
        self.access.record(admitted, 0).await?;
        Err(refused)
    }
}

type ChangeStream = Pin<Box<dyn Stream<Item = Result<proto::HealthChange, Status>> + Send>>;

#[tonic::async_trait]
impl SyncHealth for SyncHealthService {
    async fn get(
        &self,
        request: Request<proto::HealthRequest>,
    ) -> Result<Response<proto::HealthReport>, Status> {
        let admitted = self
            .access
            .admit(&request, "SyncHealth.Get", "", "")
            .await?;
        let wanted = request.get_ref().source.trim().to_string();
        let report = self.report_for(&admitted, &wanted).await?;
        let reply = report_message(&report, &wanted);
        self.access.record(&admitted, reply.sources.len()).await?;
        Ok(Response::new(reply))
    }

    type WatchStream = ChangeStream;

    async fn watch(
        &self,
        request: Request<proto::HealthRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let admitted = self
            .access
            .admit(&request, "SyncHealth.Watch", "", "")
            .await?;
        let wanted = request.get_ref().source.trim().to_string();
        let mut reports = self.monitor.subscribe();
        let first = self.report_for(&admitted, &wanted).await?;
        self.access.record(&admitted, 0).await?;
        reports.mark_unchanged();

        let (sender, receiver) = mpsc::channel(16);
        let (access, mut closing) = (self.access.clone(), self.closing.clone());
        tokio::spawn(async move {
            let department = admitted.grant.department.clone();
            let mut sent: BTreeMap<String, FeedState> = BTreeMap::new();
            let mut report = first;
            loop {
                for source in report.sources.iter().filter(|s| wanted_source(s, &wanted)) {
                    let previous = sent.insert(source.source.clone(), source.status);
                    if previous == Some(source.status) {
                        continue;
                    }
                    let change = proto::HealthChange {
                        source: Some(source_message(source)),
                        previous: previous.map_or(0, state_number),
                        at: text(Some(report.generated_at)),
                    };
                    if sender.send(Ok(change)).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    changed = reports.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    _ = closing.changed() => {
                        let status = Status::unavailable("the gateway is shutting down; watch again");
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                    () = sender.closed() => return,
                }
                if let Err(denial) = access.regrant(&admitted) {
                    let status = access.revoke(&admitted, &denial).await;
                    info!(%department, "Health watch ended: the policy no longer allows it.");
                    let _ = sender.send(Err(status)).await;
                    return;
                }
                let latest = reports.borrow_and_update().clone();
                if let Some(latest) = latest {
                    report = latest;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

fn wanted_source(source: &blockhub_health::SourceHealth, wanted: &str) -> bool {
    wanted.is_empty() || source.source == wanted
}

/// Refuses a source filter that names no source.
fn known(report: &HealthReport, wanted: &str) -> Result<(), Status> {
    if wanted.is_empty() || report.source(wanted).is_some() {
        return Ok(());
    }
    let names: Vec<&str> = report.sources.iter().map(|s| s.source.as_str()).collect();
    Err(Status::not_found(format!(
        "no source {wanted:?}; sources are {}",
        names.join(", ")
    )))
}

/// A time as the gateway's other services write it; empty when unknown.
fn text(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| crate::lookup::time_text(at.timestamp_millis()))
        .unwrap_or_default()
}

fn state_number(state: FeedState) -> i32 {
    let state = match state {
        FeedState::Ok => proto::FeedStatus::Ok,
        FeedState::Late => proto::FeedStatus::Late,
        FeedState::Stalled => proto::FeedStatus::Stalled,
        FeedState::Failing => proto::FeedStatus::Failing,
    };
    state as i32
}

/// The report as the protocol carries it, for one source or all.
pub fn report_message(report: &HealthReport, wanted: &str) -> proto::HealthReport {
    proto::HealthReport {
        generated_at: text(Some(report.generated_at)),
        timezone: report.timezone.clone(),
        sources: report
            .sources
            .iter()
            .filter(|s| wanted_source(s, wanted))
            .map(source_message)
            .collect(),
        open_alerts: report.open_alerts.clone().into_iter().collect(),
        recent_dead_letters: report
            .recent_dead_letters
            .iter()
            .filter(|l| wanted.is_empty() || l.source == wanted)
            .map(|l| proto::DeadLetterLine {
                observed_at: text(Some(l.observed_at)),
                source: l.source.clone(),
                location: l.location.clone(),
                position: l.position.clone(),
                reason_code: l.reason_code.clone(),
            })
            .collect(),
        hours: report
            .hours
            .iter()
            .map(|h| proto::HourCount {
                hour_start: text(Some(h.hour_start)),
                events: h.events,
                rejected: h.rejected,
            })
            .collect(),
    }
}

fn source_message(source: &blockhub_health::SourceHealth) -> proto::SourceHealth {
    proto::SourceHealth {
        source: source.source.clone(),
        topic: source.topic.clone(),
        contact: source.contact.clone(),
        cadence: source.cadence.clone(),
        status: state_number(source.status),
        reasons: source.reasons.clone(),
        action: source.action.clone(),
        last_delivery_at: text(source.last_delivery_at),
        last_event_at: text(source.last_event_at),
        last_run: source.last_run.as_ref().map(|run| proto::SyncRun {
            location: run.location.clone(),
            started_at: text(Some(run.started_at)),
            finished_at: text(Some(run.finished_at)),
            rows_read: run.rows_read,
            published: run.published,
            unchanged: run.unchanged,
            rejected: run.rejected,
            error: run.error.clone().unwrap_or_default(),
            worst_file: run.worst_file.as_ref().map(|w| proto::FileRejections {
                location: w.location.clone(),
                rows_read: w.rows_read,
                rejected: w.rejected,
            }),
            run_id: run.run_id.clone(),
            source_system: run.source_system.clone(),
        }),
        next_due: text(source.next_due),
        overdue_since: text(source.overdue_since),
        events_total: source.events_total,
        rejected_total: source.rejected_total,
        events_24h: source.events_24h,
        rejected_24h: source.rejected_24h,
        waiting: source.waiting,
        failing_since: text(source.failing_since),
        last_good_run: text(source.last_good_run),
        partitions: source
            .partitions
            .iter()
            .map(|p| proto::PartitionLag {
                topic: p.topic.clone(),
                partition: p.partition,
                high_watermark: p.high_watermark,
                next_offset: p.next_offset,
            })
            .collect(),
    }
}

/// The report a SyncHealth.Get reply carries, as the hub's own type: what
/// `blockhub health --json` prints, in the shape of the status page's
/// `/report.json`. A time that does not parse is left empty.
pub fn report_from_message(message: &proto::HealthReport) -> HealthReport {
    let time = |text: &str| {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|at| at.with_timezone(&Utc))
    };
    let epoch = DateTime::<Utc>::default();
    let state = |number: i32| match proto::FeedStatus::try_from(number) {
        Ok(proto::FeedStatus::Late) => FeedState::Late,
        Ok(proto::FeedStatus::Stalled) => FeedState::Stalled,
        Ok(proto::FeedStatus::Failing) => FeedState::Failing,
        _ => FeedState::Ok,
    };
    let sources = message
        .sources
        .iter()
        .map(|s| blockhub_health::SourceHealth {
            source: s.source.clone(),
            topic: s.topic.clone(),
            contact: s.contact.clone(),
            cadence: s.cadence.clone(),
            status: state(s.status),
            reasons: s.reasons.clone(),
            action: s.action.clone(),
            last_delivery_at: time(&s.last_delivery_at),
            last_event_at: time(&s.last_event_at),
            last_run: s.last_run.as_ref().map(|run| blockhub_model::SyncRun {
                run_id: run.run_id.clone(),
                source_system: run.source_system.clone(),
                location: run.location.clone(),
                started_at: time(&run.started_at).unwrap_or(epoch),
                finished_at: time(&run.finished_at).unwrap_or(epoch),
                rows_read: run.rows_read,
                published: run.published,
                unchanged: run.unchanged,
                rejected: run.rejected,
                error: Some(run.error.clone()).filter(|e| !e.is_empty()),
                worst_file: run
                    .worst_file
                    .as_ref()
                    .map(|w| blockhub_model::FileRejections {
                        location: w.location.clone(),
                        rows_read: w.rows_read,
                        rejected: w.rejected,
                    }),
                exports: Vec::new(),
            }),
            next_due: time(&s.next_due),
            overdue_since: time(&s.overdue_since),
            events_total: s.events_total,
            rejected_total: s.rejected_total,
            events_24h: s.events_24h,
            rejected_24h: s.rejected_24h,
            waiting: s.waiting,
            partitions: s
                .partitions
                .iter()
                .map(|p| blockhub_merger::PartitionLag {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    high_watermark: p.high_watermark,
                    next_offset: p.next_offset,
                })
                .collect(),
            failing_since: time(&s.failing_since),
            last_good_run: time(&s.last_good_run),
        })
        .collect();
    HealthReport {
        generated_at: time(&message.generated_at).unwrap_or(epoch),
        timezone: message.timezone.clone(),
        sources,
        open_alerts: message.open_alerts.clone().into_iter().collect(),
        recent_dead_letters: message
            .recent_dead_letters
            .iter()
            .map(|l| blockhub_health::RecentDeadLetter {
                observed_at: time(&l.observed_at).unwrap_or(epoch),
                source: l.source.clone(),
                location: l.location.clone(),
                position: l.position.clone(),
                reason_code: l.reason_code.clone(),
            })
            .collect(),
        hours: message
            .hours
            .iter()
            .map(|h| blockhub_health::HourCount {
                hour_start: time(&h.hour_start).unwrap_or(epoch),
                events: h.events,
                rejected: h.rejected,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_survives_the_protocol_unchanged() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let run = blockhub_model::SyncRun {
            run_id: "r".into(),
            source_system: "finance.payroll".into(),
            location: "a.csv, b.csv".into(),
            started_at: at("2026-12-05T01:00:00Z"),
            finished_at: at("2026-12-05T01:00:03.250Z"),
            rows_read: 40,
            published: 20,
            unchanged: 8,
            rejected: 12,
            error: None,
            worst_file: Some(blockhub_model::FileRejections {
                location: "b.csv".into(),
                rows_read: 20,
                rejected: 12,
            }),
            exports: Vec::new(),
        };
        let report = HealthReport {
            generated_at: at("2026-12-05T02:00:00Z"),
            timezone: "+08:00".into(),
            sources: vec![blockhub_health::SourceHealth {
                source: "finance.payroll".into(),
                topic: "blockhub.finance.payroll".into(),
                contact: "the finance bureau".into(),
                cadence: "monthly by day 10, 23:59".into(),
                status: FeedState::Failing,
                reasons: vec!["its last run ...".into()],
                action: "See why ...".into(),
                last_delivery_at: Some(run.finished_at),
                last_event_at: None,
                last_run: Some(run),
                next_due: Some(at("2026-12-10T15:59:00Z")),
                overdue_since: None,
                events_total: 20,
                rejected_total: 12,
                events_24h: 20,
                rejected_24h: 12,
                waiting: 0,
                partitions: vec![blockhub_merger::PartitionLag {
                    topic: "blockhub.finance.payroll".into(),
                    partition: 1,
                    high_watermark: 20,
                    next_offset: 20,
                }],
                failing_since: Some(at("2026-12-05T01:00:03.250Z")),
                last_good_run: None,
            }],
            open_alerts: [("OVER_QUOTA".to_string(), 2)].into_iter().collect(),
            recent_dead_letters: vec![blockhub_health::RecentDeadLetter {
                observed_at: at("2026-12-05T01:00:01Z"),
                source: "finance.payroll".into(),
                location: "b.csv".into(),
                position: "7".into(),
                reason_code: "ID_CHECK_CHAR_MISMATCH".into(),
            }],
            hours: vec![blockhub_health::HourCount {
                hour_start: at("2026-12-05T01:00:00Z"),
                events: 20,
                rejected: 12,
            }],
        };
        assert_eq!(report_from_message(&report_message(&report, "")), report);
    }
}
