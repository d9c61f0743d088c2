//! The walking skeleton end to end: the sample county's quota, roster and
//! payroll exports through a real broker and merger into each store
//! backend, answered by the gateway exactly as truth/ says.

use std::time::Duration;

use blockhub_gateway::DEFAULT_POLICY;
use blockhub_gateway::proto::LookupRequest;
use blockhub_gateway::proto::person_lookup_client::PersonLookupClient;
use blockhub_merger::{MergerConfig, Store};
use blockhub_model::{CitizenId, KafkaSettings};
use blockhub_tests::{
    Backend, TestBroker, TestDatabase, TestGateway, ingest_sample_county, sample, wait_caught_up,
};
use tokio::sync::oneshot;
use tonic::Code;

const COURT_TOKEN: &str = "court-test-token-5b1e";
const STAFFING_TOKEN: &str = "staffing-test-token-77c2";

/// A court look-up for `case`, or a staffing-office one when `case` is
/// empty, under the shipped policy's purposes.
fn authorised(id: &str, token: Option<&str>, case: &str) -> tonic::Request<LookupRequest> {
    let purpose = if case.is_empty() {
        "staff-management"
    } else {
        "enforcement"
    };
    let mut request = tonic::Request::new(LookupRequest {
        citizen_id: id.to_string(),
        provenance: false,
        purpose: purpose.into(),
        case_number: case.into(),
    });
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

async fn sample_county_end_to_end(backend: Backend) {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    let database = TestDatabase::create(backend).await;
    let store = Store::open(&database.url).await.expect("open store");

    let mut config = MergerConfig::new(settings.clone());
    config.group = format!("{}merger", settings.topic_prefix);
    let (stop_merger, merger_stopped) = oneshot::channel::<()>();
    let merger = tokio::spawn(blockhub_merger::run(config.clone(), store.clone(), async {
        let _ = merger_stopped.await;
    }));

    let gateway = TestGateway::start(
        &store,
        &[("court", COURT_TOKEN), ("staffing", STAFFING_TOKEN)],
        DEFAULT_POLICY,
    )
    .await;

    // Ingest, and check what the connector reports.
    let reports = ingest_sample_county(&settings).await;
    let payroll = reports["payroll"].total();
    assert_eq!(payroll.rejected, 3);
    assert_eq!(
        payroll.rejected_by_reason.get("ID_CHECK_CHAR_MISMATCH"),
        Some(&3)
    );
    assert_eq!(payroll.published, 4777);
    assert_eq!(reports["roster"].total().published, 1603);
    assert_eq!(reports["roster"].total().skipped_totals, 1);
    assert_eq!(reports["quota"].total().published, 20);
    wait_caught_up(&config, &store).await;

    // Everything good is stored; the invalid rows are dead letters.
    let (units, roster, payments, dead_letters) = store.counts().await.unwrap();
    assert_eq!((units, roster, payments, dead_letters), (20, 1603, 4777, 3));
    let snapshot = store.content_snapshot().await.unwrap();
    // Contributions keyed with legacy 15-digit IDs land on 18-digit keys.
    assert_eq!(reports["contributions"].total().published, 4636);
    assert_eq!(snapshot.contributions.len(), 4636);
    assert!(snapshot.contributions.iter().all(|c| c.0.len() == 18));
    // Every other department's file loads whole: one fact per data line.
    let counts = store.live_fact_counts().await.unwrap();
    for (report, table, file) in [
        (
            "retirements",
            "pension_starts",
            "social_security/retirements.csv",
        ),
        (
            "court-cases",
            "enforcement_cases",
            "court/enforcement_cases.csv",
        ),
        (
            "placements",
            "veteran_placements",
            "veterans/placements.csv",
        ),
        (
            "purchases",
            "purchased_services",
            "finance/purchase_services.csv",
        ),
    ] {
        let lines = std::fs::read(sample(file)).unwrap();
        let data_lines = lines
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
            - 1;
        let total = reports[report].total();
        assert_eq!(
            (total.published, total.rejected),
            (data_lines as u64, 0),
            "{file}"
        );
        assert_eq!(counts[table], data_lines as i64, "{table}");
    }
    let truth = std::fs::read_to_string(sample("truth/invalid_rows.jsonl")).unwrap();
    for line in truth.lines() {
        let invalid: serde_json::Value = serde_json::from_str(line).unwrap();
        let raw_id = invalid["id"].as_str().unwrap();
        assert!(CitizenId::parse(raw_id).is_err());
        assert!(
            !snapshot.payments.iter().any(|p| p.0 == raw_id),
            "invalid row stored"
        );
    }
    assert!(
        snapshot
            .dead_letters
            .iter()
            .all(|d| d.3 == "ID_CHECK_CHAR_MISMATCH")
    );

    // The court's look-ups give exactly the employer and latest net pay.
    let mut client = PersonLookupClient::new(gateway.channel().await);
    let truth = std::fs::read_to_string(sample("truth/court_lookups.jsonl")).unwrap();
    let mut checked = 0;
    for line in truth.lines() {
        let expected: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = expected["id"].as_str().unwrap();
        let case = expected["case"].as_str().unwrap();
        let reply = client
            .lookup(authorised(id, Some(COURT_TOKEN), case))
            .await
            .unwrap()
            .into_inner();
        // What `blockhub lookup --json` prints for the person.
        let printed = blockhub::commands::lookup::reply_json(&reply);
        assert_eq!(
            printed["employers"],
            serde_json::json!([expected["employer"]]),
            "{id}"
        );
        let payment = reply.latest_payment.expect("a payment");
        assert!(
            payment.provenance.is_none(),
            "provenance only when asked for"
        );
        assert_eq!(
            payment.month,
            expected["latest_pay_month"].as_str().unwrap()
        );
        let expected_net = format!("{:.2}", expected["latest_net_pay"].as_f64().unwrap());
        assert_eq!(payment.net, expected_net, "{id}");
        // The court's purpose grants employer and pay, nothing else.
        assert_eq!((reply.citizen_id.as_str(), reply.name.as_str()), ("", ""));
        assert!(reply.posts.is_empty());
        checked += 1;
    }
    assert_eq!(checked, 31);

    // People paid but not on that unit's roster still show a name and the
    // paying unit's name, from the payroll or else the quota list.
    let alerts = std::fs::read_to_string(sample("truth/alerts.jsonl")).unwrap();
    for line in alerts
        .lines()
        .filter(|line| line.contains("PAID_NOT_ON_ROSTER"))
    {
        let alert: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = alert["id"].as_str().unwrap();
        let reply = client
            .lookup(authorised(id, Some(STAFFING_TOKEN), ""))
            .await
            .unwrap()
            .into_inner();
        assert!(!reply.name.is_empty(), "{id}");
        let payment = reply.latest_payment.expect("paid people have a payment");
        assert!(!payment.unit_name.is_empty(), "{id}");
    }

    // Callers without a known token are refused before anything is read.
    let id = "330681197307092819";
    let case = "（2026）浙0681执3385号";
    let missing = client.lookup(authorised(id, None, case)).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    let unknown = client
        .lookup(authorised(id, Some("guess"), case))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    let invalid = client
        .lookup(authorised("330681197307092810", Some(COURT_TOKEN), case))
        .await;
    assert_eq!(invalid.unwrap_err().code(), Code::InvalidArgument);

    rules_match_the_truth(&store, &database.url).await;

    // Ingesting the same files again publishes nothing and leaves the
    // content unchanged.
    let again = ingest_sample_county(&settings).await;
    for (name, report) in &again {
        let total = report.total();
        assert_eq!(total.published, 0, "{name} published again");
        assert_eq!(total.unchanged, reports[name].total().published, "{name}");
        assert_eq!(report.deleted, 0, "{name}");
    }
    wait_caught_up(&config, &store).await;
    assert_eq!(store.content_snapshot().await.unwrap(), snapshot);

    a_stale_export_read_late_changes_nothing(&settings, &store, &config).await;
    rebuild_ends_identical(&settings, &store, &config.group, backend).await;

    let _ = stop_merger.send(());
    gateway.stop().await;
    tokio::time::timeout(Duration::from_secs(30), merger)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    database.remove(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sample_county_end_to_end_on_sqlite() {
    sample_county_end_to_end(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sample_county_end_to_end_on_postgres() {
    sample_county_end_to_end(Backend::Postgres).await;
}

/// The alerts and reports as of the sample's date equal truth/ exactly.
async fn rules_match_the_truth(store: &Store, url: &str) {
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let facts = store.rule_facts().await.unwrap();
    let policy = blockhub_rules::Policy::default();

    let computed: std::collections::BTreeSet<(String, String, String)> =
        blockhub_rules::evaluate(&facts, as_of, &policy)
            .into_iter()
            .map(|a| {
                (
                    a.kind.code().to_string(),
                    a.citizen_id.unwrap_or_default(),
                    a.unit_code.unwrap_or_default(),
                )
            })
            .collect();
    let truth_text = std::fs::read_to_string(sample("truth/alerts.jsonl")).unwrap();
    let truth: std::collections::BTreeSet<(String, String, String)> = truth_text
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let field = |name: &str| value[name].as_str().unwrap_or_default().to_string();
            (field("kind"), field("id"), field("unit"))
        })
        .collect();
    let missing: Vec<_> = truth.difference(&computed).collect();
    let extra: Vec<_> = computed.difference(&truth).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "alerts differ from truth: missing {missing:?}, extra {extra:?}"
    );

    let reports = blockhub_rules::unit_reports(&facts, as_of, &policy);
    let reports = serde_json::to_value(&reports).unwrap();
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sample("truth/reports.json")).unwrap())
            .unwrap();
    assert_eq!(reports, truth, "reports differ from truth");

    staff_queries_agree_with_the_reports(store, &truth).await;
    alerts_keep_their_state(store, url, &facts, as_of).await;
    workbook_reads_back(url, as_of, &truth).await;
}

/// Alerts kept in the store: opened once, an acknowledgement surviving a
/// reopened store and re-evaluation, resolved when the condition clears
/// and reopened when it returns.
async fn alerts_keep_their_state(
    store: &Store,
    url: &str,
    facts: &blockhub_merger::store::RuleFacts,
    as_of: chrono::NaiveDate,
) {
    use blockhub_merger::store::{AckOutcome, AlertFilter};
    let records: Vec<_> = blockhub_rules::evaluate(facts, as_of, &Default::default())
        .iter()
        .map(|a| a.record())
        .collect();
    let sync = store.sync_alerts(&records, 1_000).await.unwrap();
    assert_eq!(sync.opened.len(), records.len());
    let again = store.sync_alerts(&records, 2_000).await.unwrap();
    assert_eq!(
        again,
        Default::default(),
        "nothing changes when nothing changed"
    );

    let expiring = records
        .iter()
        .find(|r| r.kind == "CONTRACT_EXPIRING")
        .unwrap();
    let outcome = store
        .acknowledge_alert(&expiring.alert_id, "王科长", "续签中", 3_000)
        .await
        .unwrap();
    assert!(matches!(outcome, AckOutcome::Done(ref a) if a.state == "acknowledged"));

    // A restart: the same store opened afresh, evaluated again.
    let reopened = Store::open(url).await.unwrap();
    reopened.sync_alerts(&records, 4_000).await.unwrap();
    let kept = reopened
        .alerts(&AlertFilter {
            state: Some("acknowledged".into()),
            ..AlertFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].acknowledged_by.as_deref(), Some("王科长"));
    assert_eq!(kept[0].acknowledged_note.as_deref(), Some("续签中"));
    assert_eq!(kept[0].first_seen, 1_000);
    assert_eq!(kept[0].last_seen, 4_000);

    // The condition clears (the contract was renewed), then returns.
    let without: Vec<_> = records
        .iter()
        .filter(|r| r.alert_id != expiring.alert_id)
        .cloned()
        .collect();
    let cleared = reopened.sync_alerts(&without, 5_000).await.unwrap();
    assert_eq!(cleared.resolved, vec![expiring.alert_id.clone()]);
    let refused = reopened
        .acknowledge_alert(&expiring.alert_id, "王科长", "", 5_500)
        .await
        .unwrap();
    assert_eq!(refused, AckOutcome::Resolved);
    let returned = reopened.sync_alerts(&records, 6_000).await.unwrap();
    assert_eq!(returned.reopened, vec![expiring.alert_id.clone()]);
    let state = reopened
        .alerts(&AlertFilter {
            kind: Some("CONTRACT_EXPIRING".into()),
            state: Some("open".into()),
            ..AlertFilter::default()
        })
        .await
        .unwrap();
    assert!(state.iter().any(|a| a.alert_id == expiring.alert_id));
    reopened.close().await;
}

/// The workbook `blockhub report --xlsx` writes, read back: sheet names,
/// Chinese titles, and every unit's figures as in truth.
async fn workbook_reads_back(url: &str, as_of: chrono::NaiveDate, truth: &serde_json::Value) {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.xlsx");
    let args = blockhub::commands::report::ReportArgs {
        unit: None,
        as_of: Some(as_of),
        json: false,
        csv: Some(dir.path().join("report.csv")),
        xlsx: Some(path.clone()),
        policy: None,
        store: blockhub::StoreArgs {
            database_url: Some(url.to_string()),
        },
    };
    let data = blockhub::config::DataDir::at(dir.path());
    blockhub::commands::report::run(&data, args).await.unwrap();

    let mut workbook: Xlsx<_> = open_workbook(&path).unwrap();
    assert_eq!(workbook.sheet_names(), ["单位汇总", "岗位类别", "全市汇总"]);
    let units = workbook.worksheet_range("单位汇总").unwrap();
    let rows: Vec<_> = units.rows().collect();
    assert_eq!(rows[0][0], Data::String("统一社会信用代码".into()));
    assert_eq!(rows[0][3], Data::String("在职人数".into()));
    let truth = truth.as_object().unwrap();
    assert_eq!(
        rows.len(),
        truth.len() + 2,
        "header, one row per unit, city total"
    );
    let mut headcount_total = 0.0;
    for row in &rows[1..=truth.len()] {
        let code = row[0].to_string();
        let expected = &truth[&code];
        assert_eq!(row[1].to_string(), expected["name"].as_str().unwrap());
        assert_eq!(
            row[3],
            Data::Float(expected["headcount"].as_f64().unwrap()),
            "{code}"
        );
        assert_eq!(
            row[4],
            Data::Float(expected["by_post"]["普通辅助"].as_f64().unwrap())
        );
        headcount_total += expected["headcount"].as_f64().unwrap();
    }
    let total = &rows[truth.len() + 1];
    assert_eq!(total[1], Data::String("全市合计".into()));
    assert_eq!(total[3], Data::Float(headcount_total));
    let csv = std::fs::read_to_string(dir.path().join("report.csv")).unwrap();
    assert!(csv.starts_with("\u{feff}统一社会信用代码,单位名称"));
}

/// The staff queries count what the reports count, page by page, and a
/// person's history gathers every department's facts.
async fn staff_queries_agree_with_the_reports(store: &Store, truth: &serde_json::Value) {
    use blockhub_merger::store::StaffFilter;
    let (code, expected) = truth.as_object().unwrap().iter().next().unwrap();
    let mut active = Vec::new();
    for page in 0.. {
        let rows = store
            .staff(&StaffFilter {
                unit_code: code.clone(),
                status: Some("在职".into()),
                offset: page * 25,
                limit: 25,
                ..StaffFilter::default()
            })
            .await
            .unwrap();
        if rows.is_empty() {
            break;
        }
        active.extend(rows);
    }
    assert_eq!(active.len() as i64, expected["headcount"].as_i64().unwrap());
    let technical = store
        .staff(&StaffFilter {
            unit_code: code.clone(),
            status: Some("在职".into()),
            post_category: Some("技术技能".into()),
            ..StaffFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        technical.len() as i64,
        expected["by_post"]["技术技能"].as_i64().unwrap()
    );

    let counts = store.post_counts().await.unwrap();
    for count in &counts {
        let expected = truth[&count.unit_code]["by_post"][&count.post_category].as_i64();
        assert_eq!(Some(count.active), expected, "{count:?}");
    }

    // 贺然: on the roster, paid, insured.
    let history = store.history_of("330681198308206157").await.unwrap();
    let facts: std::collections::BTreeSet<&str> = history.iter().map(|h| h.fact.as_str()).collect();
    assert!(
        facts.contains("roster") && facts.contains("payroll"),
        "{facts:?}"
    );
    assert!(
        history.iter().all(|h| h.fact != "case"),
        "court cases stay the court's"
    );
}

/// An older quota list ingested after the sample's own: its changed row is
/// published (it differs from what the connector last saw) but the store
/// keeps the newer quota and files the stale one as superseded history.
async fn a_stale_export_read_late_changes_nothing(
    settings: &KafkaSettings,
    store: &Store,
    config: &MergerConfig,
) {
    let original = sample("staffing/quota.csv");
    let text = std::fs::read_to_string(&original).unwrap();
    let row = "诸暨市教育体育局,11330681830166130U,行政机关,85,2026-03-30";
    assert!(text.contains(row), "the sample's quota row changed");
    let stale_text = text.replace(
        row,
        "诸暨市教育体育局,11330681830166130U,行政机关,60,2025-03-30",
    );
    let folder = tempfile::tempdir().unwrap();
    let stale = folder.path().join("quota_2025.csv");
    std::fs::write(&stale, stale_text).unwrap();
    // The sample's own export time is its file time; the stale list was
    // made a year before (said on the command line as --exported-at).
    let made = std::fs::metadata(&original).unwrap().modified().unwrap();
    let options = blockhub_connector::IngestOptions {
        exported_at: Some(
            chrono::DateTime::<chrono::Utc>::from(made) - chrono::Duration::days(365),
        ),
        ..Default::default()
    };
    let before = store.content_snapshot().await.unwrap();
    let report = blockhub_connector::ingest(
        blockhub_connector::SourceKind::Quota,
        &[stale],
        settings,
        blockhub_tests::test_keyer(),
        &options,
    )
    .await
    .unwrap();
    assert_eq!((report.total().stale, report.total().published), (1, 1));
    let exported = report.files[0].exported.expect("an export time");
    assert_eq!(exported.from, blockhub_connector::ExportTimeSource::Given);
    wait_caught_up(config, store).await;

    let after = store.content_snapshot().await.unwrap();
    assert_eq!(after.units, before.units, "the newer quota holds");
    assert_eq!(after.superseded.len(), before.superseded.len() + 1);
    let history = store.superseded_facts(1).await.unwrap();
    assert_eq!(history[0].fact_table, "units");
    assert!(
        history[0].content.contains("\"quota\":60"),
        "{}",
        history[0].content
    );
    assert_eq!(history[0].location, "quota_2025.csv");
}

/// `blockhub rebuild` into a fresh database of the same backend ends with
/// the live store's content, and the alert states the hub published
/// (acknowledgements included).
async fn rebuild_ends_identical(
    settings: &KafkaSettings,
    store: &Store,
    merger_group: &str,
    backend: Backend,
) {
    use blockhub_merger::store::AlertFilter;
    settings
        .ensure_named_topics(&[settings.named_topic(blockhub_rules::ALERTS_TOPIC)])
        .await
        .unwrap();
    let producer = settings.producer().unwrap();
    let policy = blockhub_rules::Policy::default();
    blockhub_rules::round(store, &policy, settings, &producer)
        .await
        .unwrap();
    let live_alerts = store.alerts(&AlertFilter::default()).await.unwrap();
    assert!(
        live_alerts
            .iter()
            .any(|a| a.state == "acknowledged" || a.state == "resolved")
    );

    // The hub copies its audit log to the audit topic (every few seconds;
    // here at once), from where a rebuild takes it back.
    let audit_topic = settings.named_topic(blockhub_gateway::audit_topic::AUDIT_TOPIC);
    settings.ensure_named_topics(&[audit_topic]).await.unwrap();
    let published = blockhub_gateway::audit_topic::publish_pending(store, settings, &producer)
        .await
        .unwrap();
    assert!(published > 30, "the look-ups above were audited");

    let target_db = TestDatabase::create(backend).await;
    let target = Store::open(&target_db.url).await.unwrap();
    let summary = blockhub::commands::rebuild::rebuild_into(settings, &target, merger_group)
        .await
        .unwrap();
    assert_eq!(summary.audit_entries as usize, published);
    same_audit_log(&target, store, published).await;
    // Nothing is left to publish: a hub on the rebuilt store carries the
    // chain on instead of starting a second one.
    assert!(target.unpublished_audit(10).await.unwrap().is_empty());
    // The old hub goes on answering while the rebuild runs (the rebuild
    // needs its broker): its entries reach the topic, and the hub switched
    // to the rebuilt store puts them back before it appends anything.
    let draft = blockhub_merger::store::AuditDraft {
        at: 1_800_000_000_000,
        department: "court".into(),
        method: "PersonLookup.Lookup".into(),
        decision: "allowed".into(),
        ..Default::default()
    };
    store
        .append_audit(blockhub_tests::TEST_AUDIT_KEY, &[draft.clone(), draft])
        .await
        .unwrap();
    blockhub_gateway::audit_topic::publish_pending(store, settings, &producer)
        .await
        .unwrap();
    let restored = blockhub_gateway::audit_topic::catch_up(&target, settings)
        .await
        .unwrap();
    assert_eq!(restored, 2);
    same_audit_log(&target, store, published + 2).await;
    assert!(summary.messages > 0);
    assert_eq!(summary.alerts as usize, live_alerts.len());
    let live = store.content_snapshot().await.unwrap();
    assert!(!live.superseded.is_empty(), "the comparison covers history");

    assert_eq!(
        target.content_snapshot().await.unwrap(),
        store.content_snapshot().await.unwrap()
    );
    let rebuilt_alerts = target.alerts(&AlertFilter::default()).await.unwrap();
    assert_eq!(rebuilt_alerts, live_alerts);
    // The live merger's group carries on from where the rebuild stopped.
    assert_eq!(
        target.next_offsets(merger_group).await.unwrap(),
        store.next_offsets(merger_group).await.unwrap()
    );
    // A second rebuild into the same database is refused.
    assert!(
        blockhub::commands::rebuild::rebuild_into(settings, &target, merger_group)
            .await
            .is_err()
    );
    target_db.remove(target).await;
}

/// The rebuilt store's audit log is the live one's, and its chain verifies
/// through all `entries`.
async fn same_audit_log(target: &Store, store: &Store, entries: usize) {
    assert_eq!(
        target.audit_entries(0, 10_000).await.unwrap(),
        store.audit_entries(0, 10_000).await.unwrap()
    );
    let audit = target
        .verify_audit(blockhub_tests::TEST_AUDIT_KEY)
        .await
        .unwrap();
    assert_eq!((audit.verified as usize, audit.broken), (entries, None));
}
