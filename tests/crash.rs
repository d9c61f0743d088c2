//! Crash and restart tests: the merger killed with SIGKILL again and
//! again in the middle of the sample county, the connector killed in the
//! middle of a file, the broker restarted in the middle of a load. Each
//! ends with the store a clean load gives: nothing lost, nothing doubled.
//!
//! The processes killed are real ones: this test binary runs itself as
//! the child (a merger or an ingest) when BLOCKHUB_CRASH_CHILD says so,
//! which is why it has its own `main` instead of the test harness.

use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use blockhub_connector::replay::replay;
use blockhub_connector::{SourceKind, ingest};
use blockhub_merger::{MergerConfig, Store};
use blockhub_model::{EventKind, KafkaSettings};
use blockhub_tests::{
    Backend, TestBroker, TestDatabase, ingest_sample_county, sample, test_keyer, wait_caught_up,
};
use tokio::sync::oneshot;

const CHILD: &str = "BLOCKHUB_CRASH_CHILD";

type TestFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
/// A named test.
type Test = (&'static str, fn() -> TestFuture);

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var_os("CRASH_LOG").is_some() {
        blockhub::logging::init(0, true);
    }
    if let Ok(role) = std::env::var(CHILD) {
        return runtime.block_on(child(&role));
    }
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let tests: [Test; 3] = [
        (
            "merger_killed_again_and_again_loses_and_doubles_nothing",
            || Box::pin(merger_killed_again_and_again()),
        ),
        ("connector_killed_mid_file_publishes_nothing_twice", || {
            Box::pin(connector_killed_mid_file())
        }),
        ("broker_restarted_mid_load_loses_nothing", || {
            Box::pin(broker_restarted_mid_load())
        }),
    ];
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let started = Instant::now();
        runtime.block_on(test());
        println!(
            "test {name} ... ok ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
    }
    ExitCode::SUCCESS
}

/// The child roles: `merger` runs the merger until killed; `ingest` runs
/// one ingest.
async fn child(role: &str) -> ExitCode {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} unset"));
    let mut settings = KafkaSettings::new(var("CRASH_BROKERS"));
    settings.topic_prefix = var("CRASH_PREFIX");
    match role {
        "merger" => {
            let store = Store::open(&var("CRASH_DB")).await.expect("store");
            let mut config = MergerConfig::new(settings);
            config.group = var("CRASH_GROUP");
            config.batch_size = 25;
            let forever = std::future::pending::<()>();
            blockhub_merger::run(config, store, forever)
                .await
                .expect("merger");
        }
        "ingest" => {
            let file = std::path::PathBuf::from(var("CRASH_FILE"));
            let options = Default::default();
            ingest(
                SourceKind::Roster,
                &[file],
                &settings,
                test_keyer(),
                &options,
            )
            .await
            .expect("ingest");
        }
        other => panic!("unknown child role {other}"),
    }
    ExitCode::SUCCESS
}

fn spawn_child(role: &str, env: &[(&str, &str)]) -> Child {
    let exe = std::env::current_exe().expect("own path");
    let mut command = Command::new(exe);
    command.env(CHILD, role);
    for (name, value) in env {
        command.env(name, value);
    }
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn a child")
}

/// A pseudo-random duration in [from, to), different every call.
fn random_between(from: Duration, to: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = u64::from(nanos)
        .wrapping_mul(6364136223846793005)
        .rotate_left(17);
    let span = (to - from).as_millis().max(1) as u64;
    from + Duration::from_millis(mixed % span)
}

/// A clean load: the merger in this process, never interrupted.
async fn clean_load(settings: &KafkaSettings, group: &str) -> (TestDatabase, Store) {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let store = Store::open(&database.url).await.expect("store");
    merge_until_caught_up(settings, group, &store).await;
    (database, store)
}

async fn merge_until_caught_up(settings: &KafkaSettings, group: &str, store: &Store) {
    let mut config = MergerConfig::new(settings.clone());
    config.group = group.to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let merger = tokio::spawn(blockhub_merger::run(config.clone(), store.clone(), async {
        let _ = stopped.await;
    }));
    wait_caught_up(&config, store).await;
    let _ = stop.send(());
    merger.await.expect("merger task").expect("merger");
}

async fn applied(store: &Store) -> i64 {
    let counts = store.live_fact_counts().await.expect("counts");
    counts.values().sum()
}

async fn merger_killed_again_and_again() {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    ingest_sample_county(&settings).await;
    let (reference_db, reference) = clean_load(&settings, "reference").await;
    let total = applied(&reference).await;

    let database = TestDatabase::create(Backend::Sqlite).await;
    let store = Store::open(&database.url).await.expect("store");
    let env = [
        ("CRASH_BROKERS", settings.brokers.as_str()),
        ("CRASH_PREFIX", settings.topic_prefix.as_str()),
        ("CRASH_GROUP", "crashing"),
        ("CRASH_DB", database.url.as_str()),
    ];
    let (mut kills, mut mid_load) = (0, 0);
    // At least ten kills, and as many more (up to 30) as it takes for
    // several to land while the load is under way.
    while kills < 10 || (mid_load < 3 && kills < 30) {
        let mut merger = spawn_child("merger", &env);
        tokio::time::sleep(random_between(
            Duration::from_millis(300),
            Duration::from_millis(2500),
        ))
        .await;
        merger.kill().expect("SIGKILL the merger");
        let _ = merger.wait();
        kills += 1;
        let done = applied(&store).await;
        if done > 0 && done < total {
            mid_load += 1;
        }
    }
    println!("  {kills} kills, {mid_load} during the load; recovering");
    assert!(mid_load >= 1, "no kill landed during the load");
    merge_until_caught_up(&settings, "crashing", &store).await;
    assert_eq!(
        store.content_snapshot().await.expect("snapshot"),
        reference.content_snapshot().await.expect("snapshot"),
        "after {kills} kills ({mid_load} mid-load) the store differs from a clean load"
    );
    database.remove(store).await;
    reference_db.remove(reference).await;
}

/// A function summing a topic's high watermarks.
fn topic_watermarks(settings: &KafkaSettings, topic: String) -> impl Fn() -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = settings.client_config().create().expect("consumer");
    move || {
        let Ok(metadata) = consumer.fetch_metadata(Some(&topic), Duration::from_secs(5)) else {
            return 0;
        };
        metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions())
            .filter_map(|p| {
                consumer
                    .fetch_watermarks(&topic, p.id(), Duration::from_secs(5))
                    .ok()
            })
            .map(|(_, high)| high)
            .sum()
    }
}

/// Roster events on the topic, and how many distinct facts they state.
async fn roster_events(settings: &KafkaSettings) -> (usize, usize) {
    type Seen = (usize, std::collections::BTreeSet<String>);
    let ((events, facts), stats) = replay(
        settings,
        EventKind::RosterEntry,
        Seen::default(),
        |(events, facts): &mut Seen, event| {
            *events += 1;
            facts.insert(event.fact.identity());
        },
    )
    .await
    .expect("replay");
    assert!(stats.complete);
    (events, facts.len())
}

/// Rows of the generated roster.
const ROWS: usize = 60_000;

async fn connector_killed_mid_file() {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    // A roster large enough that publishing it takes a while: the sample's
    // 1,603 rows reach the broker in one burst.
    let dir = tempfile::tempdir().expect("directory");
    let roster = dir.path().join("roster.csv");
    let mut text = String::from("姓名,身份证号,统一社会信用代码,岗位类别,人员状态\n");
    for i in 0..ROWS {
        let birth = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("date")
            + chrono::Days::new((i / 900) as u64);
        let body = format!("330681{}{:03}", birth.format("%Y%m%d"), i % 900 + 100);
        let id = blockhub_model::CitizenId::from_body(&body).expect("id");
        text.push_str(&format!(
            "员工{i},{},11330681830166130U,普通辅助,在职\n",
            id.as_str()
        ));
    }
    std::fs::write(&roster, text).expect("write roster");
    let env = [
        ("CRASH_BROKERS", settings.brokers.as_str()),
        ("CRASH_PREFIX", settings.topic_prefix.as_str()),
        ("CRASH_FILE", roster.to_str().expect("path")),
    ];
    // Kill it as soon as its first events reach the broker, until one
    // kill lands part-way through the file.
    let watermarks = topic_watermarks(&settings, settings.topic(EventKind::RosterEntry));
    let mut attempts = 0;
    loop {
        let mut connector = spawn_child("ingest", &env);
        let started = Instant::now();
        while watermarks() == 0 && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        connector.kill().ok();
        let _ = connector.wait();
        attempts += 1;
        let (events, _) = roster_events(&settings).await;
        if events > 0 && events < ROWS {
            println!("  killed after {events} of {ROWS} roster events (attempt {attempts})");
            break;
        }
        assert!(
            attempts < 5,
            "no kill landed part-way through the file ({events} events)"
        );
    }
    let report = ingest(
        SourceKind::Roster,
        &[roster],
        &settings,
        test_keyer(),
        &Default::default(),
    )
    .await
    .expect("ingest again");
    assert_eq!(report.total().rejected, 0);
    let (events, facts) = roster_events(&settings).await;
    assert_eq!(facts, ROWS, "every roster row published");
    assert_eq!(events, ROWS, "no row published twice");
    assert_eq!(
        (report.total().unchanged + report.total().published) as usize,
        ROWS,
        "the second run published only what the first did not"
    );
}

async fn broker_restarted_mid_load() {
    let mut broker = TestBroker::start().await;
    let settings = broker.settings();
    ingest(
        SourceKind::Quota,
        &[sample("staffing/quota.csv")],
        &settings,
        test_keyer(),
        &Default::default(),
    )
    .await
    .expect("quota");
    let database = TestDatabase::create(Backend::Sqlite).await;
    let store = Store::open(&database.url).await.expect("store");
    let mut config = MergerConfig::new(settings.clone());
    config.group = "restarting".into();
    let (stop, stopped) = oneshot::channel::<()>();
    let merger = tokio::spawn(blockhub_merger::run(config.clone(), store.clone(), async {
        let _ = stopped.await;
    }));
    ingest(
        SourceKind::Roster,
        &[sample("staffing/roster.xlsx")],
        &settings,
        test_keyer(),
        &Default::default(),
    )
    .await
    .expect("roster");
    let payroll: Vec<_> = ["202609", "202610", "202611"]
        .iter()
        .map(|m| sample(&format!("finance/payroll_{m}.csv")))
        .collect();
    let load = {
        let settings = settings.clone();
        tokio::spawn(async move {
            ingest(
                SourceKind::Payroll,
                &payroll,
                &settings,
                test_keyer(),
                &Default::default(),
            )
            .await
        })
    };
    // Restart the broker once payroll events start arriving: the rest of
    // the files are published across the outage.
    let payroll_topic = settings.topic(EventKind::PayrollPayment);
    let arrived = topic_watermarks(&settings, payroll_topic);
    let started = Instant::now();
    while arrived() == 0 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    broker.restart(Duration::from_secs(2)).await;
    let payroll = load.await.expect("load task").expect("payroll ingest");
    assert_eq!(payroll.total().rejected, 3);
    wait_caught_up(&config, &store).await;
    let counts = store.live_fact_counts().await.expect("counts");
    assert_eq!(counts["units"], 20);
    assert_eq!(counts["roster_entries"], 1603);
    assert_eq!(counts["payroll_payments"], 4777);
    let _ = stop.send(());
    merger.await.expect("merger task").expect("merger");
    database.remove(store).await;
}
