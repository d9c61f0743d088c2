//! Snapshot diff end to end: an edited roster export publishes exactly its
//! changes, and the store shows them.

use std::collections::BTreeMap;

use blockhub_connector::replay::replay;
use blockhub_connector::{SourceKind, ingest};
use blockhub_merger::{MergerConfig, Store};
use blockhub_model::{EventKind, KafkaSettings};
use blockhub_tests::{Backend, TestBroker, TestDatabase, test_keyer, wait_caught_up};
use tokio::sync::oneshot;

const HEADER: &str = "姓名,身份证号,统一社会信用代码,岗位类别,合同终止日期,人员状态\n";
const LIN: &str = "林晓雯,330106198703154214,11330681830166130U,普通辅助,2026-12-31,在职\n";
const ZHOU: &str = "周雅琴,33010419900708105X,11330681830166130U,技术技能,2027-06-30,在职\n";
const HE: &str = "何思远,33068119860303567X,11330681830166130U,执法辅助,无固定期限,在职\n";
const NEW: &str = "唐远明,330681200203086769,11330681830166130U,普通辅助,2028-01-31,在职\n";
// Another unit's row: the edited export of the first unit must not touch it.
const OTHER: &str = "尹芳然,330681197102276278,11330681543231948W,普通辅助,2027-01-31,在职\n";

/// The merger's task over `store`, with its config and a stop signal.
fn start_merger(
    settings: &KafkaSettings,
    store: &Store,
) -> (
    MergerConfig,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), blockhub_merger::MergerError>>,
) {
    let mut config = MergerConfig::new(settings.clone());
    config.group = format!("{}merger", settings.topic_prefix);
    let (stop, stopped) = oneshot::channel::<()>();
    let merger = tokio::spawn(blockhub_merger::run(config.clone(), store.clone(), async {
        let _ = stopped.await;
    }));
    (config, stop, merger)
}

/// Operations published on the roster topic so far, by operation.
async fn roster_operations(settings: &KafkaSettings) -> BTreeMap<String, u64> {
    let (counts, stats) = replay(
        settings,
        EventKind::RosterEntry,
        BTreeMap::new(),
        |counts: &mut BTreeMap<String, u64>, event| {
            *counts
                .entry(format!("{:?}", event.envelope.operation))
                .or_default() += 1;
        },
    )
    .await
    .unwrap();
    assert!(stats.complete);
    counts
}

async fn ingest_text(settings: &KafkaSettings, dir: &std::path::Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let report = ingest(
        SourceKind::Roster,
        &[path],
        settings,
        test_keyer(),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.total().rejected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edited_export_publishes_one_delete_one_update_one_insert() {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    let dir = tempfile::tempdir().unwrap();

    ingest_text(
        &settings,
        dir.path(),
        "other_unit.csv",
        &format!("{HEADER}{OTHER}"),
    )
    .await;
    let first = format!("{HEADER}{LIN}{ZHOU}{HE}");
    ingest_text(&settings, dir.path(), "roster_v1.csv", &first).await;
    let before = roster_operations(&settings).await;
    assert_eq!(before.get("Insert"), Some(&4));

    // 周雅琴 leaves (her row is gone), 林晓雯's contract is extended, 唐远明
    // is hired.
    let extended = LIN.replace("2026-12-31", "2027-12-31");
    let edited = format!("{HEADER}{extended}{HE}{NEW}");
    let path = dir.path().join("roster_v2.csv");
    std::fs::write(&path, &edited).unwrap();
    let report = ingest(
        SourceKind::Roster,
        std::slice::from_ref(&path),
        &settings,
        test_keyer(),
        &Default::default(),
    )
    .await
    .unwrap();
    let file = &report.files[0];
    assert_eq!(
        (file.inserted, file.updated, file.unchanged, report.deleted),
        (1, 1, 1, 1)
    );
    let after = roster_operations(&settings).await;
    let new_ops = |op: &str| after.get(op).unwrap_or(&0) - before.get(op).unwrap_or(&0);
    assert_eq!(
        (new_ops("Insert"), new_ops("Update"), new_ops("Delete")),
        (1, 1, 1)
    );

    // The same file again: nothing at all.
    let again = ingest(
        SourceKind::Roster,
        &[path],
        &settings,
        test_keyer(),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!((again.total().published, again.deleted), (0, 0));
    assert_eq!(roster_operations(&settings).await, after);

    // The merger shows the departure and the extension; the other unit's
    // row stands.
    let database = TestDatabase::create(Backend::Sqlite).await;
    let store = Store::open(&database.url).await.unwrap();
    let (config, stop, merger) = start_merger(&settings, &store);
    wait_caught_up(&config, &store).await;
    let counts = store.live_fact_counts().await.unwrap();
    assert_eq!(
        counts["roster_entries"], 4,
        "3 in the edited export + 1 other"
    );
    let zhou = blockhub_model::CitizenId::parse("33010419900708105X").unwrap();
    assert!(store.roster_entries_of(&zhou).await.unwrap().is_empty());
    let lin = blockhub_model::CitizenId::parse("330106198703154214").unwrap();
    let entries = store.roster_entries_of(&lin).await.unwrap();
    assert_eq!(
        entries[0].contract_end.map(|d| d.to_string()).as_deref(),
        Some("2027-12-31")
    );
    let _ = stop.send(());
    merger.await.unwrap().unwrap();
    database.remove(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_contradicting_itself_keeps_the_first_row_and_stays_quiet_after() {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    let dir = tempfile::tempdir().unwrap();
    let later = LIN.replace("2026-12-31", "2028-06-30");
    let path = dir.path().join("dup.csv");
    std::fs::write(&path, format!("{HEADER}{LIN}{LIN}{later}{ZHOU}")).unwrap();
    let options = blockhub_connector::IngestOptions::default();
    let run = || {
        ingest(
            SourceKind::Roster,
            std::slice::from_ref(&path),
            &settings,
            test_keyer(),
            &options,
        )
    };
    let first = run().await.unwrap();
    let file = &first.files[0];
    assert_eq!((file.inserted, file.rejected), (2, 1));
    assert_eq!(file.rejected_by_reason.get("DUPLICATE_FACT"), Some(&1));
    assert!(file.rejected_sample[0].reason.contains("as dup.csv row 2"));
    assert_eq!(
        file.warnings.values().sum::<u64>(),
        1,
        "{:?}",
        file.warnings
    );
    let again = run().await.unwrap();
    assert_eq!(again.total().published, 0);
    assert_eq!(again.total().unchanged, 2);
}

/// Ingests `text` as `name`, exported `days_ago` days ago.
async fn ingest_exported(
    settings: &KafkaSettings,
    dir: &std::path::Path,
    name: &str,
    text: &str,
    days_ago: i64,
) -> blockhub_connector::IngestReport {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let options = blockhub_connector::IngestOptions {
        exported_at: Some(chrono::Utc::now() - chrono::Duration::days(days_ago)),
        ..Default::default()
    };
    ingest(
        SourceKind::Roster,
        &[path],
        settings,
        test_keyer(),
        &options,
    )
    .await
    .unwrap()
}

// A new user's trial: an old roster ingested late (with another contract
// end, and without 周雅琴) once made the connector forget the newer one, so
// that a later export repeating the old values published nothing and her
// departure in it was never published.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_export_read_late_leaves_the_newer_one_in_force() {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(Backend::Sqlite).await;
    let store = Store::open(&database.url).await.unwrap();
    let (config, stop, merger) = start_merger(&settings, &store);
    let lin = blockhub_model::CitizenId::parse("330106198703154214").unwrap();
    let zhou = blockhub_model::CitizenId::parse("33010419900708105X").unwrap();
    let contract_end = || async {
        let entries = store.roster_entries_of(&lin).await.unwrap();
        entries[0].contract_end.map(|d| d.to_string())
    };

    let newer = format!("{HEADER}{LIN}{ZHOU}{HE}");
    ingest_exported(&settings, dir.path(), "roster_nov.csv", &newer, 5).await;
    let old_lin = LIN.replace("2026-12-31", "2025-11-30");
    let old = format!("{HEADER}{old_lin}{HE}");
    let report = ingest_exported(&settings, dir.path(), "roster_oct.csv", &old, 35).await;
    assert_eq!((report.total().stale, report.total().unchanged), (1, 1));
    assert_eq!((report.deleted, report.deletes_kept_newer), (0, 1));
    wait_caught_up(&config, &store).await;
    assert_eq!(contract_end().await.as_deref(), Some("2026-12-31"));
    assert_eq!(store.roster_entries_of(&zhou).await.unwrap().len(), 1);

    // Today's export says what October's did: it holds.
    let report = ingest_exported(&settings, dir.path(), "roster_dec.csv", &old, 0).await;
    assert_eq!((report.total().updated, report.deleted), (1, 1));
    wait_caught_up(&config, &store).await;
    assert_eq!(contract_end().await.as_deref(), Some("2025-11-30"));
    assert!(store.roster_entries_of(&zhou).await.unwrap().is_empty());

    let history = store.superseded_facts(10).await.unwrap();
    assert_eq!(history.len(), 1, "October's row, kept as history");
    assert_eq!(history[0].location, "roster_oct.csv");
    // What `blockhub superseded` prints of it: where it came from, what it
    // said, the ID masked.
    let line = blockhub::commands::superseded::render(&history[0], false).unwrap();
    assert!(
        line.contains("staffing.roster roster_oct.csv row 2"),
        "{line}"
    );
    assert!(
        line.contains("2025-11-30") && line.contains("330106********4214"),
        "{line}"
    );
    assert!(!line.contains("330106198703154214"), "{line}");
    let json = blockhub::commands::superseded::render(&history[0], true).unwrap();
    assert!(!json.contains("330106198703154214"), "{json}");

    let _ = stop.send(());
    merger.await.unwrap().unwrap();
    database.remove(store).await;
}

// A second trial: an export repeating the last one unchanged published
// nothing, so an export made between the two, read after both, once
// changed a contract and deleted a person the repeat still listed. The
// repeat's run record now says which units it stated, and as of when.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_older_than_an_unchanged_repeat_is_not_published() {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    let dir = tempfile::tempdir().unwrap();
    let roster = format!("{HEADER}{LIN}{ZHOU}{HE}");
    ingest_exported(&settings, dir.path(), "roster_1101.csv", &roster, 30).await;
    let repeat = ingest_exported(&settings, dir.path(), "roster_1201.csv", &roster, 4).await;
    assert_eq!(
        repeat.total().published,
        0,
        "an unchanged export publishes nothing"
    );
    let before = roster_operations(&settings).await;

    let changed_lin = LIN.replace("2026-12-31", "2025-11-30");
    let between = format!("{HEADER}{changed_lin}{ZHOU}");
    let report = ingest_exported(&settings, dir.path(), "roster_1115.csv", &between, 20).await;
    assert_eq!(report.total().outdated, 1, "林晓雯's other contract end");
    assert_eq!(
        (report.deleted, report.deletes_kept_newer),
        (0, 1),
        "何思远 stays"
    );
    assert_eq!(report.total().published, 0);
    assert_eq!(roster_operations(&settings).await, before);
}
