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

fn text(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
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
            worst_file: run
                .worst_file
                .as_ref()
                .map(|w| w.0.clone())
                .unwrap_or_default(),
            worst_file_rows: run.worst_file.as_ref().map_or(0, |w| w.1),
            worst_file_rejected: run.worst_file.as_ref().map_or(0, |w| w.2),
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
