//! The sync-health report: every source's verdict with the figures behind
//! it, gathered from the store (runs, activity, dead letters, alerts) and
//! the broker (lag). The gRPC service, the metrics and the status page all
//! show one report, so they cannot disagree.

use std::collections::BTreeMap;

use blockhub_merger::{PartitionLag, Store};
use blockhub_model::{EventKind, SyncRun, mask_ids_in_text};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::HealthConfig;
use crate::error::HealthError;
use crate::status::{SourceFacts, Status, evaluate, local, run_failed};

/// Hours the activity chart covers.
pub const CHART_HOURS: i64 = 48;
/// Runs looked back over to find since when a source has been failing.
const RUNS_LOOKED_AT: i64 = 50;
/// Dead letters the report lists.
pub const RECENT_DEAD_LETTERS: i64 = 10;

/// The whole picture at one time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// When it was made (by the hub's clock).
    pub generated_at: DateTime<Utc>,
    /// The zone local times are shown in, such as +08:00.
    pub timezone: String,
    /// Every configured source, then any other source seen, by name.
    pub sources: Vec<SourceHealth>,
    /// Open alerts by kind.
    pub open_alerts: BTreeMap<String, i64>,
    /// The newest dead letters, newest first (where and which code; no
    /// values).
    pub recent_dead_letters: Vec<RecentDeadLetter>,
    /// Events and rejections of all sources per hour, oldest first, over
    /// the last `CHART_HOURS` hours.
    pub hours: Vec<HourCount>,
}

/// One source's verdict and figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceHealth {
    /// The connector's source name.
    pub source: String,
    /// Its topic.
    pub topic: String,
    /// Who sends it.
    pub contact: String,
    /// When it is expected, in words.
    pub cadence: String,
    /// The verdict.
    pub status: Status,
    /// Every finding, worst first; one line saying all is well when OK.
    pub reasons: Vec<String>,
    /// What to do, when not OK.
    pub action: String,
    /// The newest delivery (run or event).
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// The newest event's own time.
    pub last_event_at: Option<DateTime<Utc>>,
    /// The newest run.
    pub last_run: Option<SyncRun>,
    /// The next deadline.
    pub next_due: Option<DateTime<Utc>>,
    /// The missed deadline, while late.
    pub overdue_since: Option<DateTime<Utc>>,
    /// Events applied, ever.
    pub events_total: i64,
    /// Rows and events rejected, ever.
    pub rejected_total: i64,
    /// Events applied in the last 24 hours.
    pub events_24h: i64,
    /// Rejections in the last 24 hours.
    pub rejected_24h: i64,
    /// Events in the topic not yet in the store.
    pub waiting: i64,
    /// Per partition of the topic.
    pub partitions: Vec<PartitionLag>,
    /// While failing: the end of the first failing run of the streak.
    pub failing_since: Option<DateTime<Utc>>,
    /// The end of the newest run that did not fail.
    pub last_good_run: Option<DateTime<Utc>>,
}

/// A dead letter as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentDeadLetter {
    /// When it was rejected.
    pub observed_at: DateTime<Utc>,
    /// The rejecting connector or the merger.
    pub source: String,
    /// File, table or topic.
    pub location: String,
    /// Row, key or partition/offset.
    pub position: String,
    /// Stable code, such as ID_CHECK_CHAR_MISMATCH. The reason in words
    /// may quote the rejected cell (a name in the wrong column, say), so
    /// it stays with `blockhub dead-letters`, for the hub's operator.
    pub reason_code: String,
}

/// One hour's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HourCount {
    /// Start of the hour.
    pub hour_start: DateTime<Utc>,
    /// Events applied.
    pub events: i64,
    /// Rejections.
    pub rejected: i64,
}

/// Lag as last measured, and since when each topic has waited unapplied.
#[derive(Debug, Clone, Default)]
pub struct LagView {
    /// Per partition.
    pub partitions: Vec<PartitionLag>,
    /// Per topic: since when its events wait without the store moving.
    pub waiting_since: BTreeMap<String, DateTime<Utc>>,
}

impl HealthReport {
    /// Gathers the report at `now`.
    pub async fn gather(
        store: &Store,
        config: &HealthConfig,
        topic_of: impl Fn(EventKind) -> String,
        lag: &LagView,
        now: DateTime<Utc>,
    ) -> Result<Self, HealthError> {
        let totals = store.source_totals().await?;
        let since = now - Duration::hours(CHART_HOURS - 1);
        let activity = store.source_activity(since).await?;
        let day_ago = (now - Duration::hours(24)).timestamp_millis();

        let mut names: Vec<String> = config.sources.keys().cloned().collect();
        for source in totals.keys() {
            if !names.contains(source) && source != "merger" {
                names.push(source.clone());
            }
        }
        let mut sources = Vec::with_capacity(names.len());
        for source in names {
            let topic = EventKind::of_source(&source)
                .map(&topic_of)
                .unwrap_or_default();
            let (events_total, rejected_total, last_event_at) =
                totals.get(&source).cloned().unwrap_or((0, 0, None));
            let recent = activity
                .iter()
                .filter(|hour| hour.source_system == source && hour.hour_start > day_ago);
            let (events_24h, rejected_24h) =
                recent.fold((0, 0), |(e, r), hour| (e + hour.events, r + hour.rejected));
            let partitions: Vec<PartitionLag> = lag
                .partitions
                .iter()
                .filter(|p| !topic.is_empty() && p.topic == topic)
                .cloned()
                .collect();
            let waiting = partitions.iter().map(PartitionLag::lag).sum();
            let source_config = config
                .sources
                .get(&source)
                .cloned()
                .unwrap_or_else(|| unconfigured(&source));
            let runs: Vec<SyncRun> = store
                .sync_runs(&source, RUNS_LOOKED_AT)
                .await?
                .into_iter()
                .map(shareable_run)
                .collect();
            let failing = runs
                .iter()
                .take_while(|run| run_failed(run, &source_config))
                .count();
            let facts = SourceFacts {
                last_run: runs.first().cloned(),
                last_event_at,
                waiting,
                waiting_since: lag.waiting_since.get(&topic).copied(),
                failing_since: failing
                    .checked_sub(1)
                    .and_then(|oldest| runs.get(oldest))
                    .map(|run| run.finished_at),
                failing_runs: failing,
                last_good_run: runs.get(failing).map(|run| run.finished_at),
            };
            let verdict = evaluate(&source, &facts, &source_config, config, now);
            sources.push(SourceHealth {
                topic,
                contact: source_config.contact.clone(),
                cadence: source_config.cadence.describe(),
                status: verdict.status,
                reasons: verdict.reasons,
                action: verdict.action,
                last_delivery_at: facts.last_delivery(),
                last_event_at,
                last_run: facts.last_run,
                next_due: verdict.next_due,
                overdue_since: verdict.overdue_since,
                events_total,
                rejected_total,
                events_24h,
                rejected_24h,
                waiting,
                partitions,
                failing_since: facts.failing_since,
                last_good_run: facts.last_good_run,
                source,
            });
        }

        // The worst first, so that a glance at the top of the page or the
        // table finds what needs attention.
        sources.sort_by(|a, b| {
            b.status
                .cmp(&a.status)
                .then_with(|| a.source.cmp(&b.source))
        });

        let mut hours: Vec<HourCount> = (0..CHART_HOURS)
            .map(|back| {
                let start = now - Duration::hours(CHART_HOURS - 1 - back);
                let millis = start.timestamp_millis().div_euclid(3_600_000) * 3_600_000;
                HourCount {
                    hour_start: DateTime::from_timestamp_millis(millis).unwrap_or(start),
                    events: 0,
                    rejected: 0,
                }
            })
            .collect();
        for hour in &activity {
            if let Some(slot) = hours
                .iter_mut()
                .find(|slot| slot.hour_start.timestamp_millis() == hour.hour_start)
            {
                slot.events += hour.events;
                slot.rejected += hour.rejected;
            }
        }

        let recent_dead_letters = store
            .dead_letters(None, RECENT_DEAD_LETTERS)
            .await?
            .into_iter()
            .map(|letter| RecentDeadLetter {
                observed_at: letter.observed_at,
                source: letter.source_system,
                location: mask_ids_in_text(&letter.location),
                position: mask_ids_in_text(&letter.position),
                reason_code: letter.reason_code,
            })
            .collect();
        Ok(Self {
            generated_at: now,
            timezone: config.timezone.to_string(),
            sources,
            open_alerts: store.open_alert_counts().await?,
            recent_dead_letters,
            hours,
        })
    }

    /// The source named, if reported.
    pub fn source(&self, name: &str) -> Option<&SourceHealth> {
        self.sources.iter().find(|s| s.source == name)
    }

    /// A local time as the report shows it.
    pub fn local(&self, at: DateTime<Utc>) -> String {
        let tz = self
            .timezone
            .parse()
            .unwrap_or_else(|_| HealthConfig::default().timezone);
        local(at, tz)
    }
}

/// A run as the report may show it to another department: a file may be
/// named after a person (`330681199501256740_田霞丹.csv`), so every ID
/// number in its names and error is masked before anything is said of it.
fn shareable_run(mut run: SyncRun) -> SyncRun {
    run.location = mask_ids_in_text(&run.location);
    run.error = run.error.map(|error| mask_ids_in_text(&error));
    if let Some(worst) = &mut run.worst_file {
        worst.location = mask_ids_in_text(&worst.location);
    }
    run
}

/// A source seen in the store but absent from the configuration: judged
/// on its runs and lag only, never late.
fn unconfigured(source: &str) -> crate::config::SourceConfig {
    crate::config::SourceConfig {
        cadence: crate::config::Cadence::OnDemand,
        stalled_after: Duration::days(3),
        failing_percent: crate::config::DEFAULT_FAILING_PERCENT,
        contact: crate::config::department_of(source).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_named_after_a_person_is_shown_with_the_id_masked() {
        let at = DateTime::from_timestamp_millis(1_765_000_000_000).unwrap();
        let name = "330681199501256740_田霞丹.csv";
        let run = SyncRun {
            run_id: "r".into(),
            source_system: "finance.payroll".into(),
            location: name.into(),
            started_at: at,
            finished_at: at,
            rows_read: 20,
            published: 0,
            unchanged: 0,
            rejected: 20,
            error: Some(format!("{name}: no header row")),
            worst_file: Some(blockhub_model::FileRejections {
                location: name.into(),
                rows_read: 20,
                rejected: 20,
            }),
            exports: Vec::new(),
        };
        let shown = format!("{:?}", shareable_run(run));
        assert!(!shown.contains("330681199501256740"), "{shown}");
        assert!(shown.contains("330681********6740_田霞丹.csv"), "{shown}");
    }
}
