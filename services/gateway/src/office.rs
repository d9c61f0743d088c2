//! The staffing office's services: Alerts (List, Acknowledge) and Staff
//! (List, CountByPost, History), read from the store.
//!
//! Only the staffing office and the operator see ID numbers in full and
//! may acknowledge; every other department that holds a token sees IDs
//! masked. (The per-department policy of issue 6 will replace this rule.)

use blockhub_merger::Store;
use blockhub_merger::store::{AckOutcome, AlertFilter, StaffFilter, StoredAlert};
use blockhub_model::CitizenId;
use tonic::{Request, Response, Status};
use tracing::info;

use crate::auth::Caller;
use crate::error::GatewayError;
use crate::proto::alerts_server::Alerts;
use crate::proto::staff_server::Staff;
use crate::proto::{
    AcknowledgeRequest, Alert, CountByPostReply, CountByPostRequest, HistoryItem, HistoryReply,
    HistoryRequest, ListAlertsReply, ListAlertsRequest, ListStaffReply, ListStaffRequest,
    PostCount, StaffMember,
};

/// Departments that see IDs in full and may acknowledge alerts.
const OFFICE: [&str; 2] = ["staffing", "operator"];

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// Serves Alerts and Staff from the store.
#[derive(Clone)]
pub struct OfficeService {
    store: Store,
}

impl OfficeService {
    /// A service reading `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn caller<T>(request: &Request<T>) -> Result<String, Status> {
    request
        .extensions()
        .get::<Caller>()
        .map(|caller| caller.department.clone())
        .ok_or_else(|| Status::unauthenticated("no caller"))
}

/// An ID as `department` may see it.
fn shown_id(department: &str, id: &str) -> String {
    if OFFICE.contains(&department) || id.is_empty() {
        id.to_string()
    } else {
        CitizenId::parse(id).map_or_else(|_| "********".into(), |id| id.masked())
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

fn alert(department: &str, stored: StoredAlert) -> Alert {
    Alert {
        citizen_id: shown_id(department, stored.citizen_id.as_deref().unwrap_or("")),
        alert_id: stored.alert_id,
        kind: stored.kind,
        unit_code: stored.unit_code.unwrap_or_default(),
        evidence: stored.evidence,
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
        let department = caller(&request)?;
        let request = request.into_inner();
        let (offset, limit) = page(&request.page_token, request.page_size)?;
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
        info!(%department, returned = alerts.len(), "Alerts listed.");
        Ok(Response::new(ListAlertsReply {
            alerts: alerts.into_iter().map(|a| alert(&department, a)).collect(),
            next_page_token,
        }))
    }

    async fn acknowledge(
        &self,
        request: Request<AcknowledgeRequest>,
    ) -> Result<Response<Alert>, Status> {
        let department = caller(&request)?;
        if !OFFICE.contains(&department.as_str()) {
            info!(%department, "Acknowledge refused: not the staffing office.");
            return Err(Status::permission_denied(
                "only the staffing office acknowledges alerts",
            ));
        }
        let request = request.into_inner();
        if request.by.trim().is_empty() {
            return Err(Status::invalid_argument("say who acknowledges (by)"));
        }
        let now = chrono::Utc::now().timestamp_millis();
        let outcome = self
            .store
            .acknowledge_alert(&request.alert_id, &request.by, &request.note, now)
            .await
            .map_err(GatewayError::from)?;
        match outcome {
            AckOutcome::Done(stored) => {
                info!(%department, alert = %stored.alert_id, "Alert acknowledged.");
                Ok(Response::new(alert(&department, *stored)))
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
        let department = caller(&request)?;
        let request = request.into_inner();
        if request.unit_code.is_empty() {
            return Err(Status::invalid_argument("unit_code is required"));
        }
        let (offset, limit) = page(&request.page_token, request.page_size)?;
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
        info!(%department, unit = %request.unit_code, returned = rows.len(), "Staff listed.");
        let staff = rows
            .into_iter()
            .map(|row| StaffMember {
                citizen_id: shown_id(&department, &row.citizen_id),
                name: row.name,
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
        let department = caller(&request)?;
        let counts = self.store.post_counts().await.map_err(GatewayError::from)?;
        info!(%department, "Post counts read.");
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
        let department = caller(&request)?;
        if !OFFICE.contains(&department.as_str()) {
            return Err(Status::permission_denied(
                "a person's history is for the staffing office",
            ));
        }
        let id = CitizenId::parse(&request.get_ref().citizen_id)
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        let items = self
            .store
            .history_of(id.as_str())
            .await
            .map_err(GatewayError::from)?;
        info!(%department, person = %id, items = items.len(), "History read.");
        Ok(Response::new(HistoryReply {
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
