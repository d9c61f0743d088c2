//! What the merger promises about the store, on both backends: a batch
//! applied twice changes nothing, an event id is applied once, an older
//! fact never overwrites a newer one, and a poison message becomes a dead
//! letter without stalling its partition.

use std::time::Duration;

use blockhub_merger::store::{Delivered, DeliveredItem};
use blockhub_merger::{MergerConfig, Store};
use blockhub_model::{
    CitizenId, CreditCode, Envelope, Event, EventKind, Fact, Operation, PostCategory, RosterEntry,
    SchemaRegistry, StaffStatus,
};
use blockhub_tests::{Backend, TestBroker, TestDatabase, wait_caught_up};
use chrono::{Duration as Span, NaiveDate, Utc};
use rdkafka::producer::{FutureProducer, FutureRecord};

fn roster_event(contract_end: &str, observed_offset_seconds: i64) -> Event {
    let mut envelope =
        Envelope::for_file_row("staffing.roster", "roster.xlsx", 3, Operation::Upsert);
    envelope.observed_at = Utc::now() + Span::seconds(observed_offset_seconds);
    Event {
        envelope,
        fact: Fact::RosterEntry(RosterEntry {
            citizen_id: CitizenId::parse("330106198703154214").unwrap(),
            name: "林晓雯".into(),
            unit_code: CreditCode::parse("11330681830166130U").unwrap(),
            unit_name: "诸暨市教育体育局".into(),
            post_category: PostCategory::LawEnforcementSupport,
            post_category_label: "执法辅助".into(),
            employment_form: "直接聘用".into(),
            hire_date: NaiveDate::from_ymd_opt(2021, 11, 18),
            contract_start: NaiveDate::from_ymd_opt(2021, 11, 18),
            contract_end: Some(contract_end.parse().unwrap()),
            contract_open_ended: false,
            status: StaffStatus::Active,
            status_label: "在职".into(),
            left_on: None,
            post_name: None,
        }),
    }
}

fn delivered(event: &Event, offset: i64) -> Delivered {
    Delivered {
        topic: "t.staffing.roster".into(),
        partition: 0,
        offset,
        item: DeliveredItem::Event(event.clone()),
    }
}

async fn contract_end(store: &Store) -> Option<NaiveDate> {
    let id = CitizenId::parse("330106198703154214").unwrap();
    store
        .roster_entries_of(&id)
        .await
        .unwrap()
        .first()
        .and_then(|e| e.contract_end)
}

async fn store_promises(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::open(&database.url).await.unwrap();
    let newer = roster_event("2027-01-31", 0);

    let first = store
        .apply_batch("g", &[delivered(&newer, 0)])
        .await
        .unwrap();
    assert_eq!(first.applied, 1);
    let snapshot = store.content_snapshot().await.unwrap();

    // Kafka re-delivers the batch after a crash before its offset commit.
    let again = store
        .apply_batch("g", &[delivered(&newer, 0)])
        .await
        .unwrap();
    assert_eq!((again.applied, again.redelivered), (0, 1));
    assert_eq!(store.content_snapshot().await.unwrap(), snapshot);

    // The same event published twice arrives at a new offset.
    let duplicate = store
        .apply_batch("g", &[delivered(&newer, 1)])
        .await
        .unwrap();
    assert_eq!((duplicate.applied, duplicate.duplicate_events), (0, 1));

    // A stale export read an hour earlier arrives late: it must not win,
    // and is kept as superseded history.
    let older = roster_event("2025-12-31", -3600);
    let late = store
        .apply_batch("g", &[delivered(&older, 2)])
        .await
        .unwrap();
    assert_eq!(late.superseded, 1);
    assert_eq!(
        contract_end(&store).await,
        NaiveDate::from_ymd_opt(2027, 1, 31)
    );
    let history = store.superseded_facts(10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].event_id, older.envelope.event_id);
    assert_eq!(history[0].fact_table, "roster_entries");
    assert!(
        history[0].content.contains("2025-12-31"),
        "{}",
        history[0].content
    );

    // Within one batch too: the older of two events for one fact is kept
    // as history, the newer applied.
    let (old_in_batch, new_in_batch) = (
        roster_event("2026-03-31", 10),
        roster_event("2027-02-28", 20),
    );
    let both = store
        .apply_batch(
            "g",
            &[delivered(&new_in_batch, 3), delivered(&old_in_batch, 4)],
        )
        .await
        .unwrap();
    assert_eq!((both.applied, both.superseded), (2, 1));
    assert_eq!(
        contract_end(&store).await,
        NaiveDate::from_ymd_opt(2027, 2, 28)
    );

    // A genuinely newer fact does.
    let newest = roster_event("2028-06-30", 60);
    store
        .apply_batch("g", &[delivered(&newest, 5)])
        .await
        .unwrap();
    assert_eq!(
        contract_end(&store).await,
        NaiveDate::from_ymd_opt(2028, 6, 30)
    );
    assert_eq!(
        store.next_offsets("g").await.unwrap()[&("t.staffing.roster".into(), 0)],
        6
    );

    database.remove(store).await;
}

#[tokio::test]
async fn store_promises_hold_on_sqlite() {
    store_promises(Backend::Sqlite).await;
}

#[tokio::test]
async fn store_promises_hold_on_postgres() {
    store_promises(Backend::Postgres).await;
}

/// A roster event exported `days` days from now and read `read_seconds`
/// seconds from now.
fn exported_event(contract_end: &str, days: i64, read_seconds: i64) -> Event {
    let mut event = roster_event(contract_end, read_seconds);
    event.envelope = event.envelope.exported(Some(Utc::now() + Span::days(days)));
    event
}

/// The export time orders facts before the read time, and how the events
/// were cut into batches changes neither the facts nor the history: a live
/// load (one event per batch) and a rebuild (all in one) agree.
async fn export_time_orders_facts_whatever_the_batches(backend: Backend) {
    // Read in this order: the newest export first, then an export a week
    // older (read later: a stale file found in a folder), then a re-read
    // of the newest export, then one a day newer.
    let events = [
        exported_event("2027-01-31", 0, 0),
        exported_event("2025-12-31", -7, 60),
        exported_event("2027-01-31", 0, 120),
        exported_event("2027-06-30", 1, 180),
    ];
    let one_by_one = TestDatabase::create(backend).await;
    let live = Store::open(&one_by_one.url).await.unwrap();
    let mut superseded = 0;
    for (offset, event) in events.iter().enumerate() {
        let outcome = live
            .apply_batch("g", &[delivered(event, offset as i64)])
            .await
            .unwrap();
        superseded += outcome.superseded;
        if offset == 1 {
            // Read a minute after the newer export, made a week before it.
            assert_eq!(
                contract_end(&live).await,
                NaiveDate::from_ymd_opt(2027, 1, 31)
            );
        }
    }
    assert_eq!(superseded, 1, "only the stale export is history");
    assert_eq!(
        contract_end(&live).await,
        NaiveDate::from_ymd_opt(2027, 6, 30)
    );
    let id = CitizenId::parse("330106198703154214").unwrap();
    let stored = live.roster_entries_of(&id).await.unwrap();
    let provenance = &stored[0].provenance;
    assert_eq!(provenance.event_id, events[3].envelope.event_id);
    assert_eq!(
        provenance.exported_at,
        events[3].envelope.exported_at.map(|t| t.timestamp_millis())
    );

    let in_one = TestDatabase::create(backend).await;
    let rebuilt = Store::open(&in_one.url).await.unwrap();
    let all: Vec<Delivered> = events
        .iter()
        .enumerate()
        .map(|(offset, event)| delivered(event, offset as i64))
        .collect();
    let outcome = rebuilt.apply_batch("g", &all).await.unwrap();
    assert_eq!((outcome.applied, outcome.superseded), (4, 1));
    let live_content = live.content_snapshot().await.unwrap();
    assert_eq!(live_content.superseded.len(), 1);
    assert!(live_content.superseded[0].2.contains("2025-12-31"));
    assert_eq!(rebuilt.content_snapshot().await.unwrap(), live_content);

    one_by_one.remove(live).await;
    in_one.remove(rebuilt).await;
}

#[tokio::test]
async fn export_time_orders_facts_on_sqlite() {
    export_time_orders_facts_whatever_the_batches(Backend::Sqlite).await;
}

#[tokio::test]
async fn export_time_orders_facts_on_postgres() {
    export_time_orders_facts_whatever_the_batches(Backend::Postgres).await;
}

// A message no schema can read once stalled a partition forever in other
// consumers; here it must become a dead letter and the next event apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_message_becomes_a_dead_letter_and_the_partition_moves_on() {
    let broker = TestBroker::start().await;
    let settings = broker.settings();
    settings.ensure_topics().await.unwrap();
    let database = TestDatabase::create(Backend::Sqlite).await;
    let store = Store::open(&database.url).await.unwrap();

    let topic = settings.topic(EventKind::RosterEntry);
    let producer: FutureProducer = settings.producer().unwrap();
    let poison = b"330106198703154214 is not avro".to_vec();
    let good = SchemaRegistry::get()
        .unwrap()
        .encode_event(&roster_event("2027-01-31", 0))
        .unwrap();
    for payload in [poison, good] {
        let record = FutureRecord::to(&topic)
            .key("same-person")
            .partition(0)
            .payload(&payload);
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }

    let mut config = MergerConfig::new(settings.clone());
    config.group = format!("{}merger", settings.topic_prefix);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let merger = tokio::spawn(blockhub_merger::run(config.clone(), store.clone(), async {
        let _ = stopped.await;
    }));
    wait_caught_up(&config, &store).await;

    assert_eq!(
        contract_end(&store).await,
        NaiveDate::from_ymd_opt(2027, 1, 31)
    );
    let snapshot = store.content_snapshot().await.unwrap();
    let poisoned: Vec<_> = snapshot
        .dead_letters
        .iter()
        .filter(|d| d.3 == "UNDECODABLE_EVENT")
        .collect();
    assert_eq!(poisoned.len(), 1, "{:?}", snapshot.dead_letters);
    assert_eq!(poisoned[0].1, topic);
    assert_eq!(poisoned[0].2, "0/0");
    let letters = store.dead_letters(Some("merger"), 10).await.unwrap();
    assert!(
        letters[0].raw.contains("330106********4214"),
        "{}",
        letters[0].raw
    );
    assert!(!letters[0].raw.contains("19870315"));
    assert!(
        letters[0].reason.contains("single-object"),
        "{}",
        letters[0].reason
    );

    let _ = stop.send(());
    merger.await.unwrap().unwrap();
    database.remove(store).await;
}
