//! The table connector against a real PostgreSQL table: changed rows are
//! published once, rows sharing a watermark are never skipped, and a
//! restart neither re-sends nor skips.

use std::collections::BTreeMap;

use blockhub_connector::replay::replay;
use blockhub_connector::table::{TableOptions, TablePoller};
use blockhub_connector::{IngestOptions, Mapping, SourceKind};
use blockhub_model::{EventKind, Fact, KafkaSettings, StaffStatus};
use blockhub_tests::{Backend, TestBroker, TestDatabase, test_keyer};
use sqlx::Connection;

/// The department names its columns in its own way; the mapping says so.
const MAPPING: &str = r#"
[columns]
citizen_id = "id_number"
name = "full_name"
unit_code = "org_code"
status = "state"

[values.status]
"ACTIVE" = "在职"
"LEFT" = "减少"
"#;

const UNIT: &str = "11330681830166130U";

/// Roster operations and persons on the topic so far.
async fn published(settings: &KafkaSettings) -> (BTreeMap<String, u64>, Vec<(String, String)>) {
    type Seen = (BTreeMap<String, u64>, Vec<(String, String)>);
    let (seen, stats) = replay(
        settings,
        EventKind::RosterEntry,
        Seen::default(),
        |(ops, rows): &mut Seen, event| {
            *ops.entry(format!("{:?}", event.envelope.operation))
                .or_default() += 1;
            if let Fact::RosterEntry(entry) = event.fact {
                rows.push((entry.name, entry.status.label().to_string()));
            }
        },
    )
    .await
    .unwrap();
    assert!(stats.complete);
    seen
}

async fn poller(settings: &KafkaSettings, url: &str) -> TablePoller {
    let options = IngestOptions {
        mapping: Mapping::from_toml(MAPPING, SourceKind::Roster).unwrap(),
        ..IngestOptions::default()
    };
    let table = TableOptions {
        url: url.to_string(),
        table: "public.staff".into(),
        watermark: "version".into(),
        key: Some("id".into()),
    };
    TablePoller::connect(SourceKind::Roster, table, settings, test_keyer(), &options)
        .await
        .unwrap()
}

async fn execute(url: &str, sql: &str) {
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut connection).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_rows_are_published_once_across_shared_watermarks_and_restarts() {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    let department = TestDatabase::create(Backend::Postgres).await;
    let url = department.url.clone();
    execute(
        &url,
        &format!(
            "CREATE TABLE staff (id SERIAL PRIMARY KEY, id_number TEXT, full_name TEXT, \
               org_code TEXT, state TEXT, version BIGINT NOT NULL); \
             INSERT INTO staff (id_number, full_name, org_code, state, version) VALUES \
               ('330106198703154214', '林晓雯', '{UNIT}', 'ACTIVE', 1), \
               ('33010419900708105X', '周雅琴', '{UNIT}', 'ACTIVE', 2), \
               ('33068119860303567X', '何思远', '{UNIT}', 'ACTIVE', 2);"
        ),
    )
    .await;

    let mut first = poller(&settings, &url).await;
    let report = first.poll().await.unwrap();
    assert_eq!(
        (report.rows_read, report.inserted, report.published),
        (3, 3, 3)
    );
    assert_eq!(first.cursor(), Some("2"));

    // Nothing changed: the rows at the cursor are read again, sent never.
    let report = first.poll().await.unwrap();
    assert_eq!(
        (report.rows_read, report.unchanged, report.published),
        (2, 2, 0)
    );

    // A row committed late with the cursor's own watermark is not skipped.
    execute(
        &url,
        &format!(
            "INSERT INTO staff (id_number, full_name, org_code, state, version) VALUES \
             ('330681200203086769', '唐远明', '{UNIT}', 'ACTIVE', 2);"
        ),
    )
    .await;
    let report = first.poll().await.unwrap();
    assert_eq!(
        (report.inserted, report.unchanged, report.published),
        (1, 2, 1)
    );

    // Changes while the connector is down: one departure, one more hire
    // sharing the new highest watermark, and a row with a bad ID.
    drop(first);
    execute(
        &url,
        &format!(
            "UPDATE staff SET state = 'LEFT', version = 3 WHERE full_name = '周雅琴'; \
             INSERT INTO staff (id_number, full_name, org_code, state, version) VALUES \
               ('330681197102276278', '尹芳然', '{UNIT}', 'ACTIVE', 3), \
               ('330681197307092810', '贺然', '{UNIT}', 'ACTIVE', 3);"
        ),
    )
    .await;

    // Restarted: reads the table once, publishes exactly what changed.
    let mut restarted = poller(&settings, &url).await;
    let report = restarted.poll().await.unwrap();
    assert_eq!(
        (
            report.inserted,
            report.updated,
            report.unchanged,
            report.rejected
        ),
        (1, 1, 3, 1)
    );
    assert_eq!(
        report.rejected_by_reason.get("ID_CHECK_CHAR_MISMATCH"),
        Some(&1)
    );
    assert!(report.rejected_sample[0].position.starts_with("key "));
    assert!(
        !report.rejected_sample[0]
            .reason
            .contains("330681197307092810")
    );
    let report = restarted.poll().await.unwrap();
    assert_eq!(report.published, 0);

    // On the topic: every person once as an insert, the departure once as
    // an update, nothing twice.
    let (ops, rows) = published(&settings).await;
    assert_eq!(ops.get("Insert"), Some(&5));
    assert_eq!(ops.get("Update"), Some(&1));
    assert_eq!(ops.len(), 2);
    let departed: Vec<_> = rows.iter().filter(|(_, status)| status == "减少").collect();
    assert_eq!(departed, vec![&("周雅琴".to_string(), "减少".to_string())]);
    assert_eq!(StaffStatus::from_label("减少"), StaffStatus::Left);
    drop(restarted);
    department.drop_database().await;
}
