//! Every call passes here: the caller's rate, the policy's decision, and an
//! audit entry for either outcome before anything is shared.
//!
//! Denials are recorded too (a refused call that cannot be recorded is
//! still refused). An allowed call's entry, naming the fields returned and
//! how many records, is written before its answer leaves: if it cannot be
//! written, the call fails and nothing is shared.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use blockhub_merger::Store;
use blockhub_merger::store::AuditDraft;
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Status};
use tracing::{error, info, warn};

use crate::auth::Caller;
use crate::error::GatewayError;
use crate::policy::{Denial, Grant, Policy};

/// Metadata naming the purpose, for methods whose request has no field
/// for it (Alerts, Staff).
pub const PURPOSE_HEADER: &str = "x-blockhub-purpose";
/// Binary metadata naming the person operating the client, UTF-8 (an
/// operator's name in Chinese travels intact in a -bin header).
pub const OPERATOR_HEADER: &str = "x-blockhub-operator-bin";

/// The policy in force, replaced when its file changes.
pub struct PolicyHandle {
    current: RwLock<Arc<Policy>>,
    path: Option<PathBuf>,
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

fn stamp_of(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl PolicyHandle {
    /// A fixed policy (tests, and a deployment without a policy file).
    pub fn fixed(policy: Policy) -> Self {
        Self {
            current: RwLock::new(Arc::new(policy)),
            path: None,
            stamp: Mutex::new(None),
        }
    }

    /// Loads `path`; later changes to it are picked up by `reload`.
    pub fn from_file(path: &Path) -> Result<Self, GatewayError> {
        let stamp = stamp_of(path);
        let policy = Policy::load(path)?;
        Ok(Self {
            current: RwLock::new(Arc::new(policy)),
            path: Some(path.to_path_buf()),
            stamp: Mutex::new(stamp),
        })
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<Policy> {
        match self.current.read() {
            Ok(policy) => policy.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the file if it changed. Returns whether a new policy took
    /// effect; a broken file is logged with its line and the policy in
    /// force stays.
    pub fn reload(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let stamp = stamp_of(path);
        {
            let Ok(mut seen) = self.stamp.lock() else {
                return false;
            };
            if *seen == stamp {
                return false;
            }
            *seen = stamp;
        }
        match Policy::load(path) {
            Ok(policy) => {
                let departments = policy.departments().count();
                match self.current.write() {
                    Ok(mut current) => *current = Arc::new(policy),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(policy),
                }
                info!(file = %path.display(), departments, "Gateway policy reloaded.");
                true
            }
            Err(error) => {
                let error = blockhub_model::error_chain(&error);
                error!(
                    %error,
                    "Gateway policy file refused; the policy in force stays until it is fixed."
                );
                false
            }
        }
    }

    /// Checks the file every `every` until `stop` resolves.
    pub async fn watch(
        self: Arc<Self>,
        every: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(every) => {}
            }
            let handle = self.clone();
            let _ = tokio::task::spawn_blocking(move || handle.reload()).await;
        }
    }
}

/// Per-department token buckets: `rate` requests per second, bursts of
/// up to one second's worth.
#[derive(Default)]
struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    fn admit(&self, department: &str, rate: u32) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return false;
        };
        let now = Instant::now();
        let capacity = f64::from(rate);
        let (tokens, last) = buckets
            .entry(department.to_string())
            .or_insert((capacity, now));
        let earned = now.duration_since(*last).as_secs_f64() * capacity;
        let refilled = (*tokens + earned).min(capacity);
        *last = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            true
        } else {
            *tokens = refilled;
            false
        }
    }
}

type Pending = (Vec<AuditDraft>, oneshot::Sender<Result<(), String>>);

/// Appends audit entries, many calls' entries to one transaction when
/// calls arrive together (group commit), each caller waiting for its own.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    sender: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Starts the writer over `store`, chaining under `key`.
    pub fn start(store: Store, key: Vec<u8>) -> Self {
        let (sender, mut receiver) = mpsc::channel::<Pending>(4096);
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                while batch.len() < 256 {
                    match receiver.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let drafts: Vec<AuditDraft> = batch
                    .iter()
                    .flat_map(|(drafts, _)| drafts.clone())
                    .collect();
                let outcome = store
                    .append_audit(&key, &drafts)
                    .await
                    .map(|_| ())
                    .map_err(|error| blockhub_model::error_chain(&error));
                if let Err(reason) = &outcome {
                    error!(%reason, entries = drafts.len(), "Audit entries could not be written.");
                }
                for (_, reply) in batch {
                    let _ = reply.send(outcome.clone());
                }
            }
        });
        Self { sender }
    }

    /// Appends `drafts` and waits until they are committed.
    pub async fn write(&self, drafts: Vec<AuditDraft>) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((drafts, reply))
            .await
            .map_err(|_| "the audit writer has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the audit writer has stopped".to_string())?
    }
}

/// A call the policy admitted: what it may see, and the start of its
/// audit entry.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The grant.
    pub grant: Grant,
    draft: AuditDraft,
    unrecorded: Arc<Unrecorded>,
}

/// Records an admitted call that ended without any entry (its caller gave
/// up, or its deadline passed, before it answered): the decision was
/// made, so it is kept too, with nothing shared.
#[derive(Debug)]
struct Unrecorded {
    recorded: std::sync::atomic::AtomicBool,
    draft: AuditDraft,
    audit: AuditWriter,
}

impl Drop for Unrecorded {
    fn drop(&mut self) {
        if self.recorded.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut draft = self.draft.clone();
        draft.at = chrono::Utc::now().timestamp_millis();
        draft.reason = "ended before answering: cancelled, past its deadline, or failed".into();
        let audit = self.audit.clone();
        runtime.spawn(async move {
            if let Err(reason) = audit.write(vec![draft]).await {
                warn!(%reason, "An abandoned call could not be recorded.");
            }
        });
    }
}

/// The gateway's gate: policy, rate limits and audit.
#[derive(Clone)]
pub struct Access {
    policy: Arc<PolicyHandle>,
    limiter: Arc<RateLimiter>,
    audit: AuditWriter,
}

impl Access {
    /// A gate over `policy` writing to `audit`.
    pub fn new(policy: Arc<PolicyHandle>, audit: AuditWriter) -> Self {
        Self {
            policy,
            limiter: Arc::default(),
            audit,
        }
    }

    /// The policy handle.
    pub fn policy(&self) -> &Arc<PolicyHandle> {
        &self.policy
    }

    /// Decides a call. `purpose` and `case_number` come from the request
    /// (empty: none named); for methods without such fields, the purpose
    /// may come from the `x-blockhub-purpose` header.
    pub async fn admit<T>(
        &self,
        request: &Request<T>,
        method: &str,
        purpose: &str,
        case_number: &str,
    ) -> Result<Admitted, Status> {
        let caller = request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("no caller"))?;
        let purpose = if purpose.trim().is_empty() {
            request
                .metadata()
                .get(PURPOSE_HEADER)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .trim()
                .to_string()
        } else {
            purpose.trim().to_string()
        };
        let operator = request
            .metadata()
            .get_bin(OPERATOR_HEADER)
            .and_then(|value| value.to_bytes().ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let mut draft = AuditDraft {
            at: chrono::Utc::now().timestamp_millis(),
            principal: caller.principal.clone(),
            department: caller.department.clone(),
            method: method.to_string(),
            purpose: purpose.clone(),
            // Only a well-formed case number is recorded as one; anything
            // else is kept in the reason of the denial.
            case_number: blockhub_model::canonical_case_number(case_number).unwrap_or_default(),
            operator,
            decision: "denied".into(),
            ..AuditDraft::default()
        };
        let policy = self.policy.current();
        let rate = policy
            .department(&caller.department)
            .map(|entry| entry.rate_per_second);
        if let Some(rate) = rate
            && !self.limiter.admit(&caller.department, rate)
        {
            draft.reason = format!("rate limit of {rate} requests per second exceeded");
            self.record_denial(draft.clone()).await;
            return Err(Status::resource_exhausted(draft.reason));
        }
        match policy.authorize(&caller.department, method, &purpose, case_number) {
            Ok(grant) => {
                draft.decision = "allowed".into();
                draft.fields = grant.fields.describe();
                let unrecorded = Arc::new(Unrecorded {
                    recorded: std::sync::atomic::AtomicBool::new(false),
                    draft: draft.clone(),
                    audit: self.audit.clone(),
                });
                Ok(Admitted {
                    grant,
                    draft,
                    unrecorded,
                })
            }
            Err(denial) => {
                draft.reason = denial.reason().to_string();
                info!(
                    department = %caller.department,
                    %method,
                    reason = %draft.reason,
                    "Call denied."
                );
                self.record_denial(draft).await;
                Err(match denial {
                    Denial::Forbidden(reason) => Status::permission_denied(reason),
                    Denial::Invalid(reason) => Status::invalid_argument(reason),
                })
            }
        }
    }

    /// What `admitted` is granted under the policy in force now: a
    /// long-lived call (a subscription) checks it again as it goes, so
    /// that narrowing or revoking a grant reaches callers already
    /// connected.
    pub fn regrant(&self, admitted: &Admitted) -> Result<Grant, Denial> {
        let draft = &admitted.draft;
        self.policy.current().authorize(
            &draft.department,
            &draft.method,
            &draft.purpose,
            &draft.case_number,
        )
    }

    /// Records that the policy in force no longer allows `admitted` to go
    /// on, and the status that ends it.
    pub async fn revoke(&self, admitted: &Admitted, denial: &Denial) -> Status {
        let mut draft = admitted.draft.clone();
        draft.at = chrono::Utc::now().timestamp_millis();
        draft.decision = "denied".into();
        draft.fields.clear();
        draft.reason = format!("no longer allowed: {}", denial.reason());
        self.record_denial(draft.clone()).await;
        Status::permission_denied(format!(
            "the gateway's policy no longer allows this call: {}",
            denial.reason()
        ))
    }

    async fn record_denial(&self, draft: AuditDraft) {
        if let Err(reason) = self.audit.write(vec![draft]).await {
            warn!(%reason, "A denial could not be recorded; the call is refused all the same.");
        }
    }

    /// Records that `count` records were shared under `admitted`; call it
    /// before the answer leaves. An error means nothing may be shared.
    pub async fn record(&self, admitted: &Admitted, count: usize) -> Result<(), Status> {
        let mut draft = admitted.draft.clone();
        draft.at = chrono::Utc::now().timestamp_millis();
        draft.result_count = count as i64;
        self.audit.write(vec![draft]).await.map_err(|_| {
            Status::unavailable(
                "the call could not be recorded in the audit log; nothing was shared",
            )
        })?;
        admitted
            .unrecorded
            .recorded
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }
}
