//! The gateway's policy, audit chain and identities, against the sample
//! county in a real store behind a real gateway: every department × method
//! × purpose, the court's batch look-ups against truth/, a policy reloaded
//! (and a broken one refused), rate limits, the audit chain tampered with
//! directly in the database, an audit log that cannot be written, and
//! mutual TLS.

use std::collections::BTreeMap;
use std::time::Duration;

use blockhub_gateway::proto::alerts_client::AlertsClient;
use blockhub_gateway::proto::changes_client::ChangesClient;
use blockhub_gateway::proto::person_lookup_client::PersonLookupClient;
use blockhub_gateway::proto::staff_client::StaffClient;
use blockhub_gateway::proto::sync_health_client::SyncHealthClient;
use blockhub_gateway::proto::{
    AcknowledgeRequest, BatchLookupRequest, CountByPostRequest, HealthRequest, HistoryRequest,
    ListAlertsRequest, ListStaffRequest, LookupReply, LookupRequest, SubscribeRequest,
};
use blockhub_merger::{MergerConfig, Store};
use blockhub_tests::{
    Backend, TEST_AUDIT_KEY, TestBroker, TestDatabase, TestGateway, ingest_sample_county, sample,
    wait_caught_up, with_token,
};
use tonic::Code;
use tonic::transport::Channel;

/// Paid in 2026-11 at 11330681777412151D, active there.
const PERSON: &str = "330681198308206157";
/// Active at another unit, 113306810913909981.
const OTHER_PERSON: &str = "330681197307092819";
const PARTNER_UNIT: &str = "11330681777412151D";
const CASE: &str = "（2024）浙0681执4278号";

const MATRIX_POLICY: &str = r#"
[fields]
employer = "unconditional"
provenance = "not_shared"

[departments.court]
rate_per_second = 1000
methods = ["PersonLookup.Lookup", "PersonLookup.BatchLookup"]
[departments.court.purposes.enforcement]
fields = ["employer", "latest_payment"]
require_case = true

[departments.finance]
rate_per_second = 1000
methods = ["PersonLookup.Lookup", "PersonLookup.BatchLookup", "Staff.CountByPost"]
fields = ["employer"]
[departments.finance.purposes.payroll-reconciliation]
fields = ["citizen_id:masked", "name", "employer", "posts", "latest_payment"]

[departments.partner]
rate_per_second = 1000
methods = ["PersonLookup.Lookup", "Staff.List", "Changes.Subscribe"]
units = ["11330681777412151D"]
[departments.partner.purposes.own-staff]
fields = ["citizen_id", "name:masked", "posts"]

[departments.staffing]
rate_per_second = 1000
methods = [
    "PersonLookup.Lookup", "PersonLookup.BatchLookup", "Changes.Subscribe",
    "Alerts.List", "Alerts.Acknowledge",
    "Staff.List", "Staff.CountByPost", "Staff.History",
    "SyncHealth.Get", "SyncHealth.Watch",
]
[departments.staffing.purposes.staff-management]
fields = ["citizen_id", "name", "employer", "posts", "latest_payment", "evidence"]
"#;

const DEPARTMENTS: [&str; 5] = ["court", "finance", "partner", "staffing", "tax"];
const PURPOSES: [&str; 6] = [
    "",
    "enforcement",
    "payroll-reconciliation",
    "own-staff",
    "staff-management",
    "curiosity",
];

/// Every method the gateway serves: a new one joins the matrix, and
/// fails it until `call` knows how to call it and `allowed` says who may.
const METHODS: [&str; 10] = blockhub_gateway::policy::METHODS;

/// What the matrix expects, written out by hand from MATRIX_POLICY: the
/// fields a person look-up returns, or "" for allowed calls that return
/// no person. Every combination not listed must be denied.
fn allowed() -> BTreeMap<(&'static str, &'static str, &'static str), &'static str> {
    let mut allowed = BTreeMap::new();
    for method in ["PersonLookup.Lookup", "PersonLookup.BatchLookup"] {
        allowed.insert(("court", method, "enforcement"), "employer,latest_payment");
        allowed.insert(("finance", method, ""), "employer");
        allowed.insert(
            ("finance", method, "payroll-reconciliation"),
            "citizen_id:masked,name,employer,posts,latest_payment",
        );
        allowed.insert(
            ("staffing", method, "staff-management"),
            "citizen_id,name,employer,posts,latest_payment",
        );
    }
    allowed.insert(("finance", "Staff.CountByPost", ""), "");
    allowed.insert(
        ("finance", "Staff.CountByPost", "payroll-reconciliation"),
        "",
    );
    allowed.insert(
        ("partner", "PersonLookup.Lookup", "own-staff"),
        "citizen_id,name:masked,posts",
    );
    allowed.insert(
        ("partner", "Staff.List", "own-staff"),
        "citizen_id,name:masked",
    );
    // Streams mask exactly as look-ups do.
    allowed.insert(
        ("partner", "Changes.Subscribe", "own-staff"),
        "citizen_id,name:masked,posts",
    );
    allowed.insert(
        ("staffing", "Changes.Subscribe", "staff-management"),
        "citizen_id,name,posts",
    );
    for method in [
        "Alerts.List",
        "Alerts.Acknowledge",
        "Staff.CountByPost",
        "SyncHealth.Get",
        "SyncHealth.Watch",
    ] {
        allowed.insert(("staffing", method, ""), "");
    }
    for method in [
        "Alerts.List",
        "Alerts.Acknowledge",
        "Staff.CountByPost",
        "Staff.History",
        "SyncHealth.Get",
        "SyncHealth.Watch",
    ] {
        allowed.insert(("staffing", method, "staff-management"), "");
    }
    allowed.insert(
        ("staffing", "Staff.List", "staff-management"),
        "citizen_id,name",
    );
    allowed
}

fn token_of(department: &str) -> String {
    format!("{department}-matrix-token")
}

/// The sample county, loaded through a real broker and merger.
async fn loaded_store(
    backend: Backend,
) -> (
    TestBroker,
    blockhub_model::KafkaSettings,
    TestDatabase,
    Store,
) {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    let database = TestDatabase::create(backend).await;
    let store = Store::open(&database.url).await.expect("open store");
    let mut config = MergerConfig::new(settings.clone());
    config.group = format!("{}merger", settings.topic_prefix);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let merger = tokio::spawn(blockhub_merger::run(config.clone(), store.clone(), async {
        let _ = stopped.await;
    }));
    ingest_sample_county(&settings).await;
    wait_caught_up(&config, &store).await;
    let _ = stop.send(());
    merger.await.unwrap().unwrap();
    // Alerts for Alerts.List to show.
    let facts = store.rule_facts().await.unwrap();
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let records: Vec<_> =
        blockhub_rules::evaluate(&facts, as_of, &blockhub_rules::Policy::default())
            .iter()
            .map(|alert| alert.record())
            .collect();
    store.sync_alerts(&records, 1).await.unwrap();
    (broker, settings, database, store)
}

fn request<T>(message: T, department: &str, purpose: &str) -> tonic::Request<T> {
    let mut request = with_token(message, &token_of(department));
    if !purpose.is_empty() {
        request
            .metadata_mut()
            .insert("x-blockhub-purpose", purpose.parse().unwrap());
    }
    request
}

fn lookup_request(id: &str, purpose: &str) -> LookupRequest {
    LookupRequest {
        citizen_id: id.into(),
        provenance: true,
        purpose: purpose.into(),
        case_number: CASE.into(),
    }
}

/// The fields a reply carries, described as the policy names them; an ID
/// or name is "masked" when it is shown but differs from the stored one.
fn describe(reply: &LookupReply, full_id: &str, full_name: &str) -> String {
    let mut fields = Vec::new();
    let shown = |value: &str, full: &str, name: &str| match value {
        "" => None,
        v if v == full => Some(name.to_string()),
        _ => Some(format!("{name}:masked")),
    };
    fields.extend(shown(&reply.citizen_id, full_id, "citizen_id"));
    fields.extend(shown(&reply.name, full_name, "name"));
    if !reply.employers.is_empty() {
        fields.push("employer".into());
    }
    if !reply.posts.is_empty() {
        fields.push("posts".into());
    }
    if reply.latest_payment.is_some() {
        fields.push("latest_payment".into());
    }
    let provenance = reply.posts.iter().any(|p| p.provenance.is_some())
        || reply
            .latest_payment
            .as_ref()
            .is_some_and(|p| p.provenance.is_some());
    assert!(!provenance, "provenance is not shared under this policy");
    if let Some(masked) = reply.citizen_id.find('*') {
        assert_eq!(
            reply.citizen_id,
            format!("{}********{}", &full_id[..6], &full_id[14..])
        );
        assert_eq!(masked, 6);
    }
    fields.join(",")
}

/// Calls `method` as `department` for `purpose`; Ok(fields seen) or the
/// status code of the refusal.
async fn call(
    channel: &Channel,
    department: &str,
    method: &str,
    purpose: &str,
    person: (&str, &str),
) -> Result<String, Code> {
    let (id, name) = person;
    let mut lookups = PersonLookupClient::new(channel.clone());
    let mut staff = StaffClient::new(channel.clone());
    let mut alerts = AlertsClient::new(channel.clone());
    match method {
        "PersonLookup.Lookup" => {
            let mut message = lookup_request(id, purpose);
            if department != "court" {
                message.case_number.clear();
            }
            let reply = lookups
                .lookup(request(message, department, ""))
                .await
                .map_err(|s| s.code())?;
            Ok(describe(reply.get_ref(), id, name))
        }
        "PersonLookup.BatchLookup" => {
            let message = BatchLookupRequest {
                citizen_ids: vec![id.into()],
                provenance: true,
                purpose: purpose.into(),
                case_number: if department == "court" {
                    CASE.into()
                } else {
                    String::new()
                },
            };
            let mut stream = lookups
                .batch_lookup(request(message, department, ""))
                .await
                .map_err(|s| s.code())?
                .into_inner();
            let first = stream
                .message()
                .await
                .map_err(|s| s.code())?
                .expect("one result");
            assert!(stream.message().await.unwrap().is_none());
            assert_eq!(first.outcome, "FOUND");
            Ok(describe(first.reply.as_ref().unwrap(), id, name))
        }
        "Alerts.List" => {
            let message = ListAlertsRequest {
                page_size: 50,
                ..Default::default()
            };
            let reply = alerts
                .list(request(message, department, purpose))
                .await
                .map_err(|s| s.code())?;
            assert!(!reply.get_ref().alerts.is_empty());
            Ok(String::new())
        }
        "Alerts.Acknowledge" => {
            let message = AcknowledgeRequest {
                alert_id: "no-such-alert".into(),
                by: "tester".into(),
                note: String::new(),
            };
            match alerts
                .acknowledge(request(message, department, purpose))
                .await
            {
                Err(status) if status.code() == Code::NotFound => Ok(String::new()),
                Err(status) => Err(status.code()),
                Ok(_) => panic!("acknowledged an alert that does not exist"),
            }
        }
        "Staff.List" => {
            let message = ListStaffRequest {
                unit_code: PARTNER_UNIT.into(),
                page_size: 1000,
                ..Default::default()
            };
            let reply = staff
                .list(request(message, department, purpose))
                .await
                .map_err(|s| s.code())?;
            let member = reply
                .get_ref()
                .staff
                .iter()
                .find(|m| m.citizen_id == id || m.citizen_id.ends_with(&id[14..]))
                .expect("the person in the unit's list");
            let mut fields = Vec::new();
            if !member.citizen_id.is_empty() {
                fields.push(if member.citizen_id == id {
                    "citizen_id"
                } else {
                    "citizen_id:masked"
                });
            }
            if !member.name.is_empty() {
                fields.push(if member.name == name {
                    "name"
                } else {
                    "name:masked"
                });
            }
            Ok(fields.join(","))
        }
        "Changes.Subscribe" => {
            let message = SubscribeRequest {
                unit_codes: vec![PARTNER_UNIT.into()],
                purpose: purpose.into(),
                from_beginning: true,
                heartbeat_seconds: 1,
                ..Default::default()
            };
            let mut stream = ChangesClient::new(channel.clone())
                .subscribe(request(message, department, ""))
                .await
                .map_err(|s| s.code())?
                .into_inner();
            loop {
                let change = stream.message().await.map_err(|s| s.code())?.expect("open");
                assert!(!change.caught_up, "the person's hire never came");
                let shown = &change.citizen_id;
                if shown.starts_with(&id[..6]) && shown.ends_with(&id[14..]) {
                    let mut fields = Vec::new();
                    fields.push(if shown == id {
                        "citizen_id"
                    } else {
                        "citizen_id:masked"
                    });
                    if !change.name.is_empty() {
                        fields.push(if change.name == name {
                            "name"
                        } else {
                            "name:masked"
                        });
                    }
                    if change.post.is_some() {
                        fields.push("posts");
                    }
                    return Ok(fields.join(","));
                }
            }
        }
        "Staff.CountByPost" => {
            let reply = staff
                .count_by_post(request(CountByPostRequest {}, department, purpose))
                .await
                .map_err(|s| s.code())?;
            assert!(!reply.get_ref().counts.is_empty());
            Ok(String::new())
        }
        "Staff.History" => {
            let message = HistoryRequest {
                citizen_id: id.into(),
                ..Default::default()
            };
            let reply = staff
                .history(request(message, department, purpose))
                .await
                .map_err(|s| s.code())?;
            assert!(!reply.get_ref().items.is_empty());
            Ok(String::new())
        }
        "SyncHealth.Get" => {
            let reply = SyncHealthClient::new(channel.clone())
                .get(request(HealthRequest::default(), department, purpose))
                .await
                .map_err(|s| s.code())?;
            assert!(reply.get_ref().sources.len() >= 8);
            Ok(String::new())
        }
        "SyncHealth.Watch" => {
            let mut stream = SyncHealthClient::new(channel.clone())
                .watch(request(HealthRequest::default(), department, purpose))
                .await
                .map_err(|s| s.code())?
                .into_inner();
            let first = stream.message().await.map_err(|s| s.code())?;
            assert!(first.and_then(|change| change.source).is_some());
            Ok(String::new())
        }
        other => panic!("no call for {other}"),
    }
}

async fn matrix(backend: Backend) {
    let (_broker, settings, database, store) = loaded_store(backend).await;
    let tokens: Vec<(String, String)> = DEPARTMENTS
        .iter()
        .map(|d| (d.to_string(), token_of(d)))
        .collect();
    let token_refs: Vec<(&str, &str)> = tokens
        .iter()
        .map(|(d, t)| (d.as_str(), t.as_str()))
        .collect();
    let kafka = settings.clone();
    let gateway = TestGateway::start_with(&store, &token_refs, MATRIX_POLICY, |_, mut options| {
        options.kafka = Some(kafka);
        options
    })
    .await;
    let channel = gateway.channel().await;
    let name = store
        .roster_entries_of(&blockhub_model::CitizenId::parse(PERSON).unwrap())
        .await
        .unwrap()[0]
        .name
        .clone();

    let allowed = allowed();
    let (mut calls, mut denials) = (0, 0);
    for department in DEPARTMENTS {
        for method in METHODS {
            for purpose in PURPOSES {
                let outcome = call(&channel, department, method, purpose, (PERSON, &name)).await;
                calls += 1;
                match allowed.get(&(department, method, purpose)) {
                    Some(fields) => assert_eq!(
                        outcome.as_deref(),
                        Ok(*fields),
                        "{department} {method} {purpose:?}"
                    ),
                    None => {
                        denials += 1;
                        assert_eq!(
                            outcome,
                            Err(Code::PermissionDenied),
                            "{department} {method} {purpose:?} must be denied"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(calls, DEPARTMENTS.len() * METHODS.len() * PURPOSES.len());

    // Every call was recorded, the denials as denials, and the chain holds.
    // A subscription records its opening, then each batch it sends.
    let entries = store.audit_entries(0, 100_000).await.unwrap();
    let denied = entries
        .iter()
        .filter(|e| e.content.decision == "denied")
        .count();
    assert_eq!(denied, denials);
    let batches = entries
        .iter()
        .filter(|e| e.content.method == "Changes.Subscribe" && e.content.result_count > 0)
        .count();
    assert!(
        batches >= 2,
        "each allowed subscription sent at least one batch"
    );
    assert_eq!(entries.len() - batches, calls);
    let report = store.verify_audit(TEST_AUDIT_KEY).await.unwrap();
    assert_eq!(
        (report.verified, report.broken),
        (entries.len() as i64, None)
    );
    let court = entries
        .iter()
        .find(|e| e.content.department == "court" && e.content.decision == "allowed")
        .unwrap();
    assert_eq!(court.content.case_number, CASE);
    assert_eq!(court.content.fields, "employer,latest_payment");
    assert_eq!(court.content.result_count, 1);
    assert!(court.content.principal.starts_with("token:"));

    // Row scope: outside its units, the partner finds nobody, exactly as
    // for an ID nobody holds.
    let mut lookups = PersonLookupClient::new(channel.clone());
    let outside = lookups
        .lookup(request(
            lookup_request(OTHER_PERSON, "own-staff"),
            "partner",
            "",
        ))
        .await
        .unwrap_err();
    assert_eq!(outside.code(), Code::NotFound);
    assert_eq!(outside.message(), "no record in your scope names that ID");
    let mut staff = StaffClient::new(channel.clone());
    let message = ListStaffRequest {
        unit_code: "113306810913909981".into(),
        ..Default::default()
    };
    let other_unit = staff
        .list(request(message, "partner", "own-staff"))
        .await
        .unwrap_err();
    assert_eq!(other_unit.code(), Code::PermissionDenied);

    // The court must name its case, in the court's format.
    let mut no_case = lookup_request(PERSON, "enforcement");
    no_case.case_number.clear();
    let refused = lookups
        .lookup(request(no_case, "court", ""))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("requires a case number"));
    let mut bad_case = lookup_request(PERSON, "enforcement");
    bad_case.case_number = "2024-4278".into();
    let refused = lookups
        .lookup(request(bad_case, "court", ""))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    // A refusal says nothing about the data: the same words for a person
    // on the roster and an ID nobody holds.
    let mut first = lookup_request(PERSON, "curiosity");
    first.case_number.clear();
    let mut second = lookup_request("110101199003074477", "curiosity");
    second.case_number.clear();
    let a = lookups
        .lookup(request(first, "finance", ""))
        .await
        .unwrap_err();
    let b = lookups
        .lookup(request(second, "finance", ""))
        .await
        .unwrap_err();
    assert_eq!(a.message(), b.message());

    // A scoped department paid-by-two-units person: its own unit's latest
    // pay, not nothing. The grant gains latest_payment for this check.
    let pool = sqlx::AnyPool::connect(&database.url).await.unwrap();
    let candidates: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT citizen_id FROM payroll_payments WHERE unit_code = $1 AND \
         citizen_id IN (SELECT citizen_id FROM payroll_payments WHERE unit_code <> $1) \
         ORDER BY citizen_id",
    )
    .bind(PARTNER_UNIT)
    .fetch_all(&pool)
    .await
    .unwrap();
    // One whose latest pay overall came from the other unit.
    let mut shared = None;
    for (id,) in candidates {
        let parsed = blockhub_model::CitizenId::parse(&id).unwrap();
        let latest = store.latest_payment_of(&parsed).await.unwrap().unwrap();
        if latest.unit_code != PARTNER_UNIT {
            shared = Some(id);
            break;
        }
    }
    let shared = shared.expect("the sample county has a person last paid by another unit");
    pool.close().await;
    let with_pay = MATRIX_POLICY.replace(
        r#"fields = ["citizen_id", "name:masked", "posts"]"#,
        r#"fields = ["citizen_id", "name:masked", "posts", "latest_payment"]"#,
    );
    assert_ne!(with_pay, MATRIX_POLICY);
    std::fs::write(&gateway.policy_file, &with_pay).unwrap();
    let started = std::time::Instant::now();
    let scoped = loop {
        let reply = lookups
            .lookup(request(lookup_request(&shared, "own-staff"), "partner", ""))
            .await
            .unwrap()
            .into_inner();
        if !reply.withheld.contains(&"latest_payment".to_string()) {
            break reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "policy never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let paid = scoped.latest_payment.expect("its own unit paid the person");
    assert_eq!(paid.unit_code, PARTNER_UNIT);
    std::fs::write(&gateway.policy_file, MATRIX_POLICY).unwrap();

    // A history comes in pages, each recorded with what it returned.
    let mut staff = StaffClient::new(channel.clone());
    let (mut token, mut pages, mut items) = (String::new(), 0, 0);
    loop {
        let message = HistoryRequest {
            citizen_id: PERSON.into(),
            page_size: 5,
            page_token: token.clone(),
        };
        let reply = staff
            .history(request(message, "staffing", "staff-management"))
            .await
            .unwrap()
            .into_inner();
        assert!(reply.items.len() <= 5);
        pages += 1;
        items += reply.items.len();
        if reply.next_page_token.is_empty() {
            break;
        }
        token = reply.next_page_token;
    }
    let whole = store.history_of(PERSON).await.unwrap().len();
    assert_eq!(items, whole);
    assert_eq!(pages, whole.div_ceil(5));
    let message = HistoryRequest {
        citizen_id: PERSON.into(),
        page_size: 5,
        page_token: "not-a-token".into(),
    };
    let bad = staff
        .history(request(message, "staffing", "staff-management"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    alerts_stream_in_scope(&store, &settings, &channel).await;

    gateway.stop().await;
    database.remove(store).await;
}

/// Alert state changes reach subscribers who asked for them: the whole
/// city for the staffing office, only its own unit for the partner.
async fn alerts_stream_in_scope(
    store: &Store,
    settings: &blockhub_model::KafkaSettings,
    channel: &Channel,
) {
    let producer = settings.producer().unwrap();
    let policy = blockhub_rules::Policy::default();
    let published = blockhub_rules::round(store, &policy, settings, &producer)
        .await
        .unwrap();
    assert!(published > 0);
    let read = |department: &'static str, purpose: &'static str| {
        let channel = channel.clone();
        async move {
            let message = SubscribeRequest {
                kinds: vec!["ALERT".into()],
                purpose: purpose.into(),
                from_beginning: true,
                heartbeat_seconds: 2,
                ..Default::default()
            };
            let mut stream = ChangesClient::new(channel)
                .subscribe(request(message, department, ""))
                .await
                .unwrap()
                .into_inner();
            let mut alerts = Vec::new();
            loop {
                let change = stream.message().await.unwrap().unwrap();
                if change.caught_up {
                    return alerts;
                }
                if change.kind == "HEARTBEAT" {
                    continue;
                }
                assert_eq!(change.kind, "ALERT");
                assert!(!change.alert_kind.is_empty() && !change.alert_state.is_empty());
                alerts.push(change);
            }
        }
    };
    let city = read("staffing", "staff-management").await;
    assert_eq!(city.len(), published);
    assert!(city.iter().any(|a| !a.evidence.is_empty()));
    let own = read("partner", "own-staff").await;
    let expected = city.iter().filter(|a| a.unit_code == PARTNER_UNIT).count();
    assert_eq!(own.len(), expected);
    assert!(
        own.iter()
            .all(|a| a.unit_code == PARTNER_UNIT && a.evidence.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authorisation_matrix_on_sqlite() {
    matrix(Backend::Sqlite).await;
}

/// The court's batch look-up gives, per debtor, exactly truth/'s employer
/// and latest pay, in the order asked; invalid and unknown IDs get their
/// own outcome without stopping the rest; a large batch streams whole.
async fn court_batches(backend: Backend) {
    let (_broker, _settings, database, store) = loaded_store(backend).await;
    let gateway = TestGateway::start(
        &store,
        &[("court", "court-batch-token")],
        blockhub_gateway::DEFAULT_POLICY,
    )
    .await;
    let mut client = PersonLookupClient::new(gateway.channel().await);
    let truth = std::fs::read_to_string(sample("truth/court_lookups.jsonl")).unwrap();
    let expected: Vec<serde_json::Value> = truth
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut ids: Vec<String> = expected
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    ids.push("330681197307092810".into()); // fails its check character
    ids.push("110101199003074477".into()); // valid, held by nobody here
    let message = BatchLookupRequest {
        citizen_ids: ids.clone(),
        provenance: false,
        purpose: "enforcement".into(),
        case_number: expected[0]["case"].as_str().unwrap().into(),
    };
    let mut stream = client
        .batch_lookup(with_token(message, "court-batch-token"))
        .await
        .unwrap()
        .into_inner();
    let mut results = Vec::new();
    while let Some(result) = stream.message().await.unwrap() {
        results.push(result);
    }
    assert_eq!(results.len(), ids.len());
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result.index as usize, index);
    }
    for (result, truth) in results.iter().zip(&expected) {
        assert_eq!(result.outcome, "FOUND");
        let reply = result.reply.as_ref().unwrap();
        let employers: Vec<&str> = reply
            .employers
            .iter()
            .map(|e| e.unit_code.as_str())
            .collect();
        assert_eq!(employers, [truth["employer"].as_str().unwrap()]);
        assert_eq!(reply.withheld, ["citizen_id", "name", "posts"]);
        let payment = reply.latest_payment.as_ref().unwrap();
        assert_eq!(payment.month, truth["latest_pay_month"].as_str().unwrap());
        let net = format!("{:.2}", truth["latest_net_pay"].as_f64().unwrap());
        assert_eq!(payment.net, net);
        assert_eq!((reply.citizen_id.as_str(), reply.name.as_str()), ("", ""));
        assert!(reply.posts.is_empty());
    }
    let n = expected.len();
    assert_eq!(results[n].outcome, "INVALID_ID");
    assert!(results[n].error.contains("check"), "{}", results[n].error);
    assert_eq!(results[n + 1].outcome, "NOT_FOUND");

    // Thousands of IDs in one call: every roster ID, in order.
    let snapshot = store.content_snapshot().await.unwrap();
    let many: Vec<String> = snapshot
        .roster
        .iter()
        .filter_map(|row| row[0].clone())
        .chain(ids.iter().cloned())
        .collect();
    assert!(many.len() > 1500);
    let message = BatchLookupRequest {
        citizen_ids: many.clone(),
        provenance: false,
        purpose: "enforcement".into(),
        case_number: CASE.into(),
    };
    let mut stream = client
        .batch_lookup(with_token(message, "court-batch-token"))
        .await
        .unwrap()
        .into_inner();
    let mut count = 0;
    while let Some(result) = stream.message().await.unwrap() {
        assert_eq!(result.index as usize, count);
        count += 1;
    }
    assert_eq!(count, many.len());
    // Each step of a batch was recorded before it was sent.
    let entries = store.audit_entries(0, 100_000).await.unwrap();
    let steps = entries
        .iter()
        .filter(|e| e.content.method == "PersonLookup.BatchLookup")
        .count();
    assert_eq!(steps, ids.len().div_ceil(100) + many.len().div_ceil(100));
    gateway.stop().await;
    database.remove(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn court_batches_equal_truth_on_sqlite() {
    court_batches(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn court_batches_equal_truth_on_postgres() {
    court_batches(Backend::Postgres).await;
}

/// Editing, deleting and inserting audit entries directly in the database
/// are each caught at the entry concerned.
async fn tamper(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::open(&database.url).await.unwrap();
    let gateway = TestGateway::start(
        &store,
        &[("court", "court-tamper-token")],
        blockhub_gateway::DEFAULT_POLICY,
    )
    .await;
    let mut client = PersonLookupClient::new(gateway.channel().await);
    for _ in 0..10 {
        let mut message = lookup_request(PERSON, "enforcement");
        message.provenance = false;
        let mut request = with_token(message, "court-tamper-token");
        request.metadata_mut().insert_bin(
            "x-blockhub-operator-bin",
            tonic::metadata::MetadataValue::from_bytes("王科长".as_bytes()),
        );
        // An empty store: the person is not found, and that is recorded.
        let status = client.lookup(request).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
    gateway.stop().await;
    let entries = store.audit_entries(0, 100).await.unwrap();
    assert_eq!(entries.len(), 10);
    assert!(entries.iter().all(|e| e.content.operator == "王科长"));
    assert!(
        entries
            .iter()
            .all(|e| e.content.result_count == 0 && e.content.decision == "allowed")
    );
    let intact = store.verify_audit(TEST_AUDIT_KEY).await.unwrap();
    assert_eq!((intact.verified, intact.broken), (10, None));
    // Under another key, the first entry already fails.
    let other = store.verify_audit(b"another key").await.unwrap();
    assert_eq!(other.broken.unwrap().seq, 1);

    let pool = sqlx::AnyPool::connect(&database.url).await.unwrap();
    let exec = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query(sql).execute(&pool).await.unwrap() }
    };

    // Edited: entry 4 now claims no fields were returned.
    exec("UPDATE audit_log SET fields = '' WHERE seq = 4").await;
    let broken = store.verify_audit(TEST_AUDIT_KEY).await.unwrap();
    let at = broken.broken.unwrap();
    assert_eq!((broken.verified, at.seq), (3, 4), "{}", at.reason);
    assert!(at.reason.contains("altered"), "{}", at.reason);
    exec("UPDATE audit_log SET fields = 'employer,latest_payment' WHERE seq = 4").await;
    assert_eq!(
        store.verify_audit(TEST_AUDIT_KEY).await.unwrap().broken,
        None
    );

    // Deleted: entry 6 is gone.
    let saved = &entries[5];
    exec("DELETE FROM audit_log WHERE seq = 6").await;
    let at = store
        .verify_audit(TEST_AUDIT_KEY)
        .await
        .unwrap()
        .broken
        .unwrap();
    assert_eq!(at.seq, 6);
    assert!(at.reason.contains("entry 6 is missing"), "{}", at.reason);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, principal, department, method, purpose, \
         case_number, operator, decision, reason, fields, result_count, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(saved.seq)
    .bind(saved.content.at)
    .bind(&saved.content.principal)
    .bind(&saved.content.department)
    .bind(&saved.content.method)
    .bind(&saved.content.purpose)
    .bind(&saved.content.case_number)
    .bind(&saved.content.operator)
    .bind(&saved.content.decision)
    .bind(&saved.content.reason)
    .bind(&saved.content.fields)
    .bind(saved.content.result_count)
    .bind(&saved.prev_hash)
    .bind(&saved.hash)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        store.verify_audit(TEST_AUDIT_KEY).await.unwrap().broken,
        None
    );

    // Inserted: entries after 7 move up one and a forged entry takes 8,
    // chained to 7's hash but without the key.
    exec("UPDATE audit_log SET seq = -seq WHERE seq > 7").await;
    exec("UPDATE audit_log SET seq = 1 - seq WHERE seq < 0").await;
    let forged = blockhub_merger::store::chain_hash(
        b"guessed key",
        8,
        &entries[6].hash,
        &entries[6].content,
    );
    sqlx::query(
        "INSERT INTO audit_log (seq, at, principal, department, method, purpose, \
         case_number, operator, decision, reason, fields, result_count, prev_hash, hash) \
         VALUES (8, 0, 'token:x', 'court', 'PersonLookup.Lookup', '', '', '', 'allowed', \
         '', '', 0, $1, $2)",
    )
    .bind(&entries[6].hash)
    .bind(&forged)
    .execute(&pool)
    .await
    .unwrap();
    let at = store
        .verify_audit(TEST_AUDIT_KEY)
        .await
        .unwrap()
        .broken
        .unwrap();
    assert_eq!(at.seq, 8, "{}", at.reason);
    assert!(
        at.reason.contains("does not match its hash"),
        "{}",
        at.reason
    );

    pool.close().await;
    database.remove(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_tampering_is_found_on_sqlite() {
    tamper(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_tampering_is_found_on_postgres() {
    tamper(Backend::Postgres).await;
}

/// A changed policy takes effect without a restart; a broken one is
/// refused and the one in force stays; rates are limited per department;
/// and when the audit log cannot be written, nothing is shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn policy_reloads_limits_and_unrecordable_calls() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let store = Store::open(&database.url).await.unwrap();
    let gateway = TestGateway::start(
        &store,
        &[("court", "court-reload-token")],
        blockhub_gateway::DEFAULT_POLICY,
    )
    .await;
    let mut client = PersonLookupClient::new(gateway.channel().await);
    let ask = |client: &mut PersonLookupClient<Channel>| {
        let mut client = client.clone();
        async move {
            let message = lookup_request(PERSON, "enforcement");
            match client
                .lookup(with_token(message, "court-reload-token"))
                .await
            {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            }
        }
    };
    let wait_for = |client: PersonLookupClient<Channel>, code: Code| async move {
        let mut client = client;
        let started = std::time::Instant::now();
        loop {
            if ask(&mut client).await == code {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "never {code:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert_eq!(ask(&mut client).await, Code::NotFound);

    // The court loses BatchLookup and Lookup: denied from the next check.
    let narrowed = blockhub_gateway::DEFAULT_POLICY.replace(
        "[departments.court]\nmethods = [\"PersonLookup.Lookup\", \"PersonLookup.BatchLookup\"]",
        "[departments.court]\nmethods = []",
    );
    assert_ne!(narrowed, blockhub_gateway::DEFAULT_POLICY);
    std::fs::write(&gateway.policy_file, &narrowed).unwrap();
    wait_for(client.clone(), Code::PermissionDenied).await;

    // A broken file that would grant it again is refused: still denied.
    let broken = format!(
        "{}\n[departments.court.purposes.x]\nfields = [\"salary\"]\n",
        blockhub_gateway::DEFAULT_POLICY
    );
    std::fs::write(&gateway.policy_file, broken).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ask(&mut client).await, Code::PermissionDenied);
    // Fixed: allowed again.
    std::fs::write(&gateway.policy_file, blockhub_gateway::DEFAULT_POLICY).unwrap();
    wait_for(client.clone(), Code::NotFound).await;

    // Two calls a second: a burst of twenty is mostly refused.
    let limited = blockhub_gateway::DEFAULT_POLICY.replace(
        "methods = [\"PersonLookup.Lookup\", \"PersonLookup.BatchLookup\"]\nrate_per_second = 50",
        "methods = [\"PersonLookup.Lookup\", \"PersonLookup.BatchLookup\"]\nrate_per_second = 2",
    );
    assert_ne!(limited, blockhub_gateway::DEFAULT_POLICY);
    std::fs::write(&gateway.policy_file, &limited).unwrap();
    wait_for(client.clone(), Code::ResourceExhausted).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut codes = Vec::new();
    for _ in 0..20 {
        codes.push(ask(&mut client).await);
    }
    let refused = codes
        .iter()
        .filter(|c| **c == Code::ResourceExhausted)
        .count();
    assert!((15..=19).contains(&refused), "{codes:?}");
    let limits = store
        .audit_entries(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.content.reason.contains("rate limit of 2"))
        .count();
    assert!(limits >= refused);
    std::fs::write(&gateway.policy_file, blockhub_gateway::DEFAULT_POLICY).unwrap();
    wait_for(client.clone(), Code::NotFound).await;

    // The audit log refuses writes: the call fails, nothing is shared.
    let pool = sqlx::AnyPool::connect(&database.url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER audit_full BEFORE INSERT ON audit_log \
         BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(&pool)
    .await
    .unwrap();
    let message = lookup_request(PERSON, "enforcement");
    let status = client
        .lookup(with_token(message, "court-reload-token"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("audit"), "{}", status.message());
    sqlx::query("DROP TRIGGER audit_full")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(ask(&mut client).await, Code::NotFound);
    assert_eq!(
        store.verify_audit(TEST_AUDIT_KEY).await.unwrap().broken,
        None
    );

    pool.close().await;
    gateway.stop().await;
    database.remove(store).await;
}

/// Runs openssl in `dir`; the test certificates are made fresh each run
/// and never kept.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A key and a certificate signed by `ca` (a self-signed CA when `ca` is
/// None) under `name` in `dir`.
fn certificate(dir: &std::path::Path, name: &str, ca: Option<&str>, extensions: &str) {
    let key = format!("{name}.key");
    let cert = format!("{name}.pem");
    let subject = format!("/CN={name}");
    let curve = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    match ca {
        None => {
            let mut args = vec!["req", "-x509"];
            args.extend(curve);
            args.extend([
                "-keyout", &key, "-out", &cert, "-days", "2", "-subj", &subject,
            ]);
            openssl(dir, &args);
        }
        Some(ca) => {
            let csr = format!("{name}.csr");
            let ext = format!("{name}.ext");
            std::fs::write(dir.join(&ext), extensions).unwrap();
            let mut args = vec!["req"];
            args.extend(curve);
            args.extend(["-keyout", &key, "-out", &csr, "-subj", &subject]);
            openssl(dir, &args);
            let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    &ca_cert,
                    "-CAkey",
                    &ca_key,
                    "-CAcreateserial",
                    "-out",
                    &cert,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
    }
}

async fn tls_channel(
    address: std::net::SocketAddr,
    dir: &std::path::Path,
    client: Option<&str>,
) -> Result<Channel, tonic::transport::Error> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let ca = std::fs::read(dir.join("test-ca.pem")).unwrap();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(name) = client {
        let cert = std::fs::read(dir.join(format!("{name}.pem"))).unwrap();
        let key = std::fs::read(dir.join(format!("{name}.key"))).unwrap();
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
}

/// A client certificate pinned to a department acts for it without a
/// token; one the CA signed but nobody pinned, or one from another CA, is
/// refused; tokens still work over TLS; plain TCP does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutual_tls_identifies_departments() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let store = Store::open(&database.url).await.unwrap();
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    let server_ext = "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
                      extendedKeyUsage=serverAuth\n";
    let client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
    certificate(dir, "test-ca", None, "");
    certificate(dir, "other-ca", None, "");
    certificate(dir, "gateway", Some("test-ca"), server_ext);
    certificate(dir, "court-client", Some("test-ca"), client_ext);
    certificate(dir, "stray-client", Some("test-ca"), client_ext);
    certificate(dir, "foreign-client", Some("other-ca"), client_ext);
    let pem = std::fs::read_to_string(dir.join("court-client.pem")).unwrap();
    let fingerprint = blockhub_gateway::tls::pem_fingerprint(&pem).unwrap();

    let paths = dir.to_path_buf();
    let gateway = TestGateway::start_with(
        &store,
        &[("court", "court-tls-token")],
        blockhub_gateway::DEFAULT_POLICY,
        move |_, mut options| {
            options.tokens.pin_certificate("court", &fingerprint);
            options.tls = Some(blockhub_gateway::TlsFiles {
                cert: paths.join("gateway.pem"),
                key: paths.join("gateway.key"),
                client_ca: Some(paths.join("test-ca.pem")),
            });
            options
        },
    )
    .await;
    let ask = |channel: Channel, token: Option<&str>| {
        let token = token.map(str::to_string);
        async move {
            let message = lookup_request(PERSON, "enforcement");
            let request = match &token {
                Some(token) => with_token(message, token),
                None => tonic::Request::new(message),
            };
            match PersonLookupClient::new(channel).lookup(request).await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            }
        }
    };

    // The pinned certificate acts for the court: allowed (nobody is in
    // this empty store, so the answer is NOT_FOUND, recorded as allowed).
    let court = tls_channel(gateway.address, dir, Some("court-client"))
        .await
        .unwrap();
    assert_eq!(ask(court, None).await, Code::NotFound);
    let entries = store.audit_entries(0, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].content.department, "court");
    assert!(
        entries[0].content.principal.starts_with("cert:"),
        "{}",
        entries[0].content.principal
    );
    // Signed by the CA but pinned to nobody: no department.
    let stray = tls_channel(gateway.address, dir, Some("stray-client"))
        .await
        .unwrap();
    assert_eq!(ask(stray.clone(), None).await, Code::Unauthenticated);
    // ... though its holder may still present a token.
    assert_eq!(ask(stray, Some("court-tls-token")).await, Code::NotFound);
    // No certificate: a token over TLS.
    let plain = tls_channel(gateway.address, dir, None).await.unwrap();
    assert_eq!(ask(plain.clone(), None).await, Code::Unauthenticated);
    assert_eq!(ask(plain, Some("court-tls-token")).await, Code::NotFound);
    // Another CA's certificate fails the handshake: the call never
    // reaches the service (no audit entry), whatever the client library
    // calls the failure.
    let before = store.audit_entries(0, 100).await.unwrap().len();
    let foreign = match tls_channel(gateway.address, dir, Some("foreign-client")).await {
        Ok(channel) => ask(channel, Some("court-tls-token")).await,
        Err(_) => Code::Unavailable,
    };
    // (Unavailable or Unknown mostly; Cancelled when the handshake fails
    // while the channel is still connecting, seen in CI under load.)
    assert!(
        !matches!(
            foreign,
            Code::Ok | Code::NotFound | Code::Unauthenticated | Code::PermissionDenied
        ),
        "{foreign:?}"
    );
    assert_eq!(store.audit_entries(0, 100).await.unwrap().len(), before);
    // Plain TCP to the TLS port gets nowhere.
    let cleartext = match Channel::from_shared(format!("http://{}", gateway.address))
        .unwrap()
        .connect()
        .await
    {
        Ok(channel) => ask(channel, Some("court-tls-token")).await,
        Err(_) => Code::Unavailable,
    };
    // Any transport failure will do; no answer from the service may come.
    assert!(
        !matches!(
            cleartext,
            Code::Ok | Code::NotFound | Code::Unauthenticated | Code::PermissionDenied
        ),
        "{cleartext:?}"
    );
    assert_eq!(store.audit_entries(0, 100).await.unwrap().len(), before);

    gateway.stop().await;
    database.remove(store).await;
}

/// A subscriber cut off in the middle of the roster's burst of 1,603
/// changes resumes with the last cursor it received and gets every change
/// exactly once, although hundreds of them share a timestamp; cursors that
/// do not fit the topics are refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscriptions_resume_without_gap_or_duplicate() {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    let database = TestDatabase::create(Backend::Sqlite).await;
    let store = Store::open(&database.url).await.unwrap();
    let kafka = settings.clone();
    let gateway = TestGateway::start_with(
        &store,
        &[("staffing", "staffing-sub-token")],
        blockhub_gateway::DEFAULT_POLICY,
        |_, mut options| {
            options.kafka = Some(kafka);
            options
        },
    )
    .await;
    let channel = gateway.channel().await;
    let subscribe = |cursor: String| {
        let channel = channel.clone();
        async move {
            let message = SubscribeRequest {
                purpose: "staff-management".into(),
                cursor,
                heartbeat_seconds: 1,
                ..Default::default()
            };
            ChangesClient::new(channel)
                .subscribe(with_token(message, "staffing-sub-token"))
                .await
        }
    };

    // Subscribed from now, before anything is published; then the burst.
    let mut first = subscribe(String::new()).await.unwrap().into_inner();
    let publish = settings.clone();
    let ingest = tokio::spawn(async move {
        blockhub_connector::ingest(
            blockhub_connector::SourceKind::Roster,
            &[sample("staffing/roster.xlsx")],
            &publish,
            blockhub_tests::test_keyer(),
            &Default::default(),
        )
        .await
        .unwrap()
    });
    let (mut seen, mut stamps, mut cursor) = (Vec::new(), Vec::new(), String::new());
    while seen.len() < 300 {
        let change = first.message().await.unwrap().expect("stream open");
        if change.kind != "HEARTBEAT" {
            seen.push(change.event_id.clone());
            stamps.push(change.observed_at.clone());
        }
        cursor = change.cursor;
    }
    // Cut off: the client goes away with changes still to come.
    drop(first);
    let mut second = subscribe(cursor).await.unwrap().into_inner();
    let published = ingest.await.unwrap().total().published as usize;
    assert_eq!(published, 1603);
    let mut last_cursor;
    loop {
        let change = second.message().await.unwrap().expect("stream open");
        last_cursor = change.cursor.clone();
        if change.kind == "HEARTBEAT" {
            if change.caught_up {
                break;
            }
            continue;
        }
        assert!(["HIRE", "DEPARTURE", "CHANGE"].contains(&change.kind.as_str()));
        seen.push(change.event_id);
        stamps.push(change.observed_at);
    }
    assert_eq!(seen.len(), published, "a change was repeated or lost");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), published, "a change came twice");
    let mut shared = stamps.clone();
    shared.sort();
    shared.dedup();
    assert!(
        shared.len() < stamps.len() / 2,
        "the burst should share timestamps"
    );

    // Resuming at the end gives nothing but heartbeats.
    let mut quiet = subscribe(last_cursor.clone()).await.unwrap().into_inner();
    let beat = quiet.message().await.unwrap().unwrap();
    assert_eq!(
        (beat.kind.as_str(), beat.cursor.as_str()),
        ("HEARTBEAT", last_cursor.as_str())
    );

    // The policy withdraws the method: the open stream ends, on record.
    let withdrawn = blockhub_gateway::DEFAULT_POLICY.replace(
        "[departments.staffing]\nmethods = [\n    \"PersonLookup.Lookup\", \
         \"PersonLookup.BatchLookup\", \"Changes.Subscribe\",",
        "[departments.staffing]\nmethods = [\n    \"PersonLookup.Lookup\", \
         \"PersonLookup.BatchLookup\",",
    );
    assert_ne!(withdrawn, blockhub_gateway::DEFAULT_POLICY);
    std::fs::write(&gateway.policy_file, &withdrawn).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match quiet.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without saying why"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the stream ends once the policy withdraws it");
    assert_eq!(ended.code(), Code::PermissionDenied);
    assert!(
        ended.message().contains("no longer allows"),
        "{}",
        ended.message()
    );
    let revoked = store.audit_entries(0, 100_000).await.unwrap();
    assert!(
        revoked
            .iter()
            .any(|e| e.content.reason.starts_with("no longer allowed"))
    );
    std::fs::write(&gateway.policy_file, blockhub_gateway::DEFAULT_POLICY).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Cursors that do not fit: another layout, a position never reached,
    // something invented.
    let refused = |cursor: &str| {
        let subscribe = &subscribe;
        let cursor = cursor.to_string();
        async move { subscribe(cursor).await.unwrap_err() }
    };
    let layout = refused("c1:r=5;a=0").await;
    assert_eq!(layout.code(), Code::FailedPrecondition);
    assert!(
        layout.message().contains("re-read a snapshot"),
        "{}",
        layout.message()
    );
    let ahead = refused("c1:r=99999,0,0;a=0,0,0").await;
    assert_eq!(ahead.code(), Code::InvalidArgument);
    let junk = refused("yesterday").await;
    assert_eq!(junk.code(), Code::InvalidArgument);

    gateway.stop().await;
    database.remove(store).await;
}

/// A caller's deadline reaches the database: a look-up stuck behind a
/// lock fails with DEADLINE_EXCEEDED, and PostgreSQL is left with no query
/// of it still waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deadlines_stop_their_query_on_postgres() {
    use sqlx::Connection;
    let database = TestDatabase::create(Backend::Postgres).await;
    let store = Store::open(&database.url).await.unwrap();
    let gateway = TestGateway::start(
        &store,
        &[("court", "court-deadline-token")],
        blockhub_gateway::DEFAULT_POLICY,
    )
    .await;
    let mut client = PersonLookupClient::new(gateway.channel().await);
    let mut locker = sqlx::AnyConnection::connect(&database.url).await.unwrap();
    let mut held = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE roster_entries IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *held)
        .await
        .unwrap();

    let mut request = with_token(
        lookup_request(PERSON, "enforcement"),
        "court-deadline-token",
    );
    request.set_timeout(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let status = client.lookup(request).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let watcher = sqlx::AnyPool::connect(&database.url).await.unwrap();
    let waiting = || {
        let watcher = watcher.clone();
        async move {
            let (count,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&watcher)
            .await
            .unwrap();
            count
        }
    };
    let mut left = waiting().await;
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while left > 0 && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = waiting().await;
    }
    assert_eq!(left, 0, "the abandoned look-up still waits in PostgreSQL");
    // The decision was made, so it is on record, with nothing shared.
    let mut entries = Vec::new();
    for _ in 0..50 {
        entries = store.audit_entries(0, 10).await.unwrap();
        if !entries.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].content.decision, "allowed");
    assert_eq!(entries[0].content.result_count, 0);
    assert!(
        entries[0].content.reason.contains("before answering"),
        "{}",
        entries[0].content.reason
    );

    held.rollback().await.unwrap();
    let answer = client
        .lookup(with_token(
            lookup_request(PERSON, "enforcement"),
            "court-deadline-token",
        ))
        .await
        .unwrap_err();
    assert_eq!(answer.code(), Code::NotFound);
    watcher.close().await;
    locker.close().await.unwrap();
    gateway.stop().await;
    database.remove(store).await;
}
