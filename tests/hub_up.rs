//! `blockhub up` as a newcomer runs it: embedded broker, SQLite store in
//! the data directory, merger and gateway in one process, clients finding
//! it all through the data directory.

use std::time::Duration;

use blockhub::commands::audit::AuditCommand;
use blockhub::{BrokerArgs, StoreArgs};
use blockhub_connector::{SourceKind, ingest};
use blockhub_gateway::proto::LookupRequest;
use blockhub_gateway::proto::person_lookup_client::PersonLookupClient;
use blockhub_model::{KafkaSettings, PersonKeyer};
use blockhub_tests::{TestHub, sample};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_runs_the_hub_from_a_data_directory() {
    let hub = TestHub::start().await;
    let (dir, data) = (hub.dir.path().to_path_buf(), hub.data.clone());
    let mode = std::fs::metadata(&dir).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o077,
        0
    );
    let (hub_file, broker_port, gateway_port) =
        (hub.hub.clone(), hub.broker_port, hub.gateway_port);
    assert_eq!(hub_file.brokers, format!("127.0.0.1:{broker_port}"));
    let (gateway, token) = hub.client();
    assert_eq!(gateway, format!("http://127.0.0.1:{gateway_port}"));
    let token = token.expect("operator token written by up");
    let mode = std::fs::metadata(dir.join("operator.token")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o077,
        0
    );

    let settings = KafkaSettings::new(hub_file.brokers.clone());
    let keyer = PersonKeyer::new(&data.key_secret().unwrap()).unwrap();
    ingest(
        SourceKind::Roster,
        &[sample("staffing/roster.xlsx")],
        &settings,
        keyer.clone(),
        &Default::default(),
    )
    .await
    .unwrap();
    ingest(
        SourceKind::Payroll,
        &[sample("finance/payroll_202611.csv")],
        &settings,
        keyer,
        &Default::default(),
    )
    .await
    .unwrap();

    let channel = blockhub::commands::lookup::connect(&gateway).await.unwrap();
    let mut client = PersonLookupClient::new(channel);
    let started = std::time::Instant::now();
    let reply = loop {
        let request = blockhub::commands::lookup::authorised(
            LookupRequest {
                citizen_id: "330681198308206157".into(),
                provenance: true,
                purpose: "operations".into(),
                case_number: String::new(),
            },
            Some(&token),
        )
        .unwrap();
        match client.lookup(request).await {
            Ok(reply) if reply.get_ref().latest_payment.is_some() => break reply.into_inner(),
            outcome => {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "look-up never answered as expected; the last answer: {outcome:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(reply.posts[0].unit_code, "11330681777412151D");
    // Asked for, each fact says which file, row and event stated it.
    let roster_source = reply.posts[0].provenance.as_ref().expect("provenance");
    assert_eq!(roster_source.source_system, "staffing.roster");
    assert_eq!(roster_source.location, "roster.xlsx");
    assert!(roster_source.position.parse::<u64>().is_ok());
    assert!(!roster_source.event_id.is_empty());
    let pay_source = reply
        .latest_payment
        .as_ref()
        .and_then(|p| p.provenance.as_ref());
    assert_eq!(
        pay_source.map(|p| p.location.as_str()),
        Some("payroll_202611.csv")
    );

    // Reflection lists the service, so grpcurl works without proto files.
    let channel = blockhub::commands::lookup::connect(&gateway).await.unwrap();
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"blockhub.v1.PersonLookup".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
    assert_eq!(reply.latest_payment.unwrap().net, "6175.90");

    alerts_are_served_acknowledged_and_published(&gateway, &token, &hub_file.brokers).await;

    // Every decision reaches the audit topic too, keyed by its place in
    // the chain: here the acknowledgement, with who and what.
    blockhub_tests::read_topic_until(
        &hub_file.brokers,
        "blockhub.audit",
        Duration::from_secs(60),
        |key, payload| {
            let entry: serde_json::Value = serde_json::from_slice(payload).unwrap();
            let seq = entry["seq"].as_i64().unwrap().to_string();
            assert_eq!(key, Some(seq.as_bytes()));
            assert_eq!(entry["hash"].as_str().unwrap().len(), 64);
            entry["method"] == "Alerts.Acknowledge"
                && entry["department"] == "operator"
                && entry["decision"] == "allowed"
                && entry["result_count"] == 1
        },
    );

    // The chain alone cannot show that its newest entry was deleted; the
    // copy on the audit topic does, and `audit verify` compares the two.
    let verify = || {
        blockhub::commands::audit::run(
            &data,
            AuditCommand::Verify {
                store: StoreArgs { database_url: None },
                broker: BrokerArgs {
                    brokers: None,
                    topic_prefix: None,
                    partitions: 3,
                    replication: 1,
                },
            },
        )
    };
    assert_eq!(verify().await.unwrap(), std::process::ExitCode::SUCCESS);
    let store =
        blockhub_merger::Store::open(&format!("sqlite://{}", dir.join("store.db").display()))
            .await
            .unwrap();
    let started = std::time::Instant::now();
    while !store.unpublished_audit(1).await.unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "audit never published"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let newest = store.audit_tail(1).await.unwrap()[0].seq;
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", dir.join("store.db").display()))
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE seq = $1")
        .bind(newest)
        .execute(&pool)
        .await
        .unwrap();
    let chain_only = store
        .verify_audit(&data.audit_key().unwrap())
        .await
        .unwrap();
    assert_eq!(chain_only.broken, None, "the chain alone does not see it");
    assert_eq!(verify().await.unwrap(), std::process::ExitCode::from(1));
    pool.close().await;
    store.close().await;

    // A decision just before the hub stops is copied to the audit topic on
    // the way out, not left pending for a rebuild to miss.
    let request = blockhub::commands::lookup::authorised(
        LookupRequest {
            citizen_id: "330681198308206157".into(),
            provenance: false,
            purpose: "operations".into(),
            case_number: String::new(),
        },
        Some(&token),
    )
    .unwrap();
    client.lookup(request).await.unwrap();
    let (_dir, code) = hub.stop().await;
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert!(data.hub().is_none(), "hub.json removed on stop");
    let store =
        blockhub_merger::Store::open(&format!("sqlite://{}", dir.join("store.db").display()))
            .await
            .unwrap();
    assert!(
        store.unpublished_audit(10).await.unwrap().is_empty(),
        "every audit entry copied before the hub stopped"
    );
    store.close().await;
}

/// The hub's rules loop keeps alerts; the Alerts service lists and
/// acknowledges them; every state change reaches the alerts topic.
async fn alerts_are_served_acknowledged_and_published(gateway: &str, token: &str, brokers: &str) {
    use blockhub_gateway::proto::alerts_client::AlertsClient;
    use blockhub_gateway::proto::{AcknowledgeRequest, ListAlertsRequest};

    let channel = blockhub::commands::lookup::connect(gateway).await.unwrap();
    let mut alerts = AlertsClient::new(channel);
    let started = std::time::Instant::now();
    let listed = loop {
        let request = blockhub::commands::lookup::authorised(
            ListAlertsRequest {
                page_size: 5,
                ..Default::default()
            },
            Some(token),
        )
        .unwrap();
        let reply = alerts.list(request).await.unwrap().into_inner();
        if !reply.alerts.is_empty() {
            break reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no alerts raised"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(listed.alerts.len(), 5);
    assert_eq!(
        listed.next_page_token, "5",
        "more alerts follow on the next page"
    );
    let target = listed.alerts[0].alert_id.clone();
    let request = blockhub::commands::lookup::authorised(
        AcknowledgeRequest {
            alert_id: target.clone(),
            by: "王科长".into(),
            note: "已核实".into(),
        },
        Some(token),
    )
    .unwrap();
    let acknowledged = alerts.acknowledge(request).await.unwrap().into_inner();
    assert_eq!(acknowledged.state, "acknowledged");
    assert_eq!(acknowledged.acknowledged_by, "王科长");

    let mut states = Vec::new();
    blockhub_tests::read_topic_until(
        brokers,
        "blockhub.alerts",
        Duration::from_secs(60),
        |key, payload| {
            if key == Some(target.as_bytes()) {
                let value: serde_json::Value = serde_json::from_slice(payload).unwrap();
                states.push(value["state"].as_str().unwrap().to_string());
            }
            states.contains(&"acknowledged".to_string())
        },
    );
    // The loop publishes each alert's state as it finds it: a change made
    // between two rounds may supersede the open state before it went out.
    assert!(
        states.iter().all(|s| s == "open" || s == "acknowledged"),
        "{states:?}"
    );
}
