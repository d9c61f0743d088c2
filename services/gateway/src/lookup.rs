//! The PersonLookup service: a person's roster entries and latest pay.

use blockhub_merger::Store;
use blockhub_merger::store::{StoredPayment, StoredRosterEntry};
use blockhub_model::CitizenId;
use chrono::NaiveDate;
use tonic::{Request, Response, Status};
use tracing::info;

use crate::auth::Caller;
use crate::error::GatewayError;
use crate::proto::person_lookup_server::PersonLookup;
use crate::proto::{LookupReply, LookupRequest, Payment, Provenance, RosterPost};

/// Answers look-ups from the store.
pub struct LookupService {
    store: Store,
}

impl LookupService {
    /// A service reading `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn date_text(date: Option<NaiveDate>) -> String {
    date.map(|d| d.to_string()).unwrap_or_default()
}

fn provenance(stored: blockhub_merger::store::Provenance) -> Provenance {
    let observed_at = chrono::DateTime::from_timestamp_millis(stored.observed_at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    Provenance {
        source_system: stored.source_system,
        location: stored.location,
        position: stored.position,
        event_id: stored.event_id,
        observed_at,
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

#[tonic::async_trait]
impl PersonLookup for LookupService {
    async fn lookup(
        &self,
        request: Request<LookupRequest>,
    ) -> Result<Response<LookupReply>, Status> {
        let department = request
            .extensions()
            .get::<Caller>()
            .map(|caller| caller.department.clone())
            .ok_or_else(|| Status::unauthenticated("no caller"))?;
        let with_provenance = request.get_ref().provenance;
        let id = CitizenId::parse(&request.get_ref().citizen_id).map_err(|error| {
            info!(%department, reason = error.code(), "Look-up refused: invalid ID.");
            Status::invalid_argument(error.to_string())
        })?;

        let entries = self
            .store
            .roster_entries_of(&id)
            .await
            .map_err(GatewayError::from)?;
        let latest = self
            .store
            .latest_payment_of(&id)
            .await
            .map_err(GatewayError::from)?;
        let (posts, paid) = (entries.len(), latest.is_some());
        info!(%department, person = %id, posts, paid, "Look-up answered.");
        if entries.is_empty() && latest.is_none() {
            return Err(Status::not_found(
                "no roster entry or payment names that ID",
            ));
        }

        // The roster's spelling of the name, else the payroll's.
        let name = entries
            .first()
            .map(|entry| entry.name.clone())
            .or_else(|| latest.as_ref().map(|payment| payment.name.clone()))
            .unwrap_or_default();
        Ok(Response::new(LookupReply {
            citizen_id_masked: id.masked(),
            name,
            posts: entries
                .into_iter()
                .map(|entry| post(entry, with_provenance))
                .collect(),
            latest_payment: latest.map(|stored| payment(stored, with_provenance)),
        }))
    }
}
