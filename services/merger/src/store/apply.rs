//! Applying a batch of consumed messages: facts, dead letters and the
//! consumer offsets, all in one transaction.
//!
//! The transaction is the whole of the merger's exactly-once promise. A
//! message at an offset below the stored next offset was applied before
//! (Kafka re-delivered it after a crash) and is skipped; an event id seen
//! before is skipped; a fact older than the stored one is not applied. A
//! crash before commit leaves nothing; a crash after commit leaves
//! everything, including the offsets that say so.

use std::collections::BTreeMap;

use blockhub_model::{
    DeadLetter, Envelope, Event, Fact, Operation, PayrollPayment, RosterEntry, UnitQuota,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sqlx::{Any, Transaction};
use tracing::{debug, trace};

use super::Store;
use crate::error::{MergerError, query};

/// What a consumed message carries.
#[derive(Debug, Clone)]
pub enum DeliveredItem {
    /// A decoded event.
    Event(Event),
    /// A dead letter, from the dead-letter topic or raised while decoding.
    DeadLetter(DeadLetter),
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

            match &message.item {
                DeliveredItem::Event(event) => {
                    if record_event(&mut tx, event, message).await? {
                        apply_fact(&mut tx, event).await?;
                        outcome.applied += 1;
                    } else {
                        outcome.duplicate_events += 1;
                    }
                }
                DeliveredItem::DeadLetter(letter) => {
                    insert_dead_letter(&mut tx, letter).await?;
                    outcome.dead_letters += 1;
                }
                DeliveredItem::Nothing => {}
            }
        }

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
        const COLUMNS: usize = 14;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin a direct write"))?;
        for chunk in payments.chunks(500) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|row| {
                    let marks: Vec<String> = (1..=COLUMNS)
                        .map(|c| format!("${}", row * COLUMNS + c))
                        .collect();
                    format!("({})", marks.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO payroll_payments (citizen_id, unit_code, pay_month, name, unit_name, \
                   gross_cents, net_cents, fund_source, deleted, source_system, source_location, \
                   source_position, event_id, observed_at) VALUES {}",
                rows.join(", ")
            );
            let mut statement = sqlx::query(&sql);
            for (payment, envelope) in chunk {
                statement = statement
                    .bind(payment.citizen_id.as_str())
                    .bind(payment.unit_code.as_str())
                    .bind(i64::from(payment.month.as_number()))
                    .bind(&payment.name)
                    .bind(&payment.unit_name)
                    .bind(cents(payment.gross)?)
                    .bind(cents(payment.net)?)
                    .bind(&payment.fund_source);
                statement = bind_provenance(statement, envelope);
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

/// Records the event id; false when it was applied before.
async fn record_event(
    tx: &mut Transaction<'_, Any>,
    event: &Event,
    message: &Delivered,
) -> Result<bool, MergerError> {
    let result = sqlx::query(
        "INSERT INTO applied_events (event_id, topic, kafka_partition, kafka_offset) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.envelope.event_id)
    .bind(&message.topic)
    .bind(i64::from(message.partition))
    .bind(message.offset)
    .execute(&mut **tx)
    .await
    .map_err(query("record an applied event"))?;
    Ok(result.rows_affected() == 1)
}

async fn apply_fact(tx: &mut Transaction<'_, Any>, event: &Event) -> Result<(), MergerError> {
    let envelope = &event.envelope;
    trace!(event_id = %envelope.event_id, source = %envelope.source_system, "Applying event.");
    match &event.fact {
        Fact::UnitQuota(quota) => upsert_unit(tx, envelope, quota).await,
        Fact::RosterEntry(entry) => upsert_roster_entry(tx, envelope, entry).await,
        Fact::PayrollPayment(payment) => upsert_payment(tx, envelope, payment).await,
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// Binds the provenance columns every fact carries, in their fixed order:
/// deleted, source system, location, position, event id, observed time.
fn bind_provenance<'q>(query: AnyQuery<'q>, envelope: &'q Envelope) -> AnyQuery<'q> {
    query
        .bind(deleted(envelope))
        .bind(&envelope.source_system)
        .bind(&envelope.source_ref.location)
        .bind(&envelope.source_ref.position)
        .bind(&envelope.event_id)
        .bind(envelope.observed_at.timestamp_millis())
}

fn deleted(envelope: &Envelope) -> i64 {
    i64::from(envelope.operation == Operation::Delete)
}

// Each upsert keeps the newer fact: a row observed later than the incoming
// event is left as it is, so a stale export ingested late changes nothing.

async fn upsert_unit(
    tx: &mut Transaction<'_, Any>,
    envelope: &Envelope,
    quota: &UnitQuota,
) -> Result<(), MergerError> {
    let statement = sqlx::query(
        "INSERT INTO units (unit_code, unit_name, unit_type, quota, approved_on, deleted, \
           source_system, source_location, source_position, event_id, observed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (unit_code) DO UPDATE SET unit_name = excluded.unit_name, \
           unit_type = excluded.unit_type, quota = excluded.quota, \
           approved_on = excluded.approved_on, deleted = excluded.deleted, \
           source_system = excluded.source_system, source_location = excluded.source_location, \
           source_position = excluded.source_position, event_id = excluded.event_id, \
           observed_at = excluded.observed_at \
         WHERE units.observed_at <= excluded.observed_at",
    )
    .bind(quota.unit_code.as_str())
    .bind(&quota.unit_name)
    .bind(&quota.unit_type)
    .bind(i64::from(quota.quota))
    .bind(date_text(quota.approved_on));
    bind_provenance(statement, envelope)
        .execute(&mut **tx)
        .await
        .map_err(query("store a unit quota"))?;
    Ok(())
}

async fn upsert_roster_entry(
    tx: &mut Transaction<'_, Any>,
    envelope: &Envelope,
    entry: &RosterEntry,
) -> Result<(), MergerError> {
    let statement = sqlx::query(
        "INSERT INTO roster_entries (citizen_id, unit_code, name, unit_name, post_category, \
           post_category_label, employment_form, hire_date, contract_start, contract_end, \
           contract_open_ended, status, status_label, left_on, deleted, source_system, \
           source_location, source_position, event_id, observed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
           $18, $19, $20) \
         ON CONFLICT (citizen_id, unit_code) DO UPDATE SET name = excluded.name, \
           unit_name = excluded.unit_name, post_category = excluded.post_category, \
           post_category_label = excluded.post_category_label, \
           employment_form = excluded.employment_form, hire_date = excluded.hire_date, \
           contract_start = excluded.contract_start, contract_end = excluded.contract_end, \
           contract_open_ended = excluded.contract_open_ended, status = excluded.status, \
           status_label = excluded.status_label, left_on = excluded.left_on, \
           deleted = excluded.deleted, source_system = excluded.source_system, \
           source_location = excluded.source_location, \
           source_position = excluded.source_position, event_id = excluded.event_id, \
           observed_at = excluded.observed_at \
         WHERE roster_entries.observed_at <= excluded.observed_at",
    )
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
    .bind(date_text(entry.left_on));
    bind_provenance(statement, envelope)
        .execute(&mut **tx)
        .await
        .map_err(query("store a roster entry"))?;
    Ok(())
}

async fn upsert_payment(
    tx: &mut Transaction<'_, Any>,
    envelope: &Envelope,
    payment: &PayrollPayment,
) -> Result<(), MergerError> {
    let statement = sqlx::query(
        "INSERT INTO payroll_payments (citizen_id, unit_code, pay_month, name, unit_name, \
           gross_cents, net_cents, fund_source, deleted, source_system, source_location, \
           source_position, event_id, observed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (citizen_id, unit_code, pay_month) DO UPDATE SET name = excluded.name, \
           unit_name = excluded.unit_name, gross_cents = excluded.gross_cents, \
           net_cents = excluded.net_cents, fund_source = excluded.fund_source, \
           deleted = excluded.deleted, source_system = excluded.source_system, \
           source_location = excluded.source_location, \
           source_position = excluded.source_position, event_id = excluded.event_id, \
           observed_at = excluded.observed_at \
         WHERE payroll_payments.observed_at <= excluded.observed_at",
    )
    .bind(payment.citizen_id.as_str())
    .bind(payment.unit_code.as_str())
    .bind(i64::from(payment.month.as_number()))
    .bind(&payment.name)
    .bind(&payment.unit_name)
    .bind(cents(payment.gross)?)
    .bind(cents(payment.net)?)
    .bind(&payment.fund_source);
    bind_provenance(statement, envelope)
        .execute(&mut **tx)
        .await
        .map_err(query("store a payroll payment"))?;
    Ok(())
}

async fn insert_dead_letter(
    tx: &mut Transaction<'_, Any>,
    letter: &DeadLetter,
) -> Result<(), MergerError> {
    sqlx::query(
        "INSERT INTO dead_letters (dead_letter_id, source_system, location, position, \
           reason_code, reason, raw, observed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dead_letter_id) DO NOTHING",
    )
    .bind(&letter.dead_letter_id)
    .bind(&letter.source_system)
    .bind(&letter.location)
    .bind(&letter.position)
    .bind(&letter.reason_code)
    .bind(&letter.reason)
    .bind(&letter.raw)
    .bind(letter.observed_at.timestamp_millis())
    .execute(&mut **tx)
    .await
    .map_err(query("store a dead letter"))?;
    Ok(())
}
