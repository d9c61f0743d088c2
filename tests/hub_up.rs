//! `blockhub up` as a newcomer runs it: embedded broker, SQLite store in
//! the data directory, merger and gateway in one process, clients finding
//! it all through the data directory.

use std::time::Duration;

use blockhub::commands::up::{UpArgs, run_until};
use blockhub::config::DataDir;
use blockhub::{BrokerArgs, ClientArgs, StoreArgs};
use blockhub_connector::{SourceKind, ingest};
use blockhub_gateway::proto::LookupRequest;
use blockhub_gateway::proto::person_lookup_client::PersonLookupClient;
use blockhub_model::{KafkaSettings, PersonKeyer};
use blockhub_tests::{free_port, sample};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_runs_the_hub_from_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::create(dir.path()).unwrap();
    let mode = std::fs::metadata(dir.path()).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o077,
        0
    );
    let broker_port = free_port();
    let gateway_port = free_port();
    let args = UpArgs {
        store: StoreArgs { database_url: None },
        listen: format!("127.0.0.1:{gateway_port}"),
        broker_port,
        tansu: None,
        tokens_file: None,
        broker: BrokerArgs {
            brokers: None,
            topic_prefix: None,
            partitions: 3,
            replication: 1,
        },
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let hub_data = data.clone();
    let hub = tokio::spawn(async move {
        run_until(&hub_data, args, async {
            let _ = stopped.await;
        })
        .await
    });

    // The hub file appears once everything is up; clients read it.
    let started = std::time::Instant::now();
    let hub_file = loop {
        if let Some(hub) = data.hub() {
            break hub;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "hub did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hub_file.brokers, format!("127.0.0.1:{broker_port}"));
    let client_args = ClientArgs {
        gateway: None,
        token: None,
    };
    let (gateway, token) = blockhub::commands::client_settings(&data, &client_args).unwrap();
    assert_eq!(gateway, format!("http://127.0.0.1:{gateway_port}"));
    let token = token.expect("operator token written by up");
    let mode = std::fs::metadata(dir.path().join("operator.token")).unwrap();
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
            },
            Some(&token),
        )
        .unwrap();
        match client.lookup(request).await {
            Ok(reply) if reply.get_ref().latest_payment.is_some() => break reply.into_inner(),
            _ => {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "look-up never answered"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(reply.posts[0].unit_code, "11330681777412151D");

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

    let _ = stop.send(());
    let code = tokio::time::timeout(Duration::from_secs(30), hub)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert!(data.hub().is_none(), "hub.json removed on stop");
}
