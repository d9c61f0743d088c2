//! What sync health reads: connector runs and per-source activity, both
//! written by the merger in the batch's transaction, plus the dead letters
//! and open alerts already kept.

use std::collections::BTreeMap;

use blockhub_model::{DeadLetter, EventKind, SyncRun};
use chrono::{DateTime, Utc};
use sqlx::{Any, Transaction};

use super::Store;
use super::apply::{Delivered, DeliveredItem};
use crate::error::{MergerError, query};

const HOUR_MS: i64 = 3_600_000;

/// One source's events and rejections in one hour.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActivityHour {
    /// The source.
    pub source_system: String,
    /// Start of the hour, ms since the epoch.
    pub hour_start: i64,
    /// Events applied whose own time falls in the hour.
    pub events: i64,
    /// Rows or events rejected in the hour.
    pub rejected: i64,
    /// The newest event time in the hour, ms.
    pub last_event_at: Option<i64>,
}

/// Counts a batch adds to `source_activity`, keyed by source and hour.
#[derive(Debug, Default)]
pub(super) struct ActivityCounts(BTreeMap<(String, i64), (i64, i64, Option<i64>)>);

impl ActivityCounts {
    /// Counts an applied event.
    pub(super) fn event(&mut self, source: &str, at: DateTime<Utc>) {
        let millis = at.timestamp_millis();
        let entry = self.entry(source, millis);
        entry.0 += 1;
        entry.2 = Some(entry.2.map_or(millis, |last| last.max(millis)));
    }

    /// Counts a dead letter against the source it came from; the merger's
    /// own (undecodable events) count against the source of their topic.
    pub(super) fn rejection(&mut self, letter: &DeadLetter) {
        let source = EventKind::of_topic(&letter.location)
            .and_then(|kind| kind.source())
            .filter(|_| letter.source_system == crate::consume::MERGER_SOURCE)
            .unwrap_or(&letter.source_system)
            .to_string();
        let entry = self.entry(&source, letter.observed_at.timestamp_millis());
        entry.1 += 1;
    }

    fn entry(&mut self, source: &str, millis: i64) -> &mut (i64, i64, Option<i64>) {
        let hour = millis.div_euclid(HOUR_MS) * HOUR_MS;
        self.0
            .entry((source.to_string(), hour))
            .or_insert((0, 0, None))
    }

    /// Adds the counts to the store.
    pub(super) async fn write(&self, tx: &mut Transaction<'_, Any>) -> Result<(), MergerError> {
        for ((source, hour), (events, rejected, last)) in &self.0 {
            sqlx::query(
                "INSERT INTO source_activity \
                   (source_system, hour_start, events, rejected, last_event_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (source_system, hour_start) DO UPDATE SET \
                   events = source_activity.events + excluded.events, \
                   rejected = source_activity.rejected + excluded.rejected, \
                   last_event_at = CASE \
                     WHEN excluded.last_event_at IS NULL THEN source_activity.last_event_at \
                     WHEN source_activity.last_event_at IS NULL \
                       OR excluded.last_event_at > source_activity.last_event_at \
                       THEN excluded.last_event_at \
                     ELSE source_activity.last_event_at END",
            )
            .bind(source)
            .bind(hour)
            .bind(events)
            .bind(rejected)
            .bind(last)
            .execute(&mut **tx)
            .await
            .map_err(query("count source activity"))?;
        }
        Ok(())
    }
}

/// Stores the runs a batch carried; a run seen before is kept once.
pub(super) async fn insert_sync_runs(
    tx: &mut Transaction<'_, Any>,
    fresh: &[&Delivered],
) -> Result<u64, MergerError> {
    let mut stored = 0;
    for message in fresh {
        let DeliveredItem::SyncRun(run) = &message.item else {
            continue;
        };
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO sync_runs (run_id, source_system, location, started_at, finished_at, \
               rows_read, published, unchanged, rejected, error, worst_file, worst_file_rows, \
               worst_file_rejected) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (run_id) DO NOTHING",
        )
        .bind(&run.run_id)
        .bind(&run.source_system)
        .bind(&run.location)
        .bind(run.started_at.timestamp_millis())
        .bind(run.finished_at.timestamp_millis())
        .bind(count(run.rows_read))
        .bind(count(run.published))
        .bind(count(run.unchanged))
        .bind(count(run.rejected))
        .bind(run.error.as_deref())
        .bind(run.worst_file.as_ref().map(|w| w.location.clone()))
        .bind(run.worst_file.as_ref().map(|w| count(w.rows_read)))
        .bind(run.worst_file.as_ref().map(|w| count(w.rejected)))
        .execute(&mut **tx)
        .await
        .map_err(query("store a connector run"))?;
        stored += 1;
    }
    Ok(stored)
}

#[derive(sqlx::FromRow)]
struct RunRow {
    run_id: String,
    source_system: String,
    location: String,
    started_at: i64,
    finished_at: i64,
    rows_read: i64,
    published: i64,
    unchanged: i64,
    rejected: i64,
    error: Option<String>,
    worst_file: Option<String>,
    worst_file_rows: Option<i64>,
    worst_file_rejected: Option<i64>,
}

impl From<RunRow> for SyncRun {
    fn from(row: RunRow) -> Self {
        let time = |millis: i64| DateTime::from_timestamp_millis(millis).unwrap_or_default();
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        SyncRun {
            run_id: row.run_id,
            source_system: row.source_system,
            location: row.location,
            started_at: time(row.started_at),
            finished_at: time(row.finished_at),
            rows_read: count(row.rows_read),
            published: count(row.published),
            unchanged: count(row.unchanged),
            rejected: count(row.rejected),
            error: row.error,
            worst_file: row
                .worst_file
                .map(|location| blockhub_model::FileRejections {
                    location,
                    rows_read: count(row.worst_file_rows.unwrap_or(0)),
                    rejected: count(row.worst_file_rejected.unwrap_or(0)),
                }),
            // Kept for the connector's snapshot only, not in the store.
            exports: Vec::new(),
        }
    }
}

impl Store {
    /// A source's most recent runs, newest first.
    pub async fn sync_runs(&self, source: &str, limit: i64) -> Result<Vec<SyncRun>, MergerError> {
        let rows: Vec<RunRow> = sqlx::query_as(
            "SELECT run_id, source_system, location, started_at, finished_at, rows_read, \
               published, unchanged, rejected, error, worst_file, worst_file_rows, \
               worst_file_rejected FROM sync_runs \
             WHERE source_system = $1 ORDER BY finished_at DESC, run_id LIMIT $2",
        )
        .bind(source)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query("read connector runs"))?;
        Ok(rows.into_iter().map(SyncRun::from).collect())
    }

    /// Every source's activity from `since` on, oldest hour first.
    pub async fn source_activity(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<ActivityHour>, MergerError> {
        sqlx::query_as(
            "SELECT source_system, hour_start, events, rejected, last_event_at \
             FROM source_activity WHERE hour_start >= $1 ORDER BY source_system, hour_start",
        )
        .bind(since.timestamp_millis().div_euclid(HOUR_MS) * HOUR_MS)
        .fetch_all(&self.pool)
        .await
        .map_err(query("read source activity"))
    }

    /// Per source: events and rejections ever, and the newest event time.
    pub async fn source_totals(
        &self,
    ) -> Result<BTreeMap<String, (i64, i64, Option<DateTime<Utc>>)>, MergerError> {
        let rows: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT source_system, CAST(SUM(events) AS BIGINT), CAST(SUM(rejected) AS BIGINT), \
               MAX(last_event_at) FROM source_activity GROUP BY source_system",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read source totals"))?;
        Ok(rows
            .into_iter()
            .map(|(source, events, rejected, last)| {
                let last = last.and_then(DateTime::from_timestamp_millis);
                (source, (events, rejected, last))
            })
            .collect())
    }

    /// Open alerts (raised or acknowledged, not resolved) by kind.
    pub async fn open_alert_counts(&self) -> Result<BTreeMap<String, i64>, MergerError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, COUNT(*) FROM alerts WHERE state <> 'resolved' \
             GROUP BY kind ORDER BY kind",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("count open alerts"))?;
        Ok(rows.into_iter().collect())
    }
}
