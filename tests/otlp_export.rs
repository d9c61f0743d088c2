//! Spans exported over OTLP: a collector on a loopback port (the real
//! OTLP/gRPC trace service) receives the connector's `ingest` span, the
//! merger's `batch` spans naming topic, partition and offsets, and the
//! gateway's `grpc` span per call, from one hub's components.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use blockhub_connector::{SourceKind, ingest};
use blockhub_gateway::proto::HealthRequest;
use blockhub_gateway::proto::sync_health_client::SyncHealthClient;
use blockhub_merger::{MergerConfig, Store};
use blockhub_tests::{
    Backend, TestBroker, TestDatabase, TestGateway, sample, test_keyer, wait_caught_up, with_token,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value {
        AnyValue {
            value: Some(any_value::Value::StringValue(text)),
        } => Some(text.clone()),
        AnyValue {
            value: Some(any_value::Value::IntValue(number)),
        } => Some(number.to_string()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spans_from_connector_merger_and_gateway_reach_an_otlp_collector() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let telemetry = blockhub::logging::init_with(0, true, Some(&format!("http://{address}")));
    assert!(telemetry.exporting());

    let broker = TestBroker::start().await;
    let settings = broker.settings();
    let database = TestDatabase::create(Backend::Sqlite).await;
    let store = Store::open(&database.url).await.unwrap();
    let mut merger = MergerConfig::new(settings.clone());
    merger.group = format!("{}merger", settings.topic_prefix);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let merger_task = tokio::spawn(blockhub_merger::run(merger.clone(), store.clone(), async {
        let _ = stopped.await;
    }));
    let roster = [sample("staffing/roster.xlsx")];
    ingest(
        SourceKind::Roster,
        &roster,
        &settings,
        test_keyer(),
        &Default::default(),
    )
    .await
    .unwrap();
    wait_caught_up(&merger, &store).await;

    let policy = "[departments.datacentre]\nmethods = [\"SyncHealth.Get\"]\n";
    let gateway = TestGateway::start(&store, &[("datacentre", "dc-token")], policy).await;
    SyncHealthClient::new(gateway.channel().await)
        .get(with_token(HealthRequest::default(), "dc-token"))
        .await
        .unwrap();
    gateway.stop().await;
    let _ = stop.send(());
    merger_task.await.unwrap().unwrap();

    let telemetry = Arc::new(telemetry);
    let flushing = telemetry.clone();
    tokio::task::spawn_blocking(move || flushing.flush())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let spans = loop {
        let spans = collector.spans.lock().unwrap().clone();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        if ["ingest", "batch", "grpc"]
            .iter()
            .all(|n| names.contains(n))
        {
            break spans;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "spans received: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let ingest_span = spans.iter().find(|s| s.name == "ingest").unwrap();
    assert_eq!(
        text(&ingest_span.attributes, "source").as_deref(),
        Some("staffing.roster")
    );
    let topic = settings.topic(blockhub_model::EventKind::RosterEntry);
    assert_eq!(text(&ingest_span.attributes, "topic"), Some(topic.clone()));

    // A batch of the roster's topic names its partitions and offsets.
    let roster_range = spans
        .iter()
        .filter(|s| s.name == "batch")
        .flat_map(|s| s.events.iter())
        .find(|e| text(&e.attributes, "topic").as_deref() == Some(topic.as_str()))
        .expect("a batch range of the roster topic");
    assert_eq!(
        text(&roster_range.attributes, "source").as_deref(),
        Some("staffing.roster")
    );
    assert!(text(&roster_range.attributes, "partition").is_some());
    assert!(text(&roster_range.attributes, "first_offset").is_some());
    assert!(text(&roster_range.attributes, "last_offset").is_some());

    let call = spans.iter().find(|s| s.name == "grpc").unwrap();
    assert_eq!(
        text(&call.attributes, "path").as_deref(),
        Some("/blockhub.v1.SyncHealth/Get")
    );
    database.remove(store).await;
}
