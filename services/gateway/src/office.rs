//! The staffing office's services: Alerts (List, Acknowledge) and Staff
//! (List, CountByPost, History), read from the store.
//!
//! The gateway's policy decides who may call each method and how IDs and
//! names are shown; the purpose travels in the `x-blockhub-purpose`
//! header. A department scoped to some units sees only their staff,
//! alerts and counts.

use blockhub_merger::Store;
use blockhub_merger::store::{AckOutcome, AlertFilter, StaffFilter, StoredAlert};
use blockhub_model::CitizenId;
use tonic::{Request, Response, Status};
use tracing::info;

use crate::access::{Access, Admitted};
use crate::error::GatewayError;
use crate::policy::{Field, Grant};
use crate::proto::alerts_server::Alerts;
use crate::proto::staff_server::Staff;
use crate::proto::{
    AcknowledgeRequest, Alert, CountByPostReply, CountByPostRequest, HistoryItem, HistoryReply,
    HistoryRequest, ListAlertsReply, ListAlertsRequest, ListStaffReply, ListStaffRequest,
    PostCount, StaffMember,
};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// Serves Alerts and Staff from the store.
#[derive(Clone)]
pub struct OfficeService {
    store: Store,
    access: Access,
}

impl OfficeService {
    /// A service reading `store`, gated by `access`.
    pub fn new(store: Store, access: Access) -> Self {
        Self { store, access }
    }

    /// Offset and limit of an admitted call; a page token this service
    /// did not give ends the call, recorded like any other.
    async fn paged(
        &self,
        admitted: &Admitted,
        token: &str,
        size: u32,
    ) -> Result<(i64, i64), Status> {
        match page(token, size) {
            Ok(paged) => Ok(paged),
            Err(status) => {
                self.access.record(admitted, 0).await?;
                Err(status)
            }
        }
    }
}

/// Offset and limit from a page token and size.
fn page(token: &str, size: u32) -> Result<(i64, i64), Status> {
    let offset = if token.is_empty() {
        0
    } else {
        token
            .parse::<i64>()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| Status::invalid_argument("page_token is not one this service gave"))?
    };
    let size = match size {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    Ok((offset, i64::from(size)))
}

/// Reads one more than a page, to know whether another page follows.
fn next_token<T>(rows: &mut Vec<T>, offset: i64, limit: i64) -> String {
    if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        (offset + limit).to_string()
    } else {
        String::new()
    }
}

fn none_if_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn alert(grant: &Grant, stored: StoredAlert) -> Alert {
    Alert {
        citizen_id: grant.show_id(stored.citizen_id.as_deref().unwrap_or("")),
        alert_id: stored.alert_id,
        kind: stored.kind,
        unit_code: stored.unit_code.unwrap_or_default(),
        evidence: if grant.fields.has(Field::Evidence) {
            stored.evidence
        } else {
            String::new()
        },
        state: stored.state,
        first_seen: stored.first_seen,
        last_seen: stored.last_seen,
        acknowledged_by: stored.acknowledged_by.unwrap_or_default(),
        acknowledged_note: stored.acknowledged_note.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl Alerts for OfficeService {
    async fn list(
        &self,
        request: Request<ListAlertsRequest>,
    ) -> Result<Response<ListAlertsReply>, Status> {
        let admitted = self.access.admit(&request, "Alerts.List", "", "").await?;
        let grant = &admitted.grant;
        let request = request.into_inner();
        if !request.unit_code.is_empty() && !grant.sees_unit(&request.unit_code) {
            self.access.record(&admitted, 0).await?;
            return Err(Status::permission_denied("that unit is not in your scope"));
        }
        let (offset, limit) = self
            .paged(&admitted, &request.page_token, request.page_size)
            .await?;
        let filter = AlertFilter {
            kind: none_if_empty(&request.kind),
            unit_code: none_if_empty(&request.unit_code),
            state: none_if_empty(&request.state),
            offset,
            limit: limit + 1,
        };
        let mut alerts = self
            .store
            .alerts(&filter)
            .await
            .map_err(GatewayError::from)?;
        let next_page_token = next_token(&mut alerts, offset, limit);
        // A scoped department sees its units' alerts only. TODO(scope): a
        // page may then come back short; a unit filter in the query would
        // keep pages full.
        alerts.retain(|a| {
            grant.units.is_none() || a.unit_code.as_deref().is_some_and(|u| grant.sees_unit(u))
        });
        self.access.record(&admitted, alerts.len()).await?;
        info!(department = %grant.department, returned = alerts.len(), "Alerts listed.");
        Ok(Response::new(ListAlertsReply {
            alerts: alerts.into_iter().map(|a| alert(grant, a)).collect(),
            next_page_token,
        }))
    }

    async fn acknowledge(
        &self,
        request: Request<AcknowledgeRequest>,
    ) -> Result<Response<Alert>, Status> {
        let admitted = self
            .access
            .admit(&request, "Alerts.Acknowledge", "", "")
            .await?;
        let grant = &admitted.grant;
        let request = request.into_inner();
        if request.by.trim().is_empty() {
            self.access.record(&admitted, 0).await?;
            return Err(Status::invalid_argument("say who acknowledges (by)"));
        }
        let now = chrono::Utc::now().timestamp_millis();
        let outcome = self
            .store
            .acknowledge_alert(&request.alert_id, &request.by, &request.note, now)
            .await
            .map_err(GatewayError::from)?;
        let changed = usize::from(matches!(outcome, AckOutcome::Done(_)));
        self.access.record(&admitted, changed).await?;
        match outcome {
            AckOutcome::Done(stored) => {
                let alert_id = &stored.alert_id;
                info!(department = %grant.department, %alert_id, "Alert acknowledged.");
                Ok(Response::new(alert(grant, *stored)))
            }
            AckOutcome::NotFound => Err(Status::not_found("no alert has that id")),
            AckOutcome::Resolved => Err(Status::failed_precondition(
                "the alert is resolved: its condition no longer holds",
            )),
        }
    }
}

#[tonic::async_trait]
impl Staff for OfficeService {
    async fn list(
        &self,
        request: Request<ListStaffRequest>,
    ) -> Result<Response<ListStaffReply>, Status> {
        let admitted = self.access.admit(&request, "Staff.List", "", "").await?;
        let grant = &admitted.grant;
        let request = request.into_inner();
        if request.unit_code.is_empty() {
            self.access.record(&admitted, 0).await?;
            return Err(Status::invalid_argument("unit_code is required"));
        }
        if !grant.sees_unit(&request.unit_code) {
            self.access.record(&admitted, 0).await?;
            return Err(Status::permission_denied("that unit is not in your scope"));
        }
        let (offset, limit) = self
            .paged(&admitted, &request.page_token, request.page_size)
            .await?;
        let filter = StaffFilter {
            unit_code: request.unit_code.clone(),
            post_category: none_if_empty(&request.post_category),
            employment_form: none_if_empty(&request.employment_form),
            status: none_if_empty(&request.status),
            offset,
            limit: limit + 1,
        };
        let mut rows = self
            .store
            .staff(&filter)
            .await
            .map_err(GatewayError::from)?;
        let next_page_token = next_token(&mut rows, offset, limit);
        self.access.record(&admitted, rows.len()).await?;
        info!(
            department = %grant.department,
            unit = %request.unit_code,
            returned = rows.len(),
            "Staff listed."
        );
        let staff = rows
            .into_iter()
            .map(|row| StaffMember {
                citizen_id: grant.show_id(&row.citizen_id),
                name: grant.show_name(&row.name),
                unit_code: row.unit_code,
                post_category: row.post_category,
                employment_form: row.employment_form,
                status: row.status,
                hire_date: row.hire_date.unwrap_or_default(),
                contract_end: row.contract_end.unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(ListStaffReply {
            staff,
            next_page_token,
        }))
    }

    async fn count_by_post(
        &self,
        request: Request<CountByPostRequest>,
    ) -> Result<Response<CountByPostReply>, Status> {
        let admitted = self
            .access
            .admit(&request, "Staff.CountByPost", "", "")
            .await?;
        let grant = &admitted.grant;
        let mut counts = self.store.post_counts().await.map_err(GatewayError::from)?;
        counts.retain(|c| grant.sees_unit(&c.unit_code));
        self.access.record(&admitted, counts.len()).await?;
        info!(department = %grant.department, "Post counts read.");
        Ok(Response::new(CountByPostReply {
            counts: counts
                .into_iter()
                .map(|c| PostCount {
                    unit_code: c.unit_code,
                    unit_name: c.unit_name,
                    post_category: c.post_category,
                    active: c.active,
                })
                .collect(),
        }))
    }

    async fn history(
        &self,
        request: Request<HistoryRequest>,
    ) -> Result<Response<HistoryReply>, Status> {
        let admitted = self.access.admit(&request, "Staff.History", "", "").await?;
        let grant = &admitted.grant;
        let id = match CitizenId::parse(&request.get_ref().citizen_id) {
            Ok(id) => id,
            Err(error) => {
                self.access.record(&admitted, 0).await?;
                return Err(Status::invalid_argument(error.to_string()));
            }
        };
        let mut items = self
            .store
            .history_of(id.as_str())
            .await
            .map_err(GatewayError::from)?;
        // Pay and contributions need the pay field; roster rows, pension
        // starts and placements the posts field. A scoped caller sees only
        // items of its units (a pension start, of no unit, is not one).
        items.retain(|item| {
            let field = match item.fact.as_str() {
                "payroll" | "contribution" => Field::LatestPayment,
                _ => Field::Posts,
            };
            let in_scope = match &grant.units {
                None => true,
                Some(units) => units.contains(&item.unit_code),
            };
            grant.fields.has(field) && in_scope
        });
        // A person's history is short next to a unit's staff list, so it
        // is read whole and paged here, keeping every reply far below the
        // message size limit.
        let (offset, limit) = self
            .paged(
                &admitted,
                &request.get_ref().page_token,
                request.get_ref().page_size,
            )
            .await?;
        let mut items: Vec<_> = items.into_iter().skip(offset as usize).collect();
        let next_page_token = next_token(&mut items, offset, limit);
        self.access.record(&admitted, items.len()).await?;
        info!(department = %grant.department, person = %id, items = items.len(), "History read.");
        Ok(Response::new(HistoryReply {
            next_page_token,
            items: items
                .into_iter()
                .map(|item| HistoryItem {
                    source_system: item.source_system,
                    fact: item.fact,
                    unit_code: item.unit_code,
                    when: item.when_text,
                    detail: item.detail,
                    deleted: item.deleted != 0,
                })
                .collect(),
        }))
    }
}
