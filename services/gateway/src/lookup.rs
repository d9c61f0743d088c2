//! The PersonLookup service: a person's roster entries, employer and
//! latest pay, each field as the caller's policy grants it.

use std::pin::Pin;
use std::time::{Duration, Instant};

use blockhub_merger::Store;
use blockhub_merger::store::{StoredPayment, StoredRosterEntry};
use blockhub_model::CitizenId;
use chrono::NaiveDate;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::info;

use crate::access::{Access, Admitted};
use crate::error::GatewayError;
use crate::policy::{Field, Grant};
use crate::proto::person_lookup_server::PersonLookup;
use crate::proto::{
    BatchLookupRequest, BatchLookupResult, Employer, LookupReply, LookupRequest, Payment,
    Provenance, RosterPost,
};

/// At most this many IDs in one BatchLookup.
pub const MAX_BATCH: usize = 10_000;
/// IDs answered, and recorded in the audit log, per step of a batch.
const BATCH_STEP: usize = 100;

/// Answers look-ups from the store.
#[derive(Clone)]
pub struct LookupService {
    store: Store,
    access: Access,
}

impl LookupService {
    /// A service reading `store`, gated by `access`.
    pub fn new(store: Store, access: Access) -> Self {
        Self { store, access }
    }

    /// One person as `grant` may see them, or `None` when nothing in the
    /// caller's scope names them (the same answer as an unknown ID, so
    /// that a scoped caller cannot tell the two apart).
    async fn person(
        &self,
        id: &CitizenId,
        grant: &Grant,
        with_provenance: bool,
        deadline: Option<Instant>,
    ) -> Result<Option<LookupReply>, GatewayError> {
        let within = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let scope: Option<Vec<String>> = grant.units.as_ref().map(|u| u.iter().cloned().collect());
        let (mut entries, latest) = self
            .store
            .person_facts(id, within, scope.as_deref())
            .await?;
        entries.retain(|entry| grant.sees_unit(&entry.unit_code));
        if entries.is_empty() && latest.is_none() {
            return Ok(None);
        }
        let fields = &grant.fields;
        let provenance = with_provenance && fields.has(Field::Provenance);
        // The roster's spelling of the name, else the payroll's.
        let name = entries
            .first()
            .map(|entry| entry.name.clone())
            .or_else(|| latest.as_ref().map(|payment| payment.name.clone()))
            .unwrap_or_default();
        let employers = entries
            .iter()
            .filter(|entry| entry.status == "在职" && fields.has(Field::Employer))
            .map(|entry| Employer {
                unit_code: entry.unit_code.clone(),
                unit_name: entry.unit_name.clone(),
            })
            .collect();
        let mut withheld: Vec<String> = [
            Field::CitizenId,
            Field::Name,
            Field::Employer,
            Field::Posts,
            Field::LatestPayment,
        ]
        .into_iter()
        .filter(|field| !fields.has(*field))
        .map(|field| field.name().to_string())
        .collect();
        if with_provenance && !provenance {
            withheld.push(Field::Provenance.name().to_string());
        }
        let posts = if fields.has(Field::Posts) {
            entries
                .into_iter()
                .map(|entry| post(entry, provenance))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Some(LookupReply {
            citizen_id: grant.show_id(id.as_str()),
            name: grant.show_name(&name),
            posts,
            latest_payment: latest
                .filter(|_| fields.has(Field::LatestPayment))
                .map(|stored| payment(stored, provenance)),
            employers,
            withheld,
        }))
    }
}

/// A date as the API writes it (YYYY-MM-DD), empty when unknown.
pub(crate) fn date_text(date: Option<NaiveDate>) -> String {
    date.map(|d| d.to_string()).unwrap_or_default()
}

/// Milliseconds since the epoch as the API writes times (RFC 3339, UTC).
pub(crate) fn time_text(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn provenance(stored: blockhub_merger::store::Provenance) -> Provenance {
    let observed_at = time_text(stored.observed_at);
    Provenance {
        source_system: stored.source_system,
        location: stored.location,
        position: stored.position,
        event_id: stored.event_id,
        observed_at,
        exported_at: stored.exported_at.map(time_text).unwrap_or_default(),
    }
}

fn post(entry: StoredRosterEntry, with_provenance: bool) -> RosterPost {
    RosterPost {
        provenance: with_provenance.then(|| provenance(entry.provenance.clone())),
        unit_code: entry.unit_code,
        unit_name: entry.unit_name,
        post_category: entry.post_category,
        post_category_label: entry.post_category_label,
        employment_form: entry.employment_form,
        hire_date: date_text(entry.hire_date),
        contract_start: date_text(entry.contract_start),
        contract_end: date_text(entry.contract_end),
        contract_open_ended: entry.contract_open_ended,
        status: entry.status,
        status_label: entry.status_label,
        left_on: date_text(entry.left_on),
    }
}

fn payment(stored: StoredPayment, with_provenance: bool) -> Payment {
    Payment {
        provenance: with_provenance.then(|| provenance(stored.provenance.clone())),
        month: stored.month.to_string(),
        unit_code: stored.unit_code,
        unit_name: stored.unit_name,
        gross: stored
            .gross
            .map(|amount| amount.to_string())
            .unwrap_or_default(),
        net: stored
            .net
            .map(|amount| amount.to_string())
            .unwrap_or_default(),
    }
}

/// When the caller stops waiting, from its `grpc-timeout` header (such as
/// `500m`: a number and a unit, H M S m u n).
pub fn deadline_of(metadata: &tonic::metadata::MetadataMap) -> Option<Instant> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    let split = text.len().checked_sub(1)?;
    let (number, unit) = (text.get(..split)?, text.get(split..)?);
    let number: u64 = number.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(number.saturating_mul(3600)),
        "M" => Duration::from_secs(number.saturating_mul(60)),
        "S" => Duration::from_secs(number),
        "m" => Duration::from_millis(number),
        "u" => Duration::from_micros(number),
        "n" => Duration::from_nanos(number),
        _ => return None,
    };
    Instant::now().checked_add(timeout)
}

type ResultStream = Pin<Box<dyn Stream<Item = Result<BatchLookupResult, Status>> + Send>>;

#[tonic::async_trait]
impl PersonLookup for LookupService {
    async fn lookup(
        &self,
        request: Request<LookupRequest>,
    ) -> Result<Response<LookupReply>, Status> {
        let body = request.get_ref();
        let admitted = self
            .access
            .admit(
                &request,
                "PersonLookup.Lookup",
                &body.purpose,
                &body.case_number,
            )
            .await?;
        let department = &admitted.grant.department;
        let id = match CitizenId::parse(&body.citizen_id) {
            Ok(id) => id,
            Err(error) => {
                info!(%department, reason = error.code(), "Look-up refused: invalid ID.");
                self.access.record(&admitted, 0).await?;
                return Err(Status::invalid_argument(error.to_string()));
            }
        };
        let deadline = deadline_of(request.metadata());
        let reply = self
            .person(&id, &admitted.grant, body.provenance, deadline)
            .await
            .map_err(Status::from)?;
        self.access
            .record(&admitted, usize::from(reply.is_some()))
            .await?;
        info!(%department, person = %id, found = reply.is_some(), "Look-up answered.");
        reply
            .map(Response::new)
            .ok_or_else(|| Status::not_found("no record in your scope names that ID"))
    }

    type BatchLookupStream = ResultStream;

    async fn batch_lookup(
        &self,
        request: Request<BatchLookupRequest>,
    ) -> Result<Response<Self::BatchLookupStream>, Status> {
        let body = request.get_ref();
        let admitted = self
            .access
            .admit(
                &request,
                "PersonLookup.BatchLookup",
                &body.purpose,
                &body.case_number,
            )
            .await?;
        let deadline = deadline_of(request.metadata());
        let body = request.into_inner();
        if body.citizen_ids.len() > MAX_BATCH {
            self.access.record(&admitted, 0).await?;
            return Err(Status::invalid_argument(format!(
                "at most {MAX_BATCH} IDs per call; split the list"
            )));
        }
        let (sender, receiver) = tokio::sync::mpsc::channel(BATCH_STEP);
        let service = self.clone();
        tokio::spawn(async move {
            let outcome = service
                .stream_batch(
                    &admitted,
                    body.citizen_ids,
                    body.provenance,
                    deadline,
                    &sender,
                )
                .await;
            if let Err(status) = outcome {
                let _ = sender.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

impl LookupService {
    /// Answers a batch a step at a time: each step's results are recorded
    /// in the audit log before they are sent. Stops when the caller goes.
    async fn stream_batch(
        &self,
        admitted: &Admitted,
        ids: Vec<String>,
        with_provenance: bool,
        deadline: Option<Instant>,
        sender: &tokio::sync::mpsc::Sender<Result<BatchLookupResult, Status>>,
    ) -> Result<(), Status> {
        let mut found_total = 0;
        for (step, chunk) in ids.chunks(BATCH_STEP).enumerate() {
            let mut results = Vec::with_capacity(chunk.len());
            for (offset, raw) in chunk.iter().enumerate() {
                let index = (step * BATCH_STEP + offset) as u32;
                let result = match CitizenId::parse(raw) {
                    Err(error) => BatchLookupResult {
                        index,
                        outcome: "INVALID_ID".into(),
                        reply: None,
                        error: error.to_string(),
                    },
                    Ok(id) => {
                        let reply = self
                            .person(&id, &admitted.grant, with_provenance, deadline)
                            .await
                            .map_err(Status::from)?;
                        BatchLookupResult {
                            index,
                            outcome: if reply.is_some() {
                                "FOUND"
                            } else {
                                "NOT_FOUND"
                            }
                            .into(),
                            reply,
                            error: String::new(),
                        }
                    }
                };
                results.push(result);
            }
            let found = results.iter().filter(|r| r.reply.is_some()).count();
            self.access.record(admitted, found).await?;
            found_total += found;
            for result in results {
                if sender.send(Ok(result)).await.is_err() {
                    info!(department = %admitted.grant.department, "Batch look-up cancelled.");
                    return Ok(());
                }
            }
        }
        info!(
            department = %admitted.grant.department,
            asked = ids.len(),
            found = found_total,
            "Batch look-up answered."
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_become_deadlines() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        assert!(deadline_of(&metadata).is_none());
        for (text, expected) in [("500m", 500), ("2S", 2000), ("1M", 60_000), ("3000000n", 3)] {
            metadata.insert("grpc-timeout", text.parse().unwrap());
            let left = deadline_of(&metadata).unwrap() - Instant::now();
            let expected = Duration::from_millis(expected);
            assert!(
                left <= expected && left + Duration::from_millis(50) >= expected,
                "{text}"
            );
        }
        for bad in ["", "m", "5x", "-5m"] {
            metadata.insert("grpc-timeout", bad.parse().unwrap());
            assert!(deadline_of(&metadata).is_none(), "{bad}");
        }
    }
}
