//! Sync health with a clock the test moves: a feed with no delivery past
//! its cadence turns LATE and then STALLED, one whose run rejects too many
//! rows turns FAILING, and both recover when fed; the gRPC report, the
//! Watch stream and the Prometheus metrics say the same. Real broker,
//! merger and store on both backends.

use std::time::Duration;

use blockhub_connector::{IngestOptions, SourceKind, ingest};
use blockhub_gateway::proto::sync_health_client::SyncHealthClient;
use blockhub_gateway::proto::{FeedStatus, HealthChange, HealthRequest, SourceHealth};
use blockhub_merger::{MergerConfig, Store};
use blockhub_model::{Clock, KafkaSettings};
use blockhub_tests::{
    Backend, TestBroker, TestDatabase, TestGateway, sample, test_keyer, wait_caught_up, with_token,
};
use chrono::{DateTime, Utc};
use tonic::Streaming;

const TOKEN: &str = "datacentre-test-token";
const POLICY: &str = r#"
[departments.datacentre]
methods = ["SyncHealth.Get", "SyncHealth.Watch"]
rate_per_second = 1000
"#;

/// Local time (+08:00) as UTC.
fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_str(&format!("{text} +08:00"), "%Y-%m-%d %H:%M %z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn feed(settings: &KafkaSettings, clock: &Clock, source: SourceKind, file: &std::path::Path) {
    let options = IngestOptions {
        clock: clock.clone(),
        ..IngestOptions::default()
    };
    let files = [file.to_path_buf()];
    ingest(source, &files, settings, test_keyer(), &options)
        .await
        .expect("ingest");
}

async fn source_health(gateway: &TestGateway, source: &str) -> SourceHealth {
    let request = HealthRequest {
        source: source.into(),
    };
    let reply = SyncHealthClient::new(gateway.channel().await)
        .get(with_token(request, TOKEN))
        .await
        .expect("SyncHealth.Get")
        .into_inner();
    assert_eq!(reply.sources.len(), 1);
    reply.sources.into_iter().next().unwrap()
}

/// Waits until the store holds the run of `source` that finished at the
/// clock's time, and the merger has caught up.
async fn applied(
    gateway: &TestGateway,
    merger: &MergerConfig,
    store: &Store,
    source: &str,
    clock: &Clock,
) {
    let finished = clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let started = std::time::Instant::now();
    loop {
        wait_caught_up(merger, store).await;
        let health = source_health(gateway, source).await;
        if health
            .last_run
            .as_ref()
            .is_some_and(|run| run.finished_at == finished)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run of {source} at {finished} never reached the store: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The next change on the watch stream for `source`, skipping others.
async fn next_change(stream: &mut Streaming<HealthChange>, source: &str) -> HealthChange {
    loop {
        let change = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("a change within 30 s")
            .expect("watch stream")
            .expect("watch stream ended");
        if change.source.as_ref().is_some_and(|s| s.source == source) {
            return change;
        }
    }
}

/// The payroll export cut to its header and 20 rows, 5 of whose ID numbers
/// have a wrong check character: 25% rejected, over the 5% allowed.
fn payroll_with_bad_ids(dir: &std::path::Path) -> std::path::PathBuf {
    let bytes = std::fs::read(sample("finance/payroll_202611.csv")).unwrap();
    let mut lines: Vec<Vec<u8>> = bytes
        .split(|b| *b == b'\n')
        .take(21)
        .map(<[u8]>::to_vec)
        .collect();
    for line in lines.iter_mut().skip(1).take(5) {
        // The ID is the fifth field; the quoted amount comes after it.
        let starts: Vec<usize> = std::iter::once(0)
            .chain(
                line.iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b',')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        let last = starts[5] - 2;
        line[last] = if line[last] == b'0' { b'1' } else { b'0' };
    }
    let path = dir.join("payroll_202611_bad.csv");
    std::fs::write(&path, lines.join(&b'\n')).unwrap();
    path
}

async fn metrics(gateway: &TestGateway) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = gateway.status_address.expect("status page served");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    text
}

async fn late_stalled_failing_and_recovery(backend: Backend) {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    let database = TestDatabase::create(backend).await;
    let store = Store::open(&database.url).await.expect("open store");
    let mut merger = MergerConfig::new(settings.clone());
    merger.group = format!("{}merger", settings.topic_prefix);
    let (stop_merger, merger_stopped) = tokio::sync::oneshot::channel::<()>();
    let merger_task = tokio::spawn(blockhub_merger::run(merger.clone(), store.clone(), async {
        let _ = merger_stopped.await;
    }));

    // Monday 7 December 2026, 09:00: the roster arrives.
    let clock = Clock::manual(at("2026-12-07 09:00"));
    let roster = sample("staffing/roster.xlsx");
    feed(&settings, &clock, SourceKind::Roster, &roster).await;
    wait_caught_up(&merger, &store).await;

    let (kafka, watch_clock, group) = (settings.clone(), clock.clone(), merger.group.clone());
    let gateway = TestGateway::start_with(&store, &[("datacentre", TOKEN)], POLICY, |_, mut o| {
        o.kafka = Some(kafka);
        o.health.clock = watch_clock;
        o.health.status_listen = Some("127.0.0.1:0".into());
        o.health.every = Duration::from_millis(200);
        o.health.merger_group = group;
        o
    })
    .await;
    let roster_health = source_health(&gateway, "staffing.roster").await;
    assert_eq!(roster_health.status(), FeedStatus::Ok, "{roster_health:?}");
    assert!(roster_health.reasons[0].contains("next due by 2026-12-08 18:00"));
    assert!(roster_health.events_total > 1000, "{roster_health:?}");
    let run = roster_health.last_run.clone().expect("the run is recorded");
    assert_eq!(run.location, "roster.xlsx");
    assert_eq!(run.finished_at, "2026-12-07T01:00:00.000Z");
    assert_eq!(run.rejected, 0);

    let mut watch = SyncHealthClient::new(gateway.channel().await)
        .watch(with_token(HealthRequest::default(), TOKEN))
        .await
        .expect("SyncHealth.Watch")
        .into_inner();
    let first = next_change(&mut watch, "staffing.roster").await;
    assert_eq!(first.previous(), FeedStatus::Unspecified);
    assert_eq!(first.source.unwrap().status(), FeedStatus::Ok);

    // Tuesday 19:00: Tuesday's 18:00 delivery is missing.
    clock.set(at("2026-12-08 19:00"));
    let late = source_health(&gateway, "staffing.roster").await;
    assert_eq!(late.status(), FeedStatus::Late, "{late:?}");
    assert_eq!(late.overdue_since, "2026-12-08T10:00:00.000Z");
    assert!(
        late.reasons[0].contains("no delivery since 2026-12-07 09:00"),
        "{late:?}"
    );
    assert!(late.action.contains("the staffing office"), "{late:?}");
    let change = next_change(&mut watch, "staffing.roster").await;
    assert_eq!(change.previous(), FeedStatus::Ok);
    assert_eq!(change.source.unwrap().status(), FeedStatus::Late);

    // Friday 19:00: more than three days overdue.
    clock.set(at("2026-12-11 19:00"));
    let stalled = source_health(&gateway, "staffing.roster").await;
    assert_eq!(stalled.status(), FeedStatus::Stalled, "{stalled:?}");
    assert!(
        stalled.reasons[0].contains("more than the 3 days"),
        "{stalled:?}"
    );
    let change = next_change(&mut watch, "staffing.roster").await;
    assert_eq!(change.previous(), FeedStatus::Late);
    assert_eq!(change.source.unwrap().status(), FeedStatus::Stalled);
    let text = metrics(&gateway).await;
    assert!(
        text.contains("blockhub_source_status{source=\"staffing.roster\",status=\"STALLED\"} 1"),
        "{text}"
    );

    // The same export again: nothing changed, nothing published, but the
    // run is a delivery and the feed recovers.
    clock.advance(chrono::Duration::minutes(5));
    feed(&settings, &clock, SourceKind::Roster, &roster).await;
    applied(&gateway, &merger, &store, "staffing.roster", &clock).await;
    let recovered = source_health(&gateway, "staffing.roster").await;
    assert_eq!(recovered.status(), FeedStatus::Ok, "{recovered:?}");
    assert_eq!(recovered.events_total, roster_health.events_total);
    assert_eq!(recovered.last_run.unwrap().published, 0);
    let change = next_change(&mut watch, "staffing.roster").await;
    assert_eq!(change.previous(), FeedStatus::Stalled);
    assert_eq!(change.source.unwrap().status(), FeedStatus::Ok);

    // A payroll export with a quarter of its IDs broken fails the feed.
    let dir = tempfile::tempdir().unwrap();
    let bad = payroll_with_bad_ids(dir.path());
    feed(&settings, &clock, SourceKind::Payroll, &bad).await;
    applied(&gateway, &merger, &store, "finance.payroll", &clock).await;
    let failing = source_health(&gateway, "finance.payroll").await;
    assert_eq!(failing.status(), FeedStatus::Failing, "{failing:?}");
    assert!(
        failing.reasons[0].contains("rejected 5 of 20 rows (25.0%"),
        "{failing:?}"
    );
    assert!(
        failing
            .action
            .contains("blockhub dead-letters --source finance.payroll")
    );
    assert!(
        failing.action.contains("blockhub ingest payroll FILE"),
        "{failing:?}"
    );
    assert_eq!(failing.rejected_total, 5);
    assert!(!failing.reasons[0].contains("33068"), "no ID in a reason");
    // The payroll's events may reach the store a moment before its run
    // record (other topics): the stream may say OK on the way to FAILING.
    loop {
        let change = next_change(&mut watch, "finance.payroll").await;
        match change.source.unwrap().status() {
            FeedStatus::Failing => break,
            FeedStatus::Ok | FeedStatus::Stalled => continue,
            other => panic!("finance.payroll went {other:?}"),
        }
    }

    // The corrected export: the feed recovers.
    clock.advance(chrono::Duration::minutes(5));
    feed(
        &settings,
        &clock,
        SourceKind::Payroll,
        &sample("finance/payroll_202611.csv"),
    )
    .await;
    applied(&gateway, &merger, &store, "finance.payroll", &clock).await;
    let fixed = source_health(&gateway, "finance.payroll").await;
    assert_eq!(fixed.status(), FeedStatus::Ok, "{fixed:?}");
    assert!(fixed.failing_since.is_empty(), "{fixed:?}");
    assert_eq!(fixed.last_good_run, fixed.last_delivery_at);
    let change = next_change(&mut watch, "finance.payroll").await;
    assert_eq!(change.previous(), FeedStatus::Failing);
    assert_eq!(change.source.unwrap().status(), FeedStatus::Ok);

    // The metrics carry the report's figures.
    let text = metrics(&gateway).await;
    for source in [&fixed, &recovered_again(&gateway).await] {
        let line = format!(
            "blockhub_source_events_total{{source=\"{}\"}} {}",
            source.source, source.events_total
        );
        assert!(text.contains(&line), "{line} missing from\n{text}");
        let line = format!(
            "blockhub_source_rejections_total{{source=\"{}\"}} {}",
            source.source, source.rejected_total
        );
        assert!(text.contains(&line), "{line} missing from\n{text}");
    }
    assert!(text.contains("blockhub_source_status{source=\"finance.payroll\",status=\"OK\"} 1"));

    drop(watch);
    gateway.stop().await;
    let _ = stop_merger.send(());
    merger_task.await.unwrap().unwrap();
    database.remove(store).await;
}

async fn recovered_again(gateway: &TestGateway) -> SourceHealth {
    source_health(gateway, "staffing.roster").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feeds_turn_late_stalled_failing_and_recover_when_fed_on_sqlite() {
    late_stalled_failing_and_recovery(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feeds_turn_late_stalled_failing_and_recover_when_fed_on_postgres() {
    late_stalled_failing_and_recovery(Backend::Postgres).await;
}
