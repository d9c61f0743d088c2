//! Alerts kept with their state: open, acknowledged (by whom, with a
//! note) or resolved (its condition cleared; it reopens if the condition
//! returns). The rules compute which alerts hold; `sync_alerts` brings the
//! kept ones in line in one transaction and says what changed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sqlx::FromRow;

use super::Store;
use crate::error::{MergerError, query};

/// An alert that holds now, as the rules computed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// Stable id: the same kind, person and unit give the same id.
    pub alert_id: String,
    /// Such as CONTRACT_EXPIRED.
    pub kind: String,
    /// The person, where the kind concerns one.
    pub citizen_id: Option<String>,
    /// The unit, where the kind concerns one.
    pub unit_code: Option<String>,
    /// Which facts from which sources raised it, in words.
    pub evidence: String,
}

/// A kept alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, FromRow)]
pub struct StoredAlert {
    /// Stable id.
    pub alert_id: String,
    /// Kind.
    pub kind: String,
    /// The person (normalised ID), where the kind concerns one.
    pub citizen_id: Option<String>,
    /// The unit's credit code, where the kind concerns one.
    pub unit_code: Option<String>,
    /// Which facts raised it.
    pub evidence: String,
    /// open, acknowledged or resolved.
    pub state: String,
    /// First raised (ms since the epoch).
    pub first_seen: i64,
    /// Last found to hold.
    pub last_seen: i64,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// Their note.
    pub acknowledged_note: Option<String>,
    /// When.
    pub acknowledged_at: Option<i64>,
    /// When its condition cleared.
    pub resolved_at: Option<i64>,
}

/// What a sync changed, by alert id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSync {
    /// Raised for the first time.
    pub opened: Vec<String>,
    /// Resolved before, holding again.
    pub reopened: Vec<String>,
    /// Held before, cleared now.
    pub resolved: Vec<String>,
}

/// Which kept alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only alerts concerning this unit.
    pub unit_code: Option<String>,
    /// Only this state.
    pub state: Option<String>,
    /// Skip this many (pagination).
    pub offset: i64,
    /// At most this many.
    pub limit: i64,
}

/// Why an acknowledgement was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// Acknowledged.
    Done(Box<StoredAlert>),
    /// No alert has that id.
    NotFound,
    /// The alert's condition has cleared: nothing to acknowledge.
    Resolved,
}

const COLUMNS: &str = "alert_id, kind, citizen_id, unit_code, evidence, state, first_seen, \
    last_seen, acknowledged_by, acknowledged_note, acknowledged_at, resolved_at";

impl Store {
    /// Brings the kept alerts in line with `current` (every alert that
    /// holds now) at time `now` (ms): new ones open, resolved ones that
    /// hold again reopen, held ones keep their state (an acknowledgement
    /// stays), and kept ones no longer holding are resolved.
    pub async fn sync_alerts(
        &self,
        current: &[AlertRecord],
        now: i64,
    ) -> Result<AlertSync, MergerError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin an alert sync"))?;
        let kept: Vec<(String, String)> = sqlx::query_as("SELECT alert_id, state FROM alerts")
            .fetch_all(&mut *tx)
            .await
            .map_err(query("read alert states"))?;
        let kept: BTreeMap<String, String> = kept.into_iter().collect();
        let mut sync = AlertSync::default();
        let mut holding = BTreeSet::new();
        for alert in current {
            holding.insert(alert.alert_id.as_str());
            match kept.get(&alert.alert_id).map(String::as_str) {
                None => {
                    sqlx::query(
                        "INSERT INTO alerts (alert_id, kind, citizen_id, unit_code, evidence, \
                           state, first_seen, last_seen) \
                         VALUES ($1, $2, $3, $4, $5, 'open', $6, $6)",
                    )
                    .bind(&alert.alert_id)
                    .bind(&alert.kind)
                    .bind(&alert.citizen_id)
                    .bind(&alert.unit_code)
                    .bind(&alert.evidence)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(query("open an alert"))?;
                    sync.opened.push(alert.alert_id.clone());
                }
                Some(state) => {
                    let reopen = state == "resolved";
                    sqlx::query(
                        "UPDATE alerts SET evidence = $2, last_seen = $3, \
                           state = CASE WHEN state = 'resolved' THEN 'open' ELSE state END, \
                           resolved_at = NULL \
                         WHERE alert_id = $1",
                    )
                    .bind(&alert.alert_id)
                    .bind(&alert.evidence)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(query("refresh an alert"))?;
                    if reopen {
                        sync.reopened.push(alert.alert_id.clone());
                    }
                }
            }
        }
        for (id, state) in &kept {
            if state != "resolved" && !holding.contains(id.as_str()) {
                sqlx::query(
                    "UPDATE alerts SET state = 'resolved', resolved_at = $2 WHERE alert_id = $1",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(query("resolve an alert"))?;
                sync.resolved.push(id.clone());
            }
        }
        tx.commit().await.map_err(query("commit an alert sync"))?;
        Ok(sync)
    }

    /// Kept alerts matching `filter`, by kind, unit and person.
    pub async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<StoredAlert>, MergerError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM alerts \
             WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR unit_code = $2) \
               AND ($3 = '' OR state = $3) \
             ORDER BY kind, unit_code, citizen_id LIMIT $4 OFFSET $5"
        );
        sqlx::query_as(&sql)
            .bind(filter.kind.clone().unwrap_or_default())
            .bind(filter.unit_code.clone().unwrap_or_default())
            .bind(filter.state.clone().unwrap_or_default())
            .bind(if filter.limit > 0 {
                filter.limit
            } else {
                i64::MAX
            })
            .bind(filter.offset.max(0))
            .fetch_all(&self.pool)
            .await
            .map_err(query("read alerts"))
    }

    /// Kept alerts whose state has changed since it was last published.
    pub async fn unpublished_alerts(&self, limit: i64) -> Result<Vec<StoredAlert>, MergerError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM alerts \
             WHERE published_state IS NULL OR published_state <> state \
             ORDER BY last_seen, alert_id LIMIT $1"
        );
        sqlx::query_as(&sql)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(query("read unpublished alerts"))
    }

    /// Records which state of each alert was published, in one
    /// transaction.
    pub async fn mark_alerts_published(&self, states: &[(&str, &str)]) -> Result<(), MergerError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin marking alerts"))?;
        for (alert_id, state) in states {
            sqlx::query("UPDATE alerts SET published_state = $2 WHERE alert_id = $1")
                .bind(*alert_id)
                .bind(*state)
                .execute(&mut *tx)
                .await
                .map_err(query("mark an alert published"))?;
        }
        tx.commit().await.map_err(query("commit marking alerts"))?;
        Ok(())
    }

    /// Puts alerts back as they were last published (a rebuild reads them
    /// from the alerts topic); an alert already kept is left alone.
    pub async fn restore_alerts(&self, alerts: &[StoredAlert]) -> Result<u64, MergerError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin restoring alerts"))?;
        let mut restored = 0;
        for alert in alerts {
            let done = sqlx::query(
                "INSERT INTO alerts (alert_id, kind, citizen_id, unit_code, evidence, state, \
                   first_seen, last_seen, acknowledged_by, acknowledged_note, acknowledged_at, \
                   resolved_at, published_state) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $6) \
                 ON CONFLICT (alert_id) DO NOTHING",
            )
            .bind(&alert.alert_id)
            .bind(&alert.kind)
            .bind(&alert.citizen_id)
            .bind(&alert.unit_code)
            .bind(&alert.evidence)
            .bind(&alert.state)
            .bind(alert.first_seen)
            .bind(alert.last_seen)
            .bind(&alert.acknowledged_by)
            .bind(&alert.acknowledged_note)
            .bind(alert.acknowledged_at)
            .bind(alert.resolved_at)
            .execute(&mut *tx)
            .await
            .map_err(query("restore an alert"))?;
            restored += done.rows_affected();
        }
        tx.commit().await.map_err(query("commit restored alerts"))?;
        Ok(restored)
    }

    /// Acknowledges an open (or already acknowledged) alert.
    pub async fn acknowledge_alert(
        &self,
        alert_id: &str,
        by: &str,
        note: &str,
        now: i64,
    ) -> Result<AckOutcome, MergerError> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM alerts WHERE alert_id = $1")
                .bind(alert_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(query("read an alert"))?;
        match state.as_deref() {
            None => return Ok(AckOutcome::NotFound),
            Some("resolved") => return Ok(AckOutcome::Resolved),
            Some(_) => {}
        }
        sqlx::query(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_by = $2, \
               acknowledged_note = $3, acknowledged_at = $4 \
             WHERE alert_id = $1",
        )
        .bind(alert_id)
        .bind(by)
        .bind(note)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(query("acknowledge an alert"))?;
        let sql = format!("SELECT {COLUMNS} FROM alerts WHERE alert_id = $1");
        let alert = sqlx::query_as(&sql)
            .bind(alert_id)
            .fetch_one(&self.pool)
            .await
            .map_err(query("read an alert"))?;
        Ok(AckOutcome::Done(Box::new(alert)))
    }
}
