//! Logging setup: human-readable lines on stderr, filtered by RUST_LOG
//! (or BLOCKHUB_LOG); INFO by default for services, WARN for commands that
//! print their own answer (ingest, lookup, ...), so the answer is not lost
//! among log lines. -v shows everything.
//!
//! With `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set (such as http://127.0.0.1:4317), spans are also exported over OTLP
//! (gRPC) to that collector: the connector's `ingest` per file (source,
//! file, topic), the merger's `batch` (topic, partition, offsets, sources)
//! and the gateway's `grpc` per call, filtered by BLOCKHUB_TRACE (default:
//! Blockhub's own spans down to DEBUG, other crates' at WARN).
//!
//! TODO(trace context): the spans of one event are separate traces in each
//! process; carrying a `traceparent` header on each Kafka record and
//! linking the merger's batch span to the records' contexts would join
//! them into one trace from export file to gateway.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// The spans exported over OTLP unless BLOCKHUB_TRACE says otherwise.
const DEFAULT_TRACE_FILTER: &str = "warn,blockhub=debug,blockhub_connector=debug,\
    blockhub_merger=debug,blockhub_gateway=debug,blockhub_rules=debug,blockhub_health=info";

/// The span exporter, if one was configured; flush it before exiting.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans still buffered. Blocks: call it outside async code
    /// (or in `spawn_blocking`).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(error) = provider.force_flush()
        {
            eprintln!("warning: spans could not be sent to the OTLP collector: {error}");
        }
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            let _ = provider.shutdown();
        }
    }
}

/// Starts the tracing subscriber, exporting spans over OTLP when the
/// OpenTelemetry environment names a collector. Call it inside the Tokio
/// runtime: the exporter runs on it.
pub fn init(verbose: u8, service: bool) -> Telemetry {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty());
    init_with(verbose, service, endpoint.as_deref())
}

/// Starts the tracing subscriber, exporting spans to `otlp` if given.
pub fn init_with(verbose: u8, service: bool, otlp: Option<&str>) -> Telemetry {
    let default = match verbose {
        0 if service => "info,rdkafka=warn,sqlx=warn,h2=warn,tower=warn",
        // Progress lines stay: off a terminal they replace the progress bar.
        0 => "warn,blockhub_connector::progress=info",
        1 => "debug,rdkafka=info,sqlx=warn,h2=info,tower=info,hyper=info",
        _ => "trace",
    };
    let filter = std::env::var("BLOCKHUB_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_filter(filter);

    let mut telemetry = Telemetry::default();
    let spans = otlp.and_then(|endpoint| match exporter(endpoint) {
        Ok(provider) => {
            let filter = std::env::var("BLOCKHUB_TRACE")
                .ok()
                .and_then(|spec| EnvFilter::try_new(spec).ok())
                .unwrap_or_else(|| EnvFilter::new(DEFAULT_TRACE_FILTER));
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("blockhub"))
                .with_filter(filter);
            telemetry.provider = Some(provider);
            Some(layer)
        }
        Err(reason) => {
            eprintln!("warning: spans are not exported to {endpoint}: {reason}");
            None
        }
    });
    let _ = Registry::default().with(lines).with(spans).try_init();
    if let Some(endpoint) = otlp.filter(|_| telemetry.exporting()) {
        tracing::info!(%endpoint, "Spans exported over OTLP.");
    }
    telemetry
}

fn exporter(endpoint: &str) -> Result<SdkTracerProvider, String> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err("no async runtime to run the exporter on".into());
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|error| error.to_string())?;
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("blockhub")
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}
