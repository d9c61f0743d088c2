//! Reads of the block data for the gateway, the command line and tests.

use std::collections::BTreeMap;

use blockhub_model::{CitizenId, DeadLetter, Month};
use chrono::{DateTime, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::FromRow;

use super::Store;
use crate::error::{MergerError, query};

/// Where a stored fact came from: the event that last stated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct Provenance {
    /// The source system, such as staffing.roster.
    pub source_system: String,
    /// The file or table.
    pub location: String,
    /// The row number or row key.
    pub position: String,
    /// The event's id.
    pub event_id: String,
    /// When the connector read it (ms since the epoch).
    pub observed_at: i64,
    /// When its source exported it (ms since the epoch); none for a table
    /// read live.
    pub exported_at: Option<i64>,
}

/// An event kept as history because the store held a newer statement of
/// its fact when it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct SupersededFact {
    /// The event's id.
    pub event_id: String,
    /// The table of the fact it stated.
    pub fact_table: String,
    /// Insert, Update, Delete or Upsert.
    pub operation: String,
    /// What it stated, as JSON.
    pub content: String,
    /// The source system.
    pub source_system: String,
    /// The file or table.
    pub location: String,
    /// The row number or row key.
    pub position: String,
    /// When the connector read it (ms since the epoch).
    pub observed_at: i64,
    /// When its source exported it (ms since the epoch).
    pub exported_at: Option<i64>,
}

/// A person's post at a unit, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRosterEntry {
    /// The employing unit's credit code.
    pub unit_code: String,
    /// The unit's name on the roster.
    pub unit_name: String,
    /// The person's name on the roster.
    pub name: String,
    /// 普通辅助, 技术技能, 执法辅助 or 未知.
    pub post_category: String,
    /// The category label as exported.
    pub post_category_label: String,
    /// 用工形式.
    pub employment_form: String,
    /// 入职日期.
    pub hire_date: Option<NaiveDate>,
    /// 合同起始日期.
    pub contract_start: Option<NaiveDate>,
    /// 合同终止日期.
    pub contract_end: Option<NaiveDate>,
    /// 无固定期限.
    pub contract_open_ended: bool,
    /// 在职, 减少 or 未知.
    pub status: String,
    /// The status as exported.
    pub status_label: String,
    /// 减少日期.
    pub left_on: Option<NaiveDate>,
    /// The event that last stated it.
    pub provenance: Provenance,
}

/// One month's pay, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPayment {
    /// The month paid for.
    pub month: Month,
    /// The paying unit's credit code.
    pub unit_code: String,
    /// The person's name on the payroll.
    pub name: String,
    /// The paying unit's name on the payroll, else in the quota list.
    pub unit_name: String,
    /// 应发工资, when the payroll gave it.
    pub gross: Option<Decimal>,
    /// 实发工资, when the payroll gave it.
    pub net: Option<Decimal>,
    /// The event that last stated it.
    pub provenance: Provenance,
}

#[derive(FromRow)]
struct RosterRow {
    unit_code: String,
    unit_name: String,
    name: String,
    post_category: String,
    post_category_label: String,
    employment_form: String,
    hire_date: Option<String>,
    contract_start: Option<String>,
    contract_end: Option<String>,
    contract_open_ended: i64,
    status: String,
    status_label: String,
    left_on: Option<String>,
    #[sqlx(flatten)]
    provenance: Provenance,
}

#[derive(FromRow)]
struct DeadLetterRow {
    dead_letter_id: String,
    source_system: String,
    location: String,
    position: String,
    reason_code: String,
    reason: String,
    raw: String,
    observed_at: i64,
}

#[derive(FromRow)]
struct PaymentRow {
    pay_month: i64,
    unit_code: String,
    name: String,
    unit_name: String,
    gross_cents: Option<i64>,
    net_cents: Option<i64>,
    #[sqlx(flatten)]
    provenance: Provenance,
}

pub(super) fn stored_date(
    column: &'static str,
    text: Option<String>,
) -> Result<Option<NaiveDate>, MergerError> {
    text.map(|text| {
        NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| MergerError::Corrupt {
            column,
            reason: format!("{text} is not a date"),
        })
    })
    .transpose()
}

/// A payment in a snapshot: person, unit, month, gross and net cents, deleted.
pub type PaymentSnapshot = (String, String, i64, Option<i64>, Option<i64>, i64);

/// Everything a content comparison needs, in a fixed order, without the
/// bookkeeping that legitimately differs between runs (event ids, times,
/// offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSnapshot {
    /// Units: code, name, type, quota, approval date, deleted.
    pub units: Vec<(String, String, String, i64, Option<String>, i64)>,
    /// Roster rows as text columns.
    pub roster: Vec<Vec<Option<String>>>,
    /// Payments: person, unit, month, gross and net cents, deleted.
    pub payments: Vec<PaymentSnapshot>,
    /// Contributions: person, unit, month, insurance type, deleted.
    pub contributions: Vec<(String, String, i64, String, i64)>,
    /// Pension starts, enforcement cases, veteran placements and purchased
    /// services: table name and every described column as text.
    pub department_facts: Vec<(String, String)>,
    /// Dead letters: source, location, position, code.
    pub dead_letters: Vec<(String, String, String, String)>,
    /// Superseded history: table, operation, content, source, file or
    /// table, row.
    pub superseded: Vec<SupersededSnapshot>,
}

/// A superseded event in a snapshot: table, operation, content (JSON),
/// source, file or table, row.
pub type SupersededSnapshot = (String, String, String, String, String, String);

/// The other departments' tables and the columns a content comparison
/// reads: every column that describes the fact, plus whether it is deleted.
const DEPARTMENT_TABLES: [(&str, &[&str]); 4] = [
    (
        "pension_starts",
        &["citizen_id", "benefit_type", "name", "starts_on", "deleted"],
    ),
    (
        "enforcement_cases",
        &[
            "case_number",
            "citizen_id",
            "name",
            "amount_cents",
            "filed_on",
            "case_status",
            "deleted",
        ],
    ),
    (
        "veteran_placements",
        &[
            "citizen_id",
            "unit_code",
            "name",
            "placement_type",
            "unit_name",
            "placed_on",
            "deleted",
        ],
    ),
    (
        "purchased_services",
        &[
            "unit_code",
            "project_name",
            "unit_name",
            "provider",
            "staff_count",
            "contract_amount_cents",
            "period_start",
            "period_end",
            "deleted",
        ],
    ),
];

/// Every fact table, for counts.
pub const FACT_TABLES: [&str; 8] = [
    "units",
    "roster_entries",
    "payroll_payments",
    "contributions",
    "pension_starts",
    "enforcement_cases",
    "veteran_placements",
    "purchased_services",
];

impl Store {
    /// The person's roster entries and latest payment, as a look-up needs
    /// them. With `within`, PostgreSQL stops the queries itself when that
    /// time has passed (a statement timeout), so that a caller who gave up
    /// leaves no query running behind it; SQLite's point queries stop when
    /// the call is dropped.
    ///
    /// With `units`, the latest payment is the latest from those units (a
    /// caller scoped to some units gets its own units' latest pay).
    pub async fn person_facts(
        &self,
        id: &CitizenId,
        within: Option<std::time::Duration>,
        units: Option<&[String]>,
    ) -> Result<(Vec<StoredRosterEntry>, Option<StoredPayment>), MergerError> {
        match (self.backend, within) {
            (super::Backend::Postgres, Some(within)) => {
                let mut tx = self.pool.begin().await.map_err(query("begin a look-up"))?;
                let millis = within.as_millis().clamp(1, i32::MAX as u128);
                // SET takes no bind parameters; the value is a number.
                sqlx::query(&format!("SET LOCAL statement_timeout = {millis}"))
                    .execute(&mut *tx)
                    .await
                    .map_err(query("set the look-up's deadline"))?;
                let entries = roster_entries(&mut *tx, id).await?;
                let payment = latest_payment(&mut *tx, id, units).await?;
                tx.commit().await.map_err(query("end a look-up"))?;
                Ok((entries, payment))
            }
            _ => Ok((
                roster_entries(&self.pool, id).await?,
                latest_payment(&self.pool, id, units).await?,
            )),
        }
    }

    /// The person's roster entries, active first.
    pub async fn roster_entries_of(
        &self,
        id: &CitizenId,
    ) -> Result<Vec<StoredRosterEntry>, MergerError> {
        roster_entries(&self.pool, id).await
    }

    /// The person's latest payment: the newest month; within a month, the
    /// largest net pay (a person paid by two units shows the main one).
    pub async fn latest_payment_of(
        &self,
        id: &CitizenId,
    ) -> Result<Option<StoredPayment>, MergerError> {
        latest_payment(&self.pool, id, None).await
    }
    /// The most recent dead letters, newest first, optionally of one
    /// source system only.
    pub async fn dead_letters(
        &self,
        source: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeadLetter>, MergerError> {
        let rows: Vec<DeadLetterRow> = sqlx::query_as(
            "SELECT dead_letter_id, source_system, location, position, reason_code, reason, \
                   raw, observed_at FROM dead_letters \
                 WHERE ($1 = '' OR source_system = $1) \
                 ORDER BY observed_at DESC, location, position LIMIT $2",
        )
        .bind(source.unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query("read dead letters"))?;
        Ok(rows
            .into_iter()
            .map(|row| DeadLetter {
                dead_letter_id: row.dead_letter_id,
                source_system: row.source_system,
                location: row.location,
                position: row.position,
                reason_code: row.reason_code,
                reason: row.reason,
                raw: row.raw,
                observed_at: DateTime::from_timestamp_millis(row.observed_at).unwrap_or_default(),
            })
            .collect())
    }

    /// Counts of stored rows: units, roster entries, payments, dead letters.
    pub async fn counts(&self) -> Result<(i64, i64, i64, i64), MergerError> {
        let mut counts = [0i64; 4];
        let tables = [
            "units",
            "roster_entries",
            "payroll_payments",
            "dead_letters",
        ];
        for (count, table) in counts.iter_mut().zip(tables) {
            // Table names come from the fixed list above, never from input.
            *count = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&self.pool)
                .await
                .map_err(query("count stored rows"))?;
        }
        Ok((counts[0], counts[1], counts[2], counts[3]))
    }

    /// The store's content in a fixed order, for comparisons.
    pub async fn content_snapshot(&self) -> Result<ContentSnapshot, MergerError> {
        let units = sqlx::query_as(
            "SELECT unit_code, unit_name, unit_type, quota, approved_on, deleted FROM units \
             ORDER BY unit_code",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read units"))?;
        let roster_rows: Vec<(String, String, String, String, String, String, String)> =
            sqlx::query_as(
                "SELECT citizen_id, unit_code, name, post_category_label, \
                   COALESCE(hire_date, '') || '|' || COALESCE(contract_start, '') || '|' || \
                   COALESCE(contract_end, '') || '|' || COALESCE(left_on, ''), \
                   status_label || '|' || employment_form, \
                   CAST(contract_open_ended AS TEXT) || '|' || CAST(deleted AS TEXT) \
                 FROM roster_entries ORDER BY citizen_id, unit_code",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(query("read roster entries"))?;
        let roster = roster_rows
            .into_iter()
            .map(|(a, b, c, d, e, f, g)| {
                vec![
                    Some(a),
                    Some(b),
                    Some(c),
                    Some(d),
                    Some(e),
                    Some(f),
                    Some(g),
                ]
            })
            .collect();
        let payments = sqlx::query_as(
            "SELECT citizen_id, unit_code, pay_month, gross_cents, net_cents, deleted \
             FROM payroll_payments ORDER BY citizen_id, unit_code, pay_month",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read payments"))?;
        let contributions = sqlx::query_as(
            "SELECT citizen_id, unit_code, contribution_month, insurance_type, deleted \
             FROM contributions \
             ORDER BY citizen_id, unit_code, contribution_month, insurance_type",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read contributions"))?;
        let mut department_facts = Vec::new();
        for (table, columns) in DEPARTMENT_TABLES {
            let text: Vec<String> = columns
                .iter()
                .map(|c| format!("COALESCE(CAST({c} AS TEXT), '')"))
                .collect();
            let sql = format!(
                "SELECT {} FROM {table} ORDER BY 1",
                text.join(" || '|' || ")
            );
            let rows: Vec<String> = sqlx::query_scalar(&sql)
                .fetch_all(&self.pool)
                .await
                .map_err(query("read department facts"))?;
            department_facts.extend(rows.into_iter().map(|row| (table.to_string(), row)));
        }
        let dead_letters = sqlx::query_as(
            "SELECT source_system, location, position, reason_code FROM dead_letters \
             ORDER BY source_system, location, position, reason_code",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read dead letters"))?;
        let superseded = sqlx::query_as(
            "SELECT fact_table, operation, content, source_system, source_location, \
               source_position FROM superseded_facts ORDER BY 1, 2, 3, 4, 5, 6",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read superseded facts"))?;
        Ok(ContentSnapshot {
            units,
            roster,
            payments,
            contributions,
            department_facts,
            dead_letters,
            superseded,
        })
    }

    /// Whether the store has never applied anything: a fresh database, as
    /// a rebuild wants.
    pub async fn is_fresh(&self) -> Result<bool, MergerError> {
        let applied: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM applied_events) + \
               (SELECT COUNT(*) FROM consumer_offsets) + (SELECT COUNT(*) FROM dead_letters) + \
               (SELECT COUNT(*) FROM audit_log)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(query("check the store is fresh"))?;
        Ok(applied == 0)
    }

    /// Gives `to` the consumer offsets `from` reached, so that a merger of
    /// group `to` carries on where `from` stopped.
    pub async fn copy_offsets(&self, from: &str, to: &str) -> Result<(), MergerError> {
        sqlx::query(
            "INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset) \
             SELECT $2, topic, kafka_partition, next_offset FROM consumer_offsets \
             WHERE consumer_group = $1 \
             ON CONFLICT (consumer_group, topic, kafka_partition) \
             DO UPDATE SET next_offset = excluded.next_offset",
        )
        .bind(from)
        .bind(to)
        .execute(&self.pool)
        .await
        .map_err(query("copy consumer offsets"))?;
        Ok(())
    }

    /// Events kept as superseded history (older than the fact they would
    /// have replaced), newest read first.
    pub async fn superseded_facts(&self, limit: i64) -> Result<Vec<SupersededFact>, MergerError> {
        sqlx::query_as(
            "SELECT event_id, fact_table, operation, content, source_system, \
               source_location AS location, source_position AS position, observed_at, \
               exported_at \
             FROM superseded_facts ORDER BY observed_at DESC, event_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query("read superseded facts"))
    }

    /// Facts that hold (not deleted) in each fact table.
    pub async fn live_fact_counts(&self) -> Result<BTreeMap<String, i64>, MergerError> {
        let mut counts = BTreeMap::new();
        for table in FACT_TABLES {
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE deleted = 0");
            let count: i64 = sqlx::query_scalar(&sql)
                .fetch_one(&self.pool)
                .await
                .map_err(query("count facts"))?;
            counts.insert(table.to_string(), count);
        }
        Ok(counts)
    }
}

/// The person's roster entries, active first.
async fn roster_entries<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: &CitizenId,
) -> Result<Vec<StoredRosterEntry>, MergerError> {
    let rows: Vec<RosterRow> = sqlx::query_as(
        "SELECT r.unit_code, \
               COALESCE(NULLIF(r.unit_name, ''), u.unit_name, '') AS unit_name, \
               r.name, r.post_category, r.post_category_label, r.employment_form, \
               r.hire_date, r.contract_start, r.contract_end, r.contract_open_ended, \
               r.status, r.status_label, r.left_on, r.source_system, \
               r.source_location AS location, r.source_position AS position, r.event_id, \
               r.observed_at, r.exported_at \
             FROM roster_entries r LEFT JOIN units u ON u.unit_code = r.unit_code \
             WHERE r.citizen_id = $1 AND r.deleted = 0 \
             ORDER BY CASE WHEN r.status = '在职' THEN 0 ELSE 1 END, r.hire_date DESC, \
               r.unit_code",
    )
    .bind(id.as_str())
    .fetch_all(executor)
    .await
    .map_err(query("read roster entries"))?;
    rows.into_iter()
        .map(|row| {
            Ok(StoredRosterEntry {
                unit_code: row.unit_code,
                unit_name: row.unit_name,
                name: row.name,
                post_category: row.post_category,
                post_category_label: row.post_category_label,
                employment_form: row.employment_form,
                hire_date: stored_date("hire_date", row.hire_date)?,
                contract_start: stored_date("contract_start", row.contract_start)?,
                contract_end: stored_date("contract_end", row.contract_end)?,
                contract_open_ended: row.contract_open_ended != 0,
                status: row.status,
                status_label: row.status_label,
                left_on: stored_date("left_on", row.left_on)?,
                provenance: row.provenance,
            })
        })
        .collect()
}

/// The person's latest payment: the newest month; within a month, the
/// largest net pay (a person paid by two units shows the main one).
async fn latest_payment<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: &CitizenId,
    units: Option<&[String]>,
) -> Result<Option<StoredPayment>, MergerError> {
    // One placeholder per unit in scope ($2, $3, ...); an empty scope
    // matches nothing.
    let scope = match units {
        None => String::new(),
        Some([]) => " AND 1 = 0".into(),
        Some(units) => {
            let marks: Vec<String> = (0..units.len()).map(|i| format!("${}", i + 2)).collect();
            format!(" AND p.unit_code IN ({})", marks.join(", "))
        }
    };
    let sql = format!(
        "SELECT p.pay_month, p.unit_code, p.name, \
               COALESCE(NULLIF(p.unit_name, ''), u.unit_name, '') AS unit_name, \
               p.gross_cents, p.net_cents, p.source_system, \
               p.source_location AS location, p.source_position AS position, p.event_id, \
               p.observed_at, p.exported_at \
             FROM payroll_payments p LEFT JOIN units u ON u.unit_code = p.unit_code \
             WHERE p.citizen_id = $1 AND p.deleted = 0{scope} \
             ORDER BY p.pay_month DESC, COALESCE(p.net_cents, p.gross_cents, 0) DESC, \
               p.unit_code \
             LIMIT 1"
    );
    let mut statement = sqlx::query_as(&sql).bind(id.as_str());
    for unit in units.unwrap_or_default() {
        statement = statement.bind(unit.as_str());
    }
    let row: Option<PaymentRow> = statement
        .fetch_optional(executor)
        .await
        .map_err(query("read the latest payment"))?;
    row.map(|row| {
        let month = Month::from_number(row.pay_month as i32).ok_or(MergerError::Corrupt {
            column: "pay_month",
            reason: format!("{} is not a month", row.pay_month),
        })?;
        Ok(StoredPayment {
            month,
            unit_code: row.unit_code,
            name: row.name,
            unit_name: row.unit_name,
            gross: row.gross_cents.map(|cents| Decimal::new(cents, 2)),
            net: row.net_cents.map(|cents| Decimal::new(cents, 2)),
            provenance: row.provenance,
        })
    })
    .transpose()
}
