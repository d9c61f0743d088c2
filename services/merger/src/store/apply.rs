//! Applying a batch of consumed messages: facts, dead letters and the
//! consumer offsets, all in one transaction.
//!
//! The transaction is the whole of the merger's exactly-once promise. A
//! message at an offset below the stored next offset was applied before
//! (Kafka re-delivered it after a crash) and is skipped; an event id seen
//! before is skipped; a fact older than the stored one is not applied. A
//! crash before commit leaves nothing; a crash after commit leaves
//! everything, including the offsets that say so.
//!
//! Statements are multi-row: one per few hundred events and kind, not one
//! per event, because on PostgreSQL every statement is a round trip. Where
//! a batch holds several events for one fact, they are written in rounds
//! (the first event of each fact, then the second, ...), so the store's
//! guard judges each against what the one before left: the facts and the
//! superseded history are those of applying the events one by one, however
//! the events were cut into batches (a live load and a rebuild agree).

use std::collections::{BTreeMap, HashSet};

use blockhub_model::{
    Contribution, DeadLetter, EnforcementCase, Envelope, Event, Fact, Operation, PayrollPayment,
    PensionStart, PurchasedService, RosterEntry, SyncRun, UnitQuota, VeteranPlacement,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sqlx::{Any, Transaction};
use tracing::{debug, trace};

use super::sync::{ActivityCounts, insert_sync_runs};
use super::{Backend, Store};
use crate::error::{MergerError, query};

/// What a consumed message carries.
#[derive(Debug, Clone)]
pub enum DeliveredItem {
    /// A decoded event.
    Event(Event),
    /// A dead letter, from the dead-letter topic or raised while decoding.
    DeadLetter(DeadLetter),
    /// A connector's run record.
    SyncRun(SyncRun),
    /// Nothing to apply (a tombstone); only the offset advances.
    Nothing,
}

/// One consumed message with its position.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// What it carries.
    pub item: DeliveredItem,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events applied (including those that lost to a newer fact).
    pub applied: u64,
    /// Messages below the stored offset: applied in an earlier batch.
    pub redelivered: u64,
    /// Events whose id was applied before.
    pub duplicate_events: u64,
    /// Dead letters stored.
    pub dead_letters: u64,
    /// Events older than the fact the store (or the batch) held: kept as
    /// history, not applied.
    pub superseded: u64,
    /// Connector runs stored.
    pub sync_runs: u64,
}

fn date_text(date: Option<NaiveDate>) -> Option<String> {
    date.map(|d| d.format("%Y-%m-%d").to_string())
}

fn cents(amount: Option<Decimal>) -> Result<Option<i64>, MergerError> {
    amount
        .map(|amount| {
            (amount * Decimal::ONE_HUNDRED)
                .trunc()
                .to_i64()
                .ok_or(MergerError::Corrupt {
                    column: "amount",
                    reason: "amount out of range".into(),
                })
        })
        .transpose()
}

impl Store {
    /// Applies a batch for `group` in one transaction.
    pub async fn apply_batch(
        &self,
        group: &str,
        batch: &[Delivered],
    ) -> Result<BatchOutcome, MergerError> {
        let mut outcome = BatchOutcome::default();
        let mut tx = self.pool.begin().await.map_err(query("begin a batch"))?;

        let mut next_offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut fresh = Vec::with_capacity(batch.len());
        for message in batch {
            let key = (message.topic.clone(), message.partition);
            if !next_offsets.contains_key(&key) {
                let stored = stored_offset(&mut tx, group, &key.0, key.1).await?;
                next_offsets.insert(key.clone(), stored.unwrap_or(0));
            }
            let next = next_offsets.get_mut(&key).ok_or(MergerError::Corrupt {
                column: "next_offset",
                reason: "offset map lost a partition".into(),
            })?;
            if message.offset < *next {
                outcome.redelivered += 1;
                continue;
            }
            *next = message.offset + 1;
            fresh.push(message);
        }

        let events: Vec<(&Event, &Delivered)> = fresh
            .iter()
            .filter_map(|message| match &message.item {
                DeliveredItem::Event(event) => Some((event, *message)),
                _ => None,
            })
            .collect();
        let rows = rows_per_statement(self.backend);
        let new_ids = record_events(&mut tx, &events, rows).await?;
        let mut facts = FactBatch::default();
        let mut activity = ActivityCounts::default();
        let mut seen = HashSet::new();
        for (event, _) in &events {
            let id = event.envelope.event_id.as_str();
            if new_ids.contains(id) && seen.insert(id) {
                trace!(event_id = id, source = %event.envelope.source_system, "Applying event.");
                activity.event(&event.envelope.source_system, event.envelope.observed_at);
                facts.add(event);
                outcome.applied += 1;
            } else {
                outcome.duplicate_events += 1;
            }
        }
        let superseded = facts.write(&mut tx, rows).await?;
        if !superseded.is_empty() {
            debug!(
                superseded = superseded.len(),
                "Events older than the stored fact kept as history."
            );
        }
        record_superseded(&mut tx, &superseded).await?;
        outcome.superseded = superseded.len() as u64;

        let letters: Vec<&DeadLetter> = fresh
            .iter()
            .filter_map(|message| match &message.item {
                DeliveredItem::DeadLetter(letter) => Some(letter),
                _ => None,
            })
            .collect();
        insert_dead_letters(&mut tx, &letters, rows).await?;
        outcome.dead_letters = letters.len() as u64;

        // A rejection counts once: the merger's own dead letters are also
        // published to the dead-letter topic, and count when read there.
        for message in &fresh {
            if let DeliveredItem::DeadLetter(letter) = &message.item
                && crate::consume::is_dead_letter_topic(&message.topic)
            {
                activity.rejection(letter);
            }
        }
        activity.write(&mut tx).await?;
        outcome.sync_runs = insert_sync_runs(&mut tx, &fresh).await?;

        for ((topic, partition), next) in &next_offsets {
            store_offset(&mut tx, group, topic, *partition, *next).await?;
        }
        tx.commit().await.map_err(query("commit a batch"))?;
        debug!(
            applied = outcome.applied,
            redelivered = outcome.redelivered,
            duplicates = outcome.duplicate_events,
            dead_letters = outcome.dead_letters,
            "Batch committed."
        );
        Ok(outcome)
    }

    /// Writes payments with plain multi-row inserts, one transaction per
    /// call and no bookkeeping: the cheapest way into the store, measured
    /// by the benchmark as the baseline the merger is compared with.
    pub async fn insert_payments_direct(
        &self,
        payments: &[(PayrollPayment, &Envelope)],
    ) -> Result<(), MergerError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin a direct write"))?;
        let insert = PAYMENTS.insert();
        // The same statement size as the merger's own writes: the baseline
        // is the fastest plain insert on this backend, not a slower one.
        for chunk in payments.chunks(rows_per_statement(self.backend)) {
            let marks = placeholders(chunk.len(), PAYMENTS.columns());
            let sql = format!("{insert} VALUES {marks}");
            let mut statement = sqlx::query(&sql);
            for (payment, envelope) in chunk {
                statement = (PAYMENTS.bind)(statement, payment, envelope)?;
            }
            statement
                .execute(&mut *tx)
                .await
                .map_err(query("write payments directly"))?;
        }
        tx.commit().await.map_err(query("commit a direct write"))?;
        Ok(())
    }

    /// The next offset to apply for every partition `group` has seen.
    pub async fn next_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<(String, i32), i64>, MergerError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT topic, kafka_partition, next_offset FROM consumer_offsets \
             WHERE consumer_group = $1",
        )
        .bind(group)
        .fetch_all(&self.pool)
        .await
        .map_err(query("read consumer offsets"))?;
        Ok(rows
            .into_iter()
            .map(|(t, p, o)| ((t, p as i32), o))
            .collect())
    }
}

async fn stored_offset(
    tx: &mut Transaction<'_, Any>,
    group: &str,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, MergerError> {
    sqlx::query_scalar(
        "SELECT next_offset FROM consumer_offsets \
         WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = $3",
    )
    .bind(group)
    .bind(topic)
    .bind(i64::from(partition))
    .fetch_optional(&mut **tx)
    .await
    .map_err(query("read a consumer offset"))
}

async fn store_offset(
    tx: &mut Transaction<'_, Any>,
    group: &str,
    topic: &str,
    partition: i32,
    next: i64,
) -> Result<(), MergerError> {
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (consumer_group, topic, kafka_partition) \
         DO UPDATE SET next_offset = excluded.next_offset",
    )
    .bind(group)
    .bind(topic)
    .bind(i64::from(partition))
    .bind(next)
    .execute(&mut **tx)
    .await
    .map_err(query("store a consumer offset"))?;
    Ok(())
}

/// Rows per multi-row statement on PostgreSQL, where each statement is a
/// network round trip: well under its limit on bound parameters for the
/// widest table (21 columns).
const ROWS_PER_STATEMENT: usize = 400;

/// Rows per statement for a backend. SQLite runs in this process, so a
/// statement costs a function call, while preparing a fresh multi-row
/// statement for every batch size costs more than it saves (measured:
/// 0.57 of the direct write with 400-row statements, 1.12 with one row).
fn rows_per_statement(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => ROWS_PER_STATEMENT,
    }
}

/// "($1, $2), ($3, $4)" for `rows` rows of `columns` parameters.
fn placeholders(rows: usize, columns: usize) -> String {
    let rows: Vec<String> = (0..rows)
        .map(|row| {
            let marks: Vec<String> = (1..=columns)
                .map(|c| format!("${}", row * columns + c))
                .collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    rows.join(", ")
}

/// Records the event ids; returns those not applied before.
async fn record_events(
    tx: &mut Transaction<'_, Any>,
    events: &[(&Event, &Delivered)],
    rows: usize,
) -> Result<HashSet<String>, MergerError> {
    let mut new_ids = HashSet::with_capacity(events.len());
    for chunk in events.chunks(rows) {
        let sql = format!(
            "INSERT INTO applied_events (event_id, topic, kafka_partition, kafka_offset) \
             VALUES {} ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            placeholders(chunk.len(), 4)
        );
        let mut statement = sqlx::query_scalar::<_, String>(&sql);
        for (event, message) in chunk {
            statement = statement
                .bind(&event.envelope.event_id)
                .bind(&message.topic)
                .bind(i64::from(message.partition))
                .bind(message.offset);
        }
        let inserted = statement
            .fetch_all(&mut **tx)
            .await
            .map_err(query("record applied events"))?;
        new_ids.extend(inserted);
    }
    Ok(new_ids)
}

/// The facts of a batch in rounds: round k holds the k-th event of each
/// fact (by `Fact::identity`), so no round names a fact twice and each
/// round is written after the one before.
#[derive(Default)]
struct FactBatch<'a> {
    rounds: Vec<BTreeMap<String, (&'a Envelope, &'a Fact)>>,
    /// How many events of each fact the batch holds so far.
    seen: std::collections::HashMap<String, usize>,
}

impl<'a> FactBatch<'a> {
    /// Adds the event to the round after its fact's last one.
    fn add(&mut self, event: &'a Event) {
        let key = event.fact.identity();
        let count = self.seen.entry(key.clone()).or_default();
        if self.rounds.len() <= *count {
            self.rounds.push(BTreeMap::new());
        }
        self.rounds[*count].insert(key, (&event.envelope, &event.fact));
        *count += 1;
    }

    /// Writes the batch's facts round by round; returns the events not
    /// applied because the store held a newer one for the fact when their
    /// round came.
    async fn write(
        &self,
        tx: &mut Transaction<'_, Any>,
        rows: usize,
    ) -> Result<Vec<(&'a Envelope, &'a Fact)>, MergerError> {
        let mut superseded = Vec::new();
        for round in &self.rounds {
            superseded.extend(write_round(tx, rows, round).await?);
        }
        Ok(superseded)
    }
}

/// Writes one round (at most one event per fact); returns its events that
/// the store's guard held back.
async fn write_round<'a>(
    tx: &mut Transaction<'_, Any>,
    rows: usize,
    round: &BTreeMap<String, (&'a Envelope, &'a Fact)>,
) -> Result<Vec<(&'a Envelope, &'a Fact)>, MergerError> {
    let mut kinds = ByKind::default();
    for &(envelope, fact) in round.values() {
        match fact {
            Fact::UnitQuota(f) => kinds.units.push((envelope, f)),
            Fact::RosterEntry(f) => kinds.roster.push((envelope, f)),
            Fact::PayrollPayment(f) => kinds.payments.push((envelope, f)),
            Fact::Contribution(f) => kinds.contributions.push((envelope, f)),
            Fact::PensionStart(f) => kinds.pensions.push((envelope, f)),
            Fact::EnforcementCase(f) => kinds.cases.push((envelope, f)),
            Fact::VeteranPlacement(f) => kinds.placements.push((envelope, f)),
            Fact::PurchasedService(f) => kinds.purchases.push((envelope, f)),
        }
    }
    let mut written = HashSet::new();
    upsert_all(tx, rows, &UNITS, &kinds.units, &mut written).await?;
    upsert_all(tx, rows, &ROSTER_ENTRIES, &kinds.roster, &mut written).await?;
    upsert_all(tx, rows, &PAYMENTS, &kinds.payments, &mut written).await?;
    upsert_all(tx, rows, &CONTRIBUTIONS, &kinds.contributions, &mut written).await?;
    upsert_all(tx, rows, &PENSION_STARTS, &kinds.pensions, &mut written).await?;
    upsert_all(tx, rows, &ENFORCEMENT_CASES, &kinds.cases, &mut written).await?;
    upsert_all(
        tx,
        rows,
        &VETERAN_PLACEMENTS,
        &kinds.placements,
        &mut written,
    )
    .await?;
    upsert_all(
        tx,
        rows,
        &PURCHASED_SERVICES,
        &kinds.purchases,
        &mut written,
    )
    .await?;
    Ok(round
        .values()
        .filter(|(envelope, _)| !written.contains(envelope.event_id.as_str()))
        .copied()
        .collect())
}

/// A batch's facts split by kind, each list in key order.
#[derive(Default)]
struct ByKind<'a> {
    units: Vec<(&'a Envelope, &'a UnitQuota)>,
    roster: Vec<(&'a Envelope, &'a RosterEntry)>,
    payments: Vec<(&'a Envelope, &'a PayrollPayment)>,
    contributions: Vec<(&'a Envelope, &'a Contribution)>,
    pensions: Vec<(&'a Envelope, &'a PensionStart)>,
    cases: Vec<(&'a Envelope, &'a EnforcementCase)>,
    placements: Vec<(&'a Envelope, &'a VeteranPlacement)>,
    purchases: Vec<(&'a Envelope, &'a PurchasedService)>,
}

/// How one kind of fact is written: its table, the columns that identify a
/// fact (the conflict target), the columns that describe it, and how one
/// fact binds: key columns, then value columns, then provenance.
struct FactTable<T> {
    table: &'static str,
    keys: &'static [&'static str],
    values: &'static [&'static str],
    action: &'static str,
    bind: for<'q> fn(AnyQuery<'q>, &'q T, &'q Envelope) -> Result<AnyQuery<'q>, MergerError>,
}

/// The columns every fact table ends with, in `bind_provenance` order.
const PROVENANCE: [&str; 7] = [
    "deleted",
    "source_system",
    "source_location",
    "source_position",
    "event_id",
    "observed_at",
    "exported_at",
];

impl<T> FactTable<T> {
    fn columns(&self) -> usize {
        self.keys.len() + self.values.len() + PROVENANCE.len()
    }

    fn insert(&self) -> String {
        let columns: Vec<&str> = self
            .keys
            .iter()
            .chain(self.values)
            .chain(&PROVENANCE)
            .copied()
            .collect();
        format!("INSERT INTO {} ({})", self.table, columns.join(", "))
    }

    // Each upsert keeps the newer fact (`Envelope::order`: export time,
    // else read time, then read time): a stored row newer than the
    // incoming event is left as it is, so a stale export ingested late
    // changes nothing and its event is kept as superseded history.
    fn conflict(&self) -> String {
        let updates: Vec<String> = self
            .values
            .iter()
            .chain(&PROVENANCE)
            .map(|column| format!("{column} = excluded.{column}"))
            .collect();
        let table = self.table;
        let stored = format!("COALESCE({table}.exported_at, {table}.observed_at)");
        let incoming = "COALESCE(excluded.exported_at, excluded.observed_at)";
        format!(
            "ON CONFLICT ({}) DO UPDATE SET {} WHERE {stored} < {incoming} \
             OR ({stored} = {incoming} AND {table}.observed_at <= excluded.observed_at)",
            self.keys.join(", "),
            updates.join(", "),
        )
    }
}

const UNITS: FactTable<UnitQuota> = FactTable {
    table: "units",
    keys: &["unit_code"],
    values: &["unit_name", "unit_type", "quota", "approved_on"],
    action: "store unit quotas",
    bind: |statement, quota, envelope| {
        let statement = statement
            .bind(quota.unit_code.as_str())
            .bind(&quota.unit_name)
            .bind(&quota.unit_type)
            .bind(i64::from(quota.quota))
            .bind(date_text(quota.approved_on));
        Ok(bind_provenance(statement, envelope))
    },
};

const ROSTER_ENTRIES: FactTable<RosterEntry> = FactTable {
    table: "roster_entries",
    keys: &["citizen_id", "unit_code"],
    values: &[
        "name",
        "unit_name",
        "post_category",
        "post_category_label",
        "employment_form",
        "hire_date",
        "contract_start",
        "contract_end",
        "contract_open_ended",
        "status",
        "status_label",
        "left_on",
        "post_name",
    ],
    action: "store roster entries",
    bind: |statement, entry, envelope| {
        let statement = statement
            .bind(entry.citizen_id.as_str())
            .bind(entry.unit_code.as_str())
            .bind(&entry.name)
            .bind(&entry.unit_name)
            .bind(entry.post_category.label())
            .bind(&entry.post_category_label)
            .bind(&entry.employment_form)
            .bind(date_text(entry.hire_date))
            .bind(date_text(entry.contract_start))
            .bind(date_text(entry.contract_end))
            .bind(i64::from(entry.contract_open_ended))
            .bind(entry.status.label())
            .bind(&entry.status_label)
            .bind(date_text(entry.left_on))
            .bind(&entry.post_name);
        Ok(bind_provenance(statement, envelope))
    },
};

const PAYMENTS: FactTable<PayrollPayment> = FactTable {
    table: "payroll_payments",
    keys: &["citizen_id", "unit_code", "pay_month"],
    values: &[
        "name",
        "unit_name",
        "gross_cents",
        "net_cents",
        "fund_source",
    ],
    action: "store payroll payments",
    bind: |statement, payment, envelope| {
        let statement = statement
            .bind(payment.citizen_id.as_str())
            .bind(payment.unit_code.as_str())
            .bind(i64::from(payment.month.as_number()))
            .bind(&payment.name)
            .bind(&payment.unit_name)
            .bind(cents(payment.gross)?)
            .bind(cents(payment.net)?)
            .bind(&payment.fund_source);
        Ok(bind_provenance(statement, envelope))
    },
};

const CONTRIBUTIONS: FactTable<Contribution> = FactTable {
    table: "contributions",
    keys: &[
        "citizen_id",
        "unit_code",
        "contribution_month",
        "insurance_type",
    ],
    values: &["name", "unit_name", "insured_status"],
    action: "store contributions",
    bind: |statement, contribution, envelope| {
        let statement = statement
            .bind(contribution.citizen_id.as_str())
            .bind(contribution.unit_code.as_str())
            .bind(i64::from(contribution.month.as_number()))
            .bind(&contribution.insurance_type)
            .bind(&contribution.name)
            .bind(&contribution.unit_name)
            .bind(&contribution.insured_status);
        Ok(bind_provenance(statement, envelope))
    },
};

const PENSION_STARTS: FactTable<PensionStart> = FactTable {
    table: "pension_starts",
    keys: &["citizen_id", "benefit_type"],
    values: &["name", "starts_on"],
    action: "store pension starts",
    bind: |statement, start, envelope| {
        let statement = statement
            .bind(start.citizen_id.as_str())
            .bind(&start.benefit_type)
            .bind(&start.name)
            .bind(date_text(Some(start.starts_on)));
        Ok(bind_provenance(statement, envelope))
    },
};

const ENFORCEMENT_CASES: FactTable<EnforcementCase> = FactTable {
    table: "enforcement_cases",
    keys: &["case_number", "citizen_id"],
    values: &["name", "amount_cents", "filed_on", "case_status"],
    action: "store enforcement cases",
    bind: |statement, case, envelope| {
        let statement = statement
            .bind(&case.case_number)
            .bind(case.citizen_id.as_str())
            .bind(&case.name)
            .bind(cents(Some(case.amount))?)
            .bind(date_text(case.filed_on))
            .bind(&case.case_status);
        Ok(bind_provenance(statement, envelope))
    },
};

const VETERAN_PLACEMENTS: FactTable<VeteranPlacement> = FactTable {
    table: "veteran_placements",
    keys: &["citizen_id", "unit_code"],
    values: &["name", "placement_type", "unit_name", "placed_on"],
    action: "store veteran placements",
    bind: |statement, placement, envelope| {
        let statement = statement
            .bind(placement.citizen_id.as_str())
            .bind(placement.unit_code.as_str())
            .bind(&placement.name)
            .bind(&placement.placement_type)
            .bind(&placement.unit_name)
            .bind(date_text(placement.placed_on));
        Ok(bind_provenance(statement, envelope))
    },
};

const PURCHASED_SERVICES: FactTable<PurchasedService> = FactTable {
    table: "purchased_services",
    keys: &["unit_code", "project_name"],
    values: &[
        "unit_name",
        "provider",
        "staff_count",
        "contract_amount_cents",
        "period_start",
        "period_end",
    ],
    action: "store purchased services",
    bind: |statement, service, envelope| {
        let statement = statement
            .bind(service.unit_code.as_str())
            .bind(&service.project_name)
            .bind(&service.unit_name)
            .bind(&service.provider)
            .bind(i64::from(service.staff_count))
            .bind(cents(service.contract_amount)?)
            .bind(date_text(service.period_start))
            .bind(date_text(service.period_end));
        Ok(bind_provenance(statement, envelope))
    },
};

/// Upserts facts of one kind, `rows` to a statement; adds the event ids
/// actually written (not held back by a newer stored fact) to `written`.
async fn upsert_all<T: Sync>(
    tx: &mut Transaction<'_, Any>,
    rows: usize,
    table: &FactTable<T>,
    facts: &[(&Envelope, &T)],
    written: &mut HashSet<String>,
) -> Result<(), MergerError> {
    if facts.is_empty() {
        return Ok(());
    }
    let (insert, conflict) = (table.insert(), table.conflict());
    for chunk in facts.chunks(rows) {
        let marks = placeholders(chunk.len(), table.columns());
        let sql = format!("{insert} VALUES {marks} {conflict} RETURNING event_id");
        let mut statement = sqlx::query(&sql);
        for &(envelope, fact) in chunk {
            statement = (table.bind)(statement, fact, envelope)?;
        }
        let returned = statement
            .fetch_all(&mut **tx)
            .await
            .map_err(query(table.action))?;
        for row in returned {
            let id: String = sqlx::Row::try_get(&row, 0).map_err(query(table.action))?;
            written.insert(id);
        }
    }
    Ok(())
}

/// Keeps events that lost to a newer fact as history.
async fn record_superseded(
    tx: &mut Transaction<'_, Any>,
    superseded: &[(&Envelope, &Fact)],
) -> Result<(), MergerError> {
    for (envelope, fact) in superseded {
        let (table, content) = fact_content(fact);
        sqlx::query(
            "INSERT INTO superseded_facts (event_id, fact_table, operation, content, \
               source_system, source_location, source_position, observed_at, exported_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&envelope.event_id)
        .bind(table)
        .bind(format!("{:?}", envelope.operation))
        .bind(content)
        .bind(&envelope.source_system)
        .bind(&envelope.source_ref.location)
        .bind(&envelope.source_ref.position)
        .bind(envelope.observed_at.timestamp_millis())
        .bind(envelope.exported_at.map(|at| at.timestamp_millis()))
        .execute(&mut **tx)
        .await
        .map_err(query("keep a superseded fact"))?;
    }
    Ok(())
}

/// The fact's table and its content as JSON.
fn fact_content(fact: &Fact) -> (&'static str, String) {
    let (table, content) = match fact {
        Fact::UnitQuota(f) => ("units", serde_json::to_string(f)),
        Fact::RosterEntry(f) => ("roster_entries", serde_json::to_string(f)),
        Fact::PayrollPayment(f) => ("payroll_payments", serde_json::to_string(f)),
        Fact::Contribution(f) => ("contributions", serde_json::to_string(f)),
        Fact::PensionStart(f) => ("pension_starts", serde_json::to_string(f)),
        Fact::EnforcementCase(f) => ("enforcement_cases", serde_json::to_string(f)),
        Fact::VeteranPlacement(f) => ("veteran_placements", serde_json::to_string(f)),
        Fact::PurchasedService(f) => ("purchased_services", serde_json::to_string(f)),
    };
    (table, content.unwrap_or_default())
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// Binds the provenance columns every fact carries, in their fixed order:
/// deleted, source system, location, position, event id, observed time,
/// export time.
fn bind_provenance<'q>(query: AnyQuery<'q>, envelope: &'q Envelope) -> AnyQuery<'q> {
    query
        .bind(deleted(envelope))
        .bind(&envelope.source_system)
        .bind(&envelope.source_ref.location)
        .bind(&envelope.source_ref.position)
        .bind(&envelope.event_id)
        .bind(envelope.observed_at.timestamp_millis())
        .bind(envelope.exported_at.map(|at| at.timestamp_millis()))
}

fn deleted(envelope: &Envelope) -> i64 {
    i64::from(envelope.operation == Operation::Delete)
}

async fn insert_dead_letters(
    tx: &mut Transaction<'_, Any>,
    letters: &[&DeadLetter],
    rows: usize,
) -> Result<(), MergerError> {
    for chunk in letters.chunks(rows) {
        let sql = format!(
            "INSERT INTO dead_letters (dead_letter_id, source_system, location, position, \
               reason_code, reason, raw, observed_at) \
             VALUES {} ON CONFLICT (dead_letter_id) DO NOTHING",
            placeholders(chunk.len(), 8)
        );
        let mut statement = sqlx::query(&sql);
        for letter in chunk {
            statement = statement
                .bind(&letter.dead_letter_id)
                .bind(&letter.source_system)
                .bind(&letter.location)
                .bind(&letter.position)
                .bind(&letter.reason_code)
                .bind(&letter.reason)
                .bind(&letter.raw)
                .bind(letter.observed_at.timestamp_millis());
        }
        statement
            .execute(&mut **tx)
            .await
            .map_err(query("store dead letters"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_row_and_column() {
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
