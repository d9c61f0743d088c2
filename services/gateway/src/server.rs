//! The gateway server: look-ups, gRPC health and reflection on one port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blockhub_health::{HealthConfig, Monitor, StatusServer};
use blockhub_merger::Store;
use blockhub_model::Clock;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tracing::{Instrument, info, info_span};

use crate::access::{Access, AuditWriter, PolicyHandle};
use crate::auth::{TokenRegistry, authenticate};
use crate::changes::ChangesService;
use crate::error::GatewayError;
use crate::lookup::LookupService;
use crate::office::OfficeService;
use crate::proto::alerts_server::AlertsServer;
use crate::proto::changes_server::ChangesServer;
use crate::proto::person_lookup_server::PersonLookupServer;
use crate::proto::staff_server::StaffServer;
use crate::proto::sync_health_server::SyncHealthServer;
use crate::sync_health::SyncHealthService;

/// What the gateway needs besides its store: who may call, what they may
/// see, and the key its audit chain is signed with.
pub struct GatewayOptions {
    /// Known tokens.
    pub tokens: TokenRegistry,
    /// The sharing policy (reloaded when its file changes).
    pub policy: Arc<PolicyHandle>,
    /// The audit chain's HMAC-SM3 key.
    pub audit_key: Vec<u8>,
    /// Server certificate and client CA for mutual TLS; plain TCP when
    /// absent.
    pub tls: Option<crate::tls::TlsFiles>,
    /// The broker whose topics Changes.Subscribe streams; without one,
    /// subscriptions are refused as unavailable.
    pub kafka: Option<blockhub_model::KafkaSettings>,
    /// Sync health: expected cadences, the clock, and where the status
    /// page is served.
    pub health: HealthOptions,
}

/// How the gateway process watches the feeds.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    /// Cadences and thresholds.
    pub config: HealthConfig,
    /// The time verdicts are made at (a test moves it).
    pub clock: Clock,
    /// Address of the status page and metrics (HTTP); none: not served.
    pub status_listen: Option<String>,
    /// How often the monitor measures lag and judges the sources.
    pub every: Duration,
    /// The merger's consumer group, whose stored offsets lag is measured
    /// against.
    pub merger_group: String,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            config: HealthConfig::default(),
            clock: Clock::system(),
            status_listen: None,
            every: Duration::from_secs(5),
            merger_group: blockhub_merger::consume::DEFAULT_GROUP.to_string(),
        }
    }
}

/// A gateway bound to its port, ready to serve.
pub struct BoundGateway {
    listener: TcpListener,
    address: SocketAddr,
    store: Store,
    tokens: Arc<TokenRegistry>,
    policy: Arc<PolicyHandle>,
    audit_key: Vec<u8>,
    tls: Option<crate::tls::TlsFiles>,
    kafka: Option<blockhub_model::KafkaSettings>,
    monitor: Arc<Monitor>,
    status: Option<StatusServer>,
    health_every: Duration,
}

impl BoundGateway {
    /// Binds `address` (port 0 picks a free port).
    pub async fn bind(
        address: &str,
        store: Store,
        options: GatewayOptions,
    ) -> Result<Self, GatewayError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| GatewayError::Bind {
                address: address.to_string(),
                source,
            })?;
        let address = listener.local_addr().map_err(|source| GatewayError::Bind {
            address: address.to_string(),
            source,
        })?;
        let health = options.health;
        let merger = options.kafka.clone().map(|kafka| {
            let mut merger = blockhub_merger::MergerConfig::new(kafka);
            merger.group = health.merger_group.clone();
            merger
        });
        let monitor = Monitor::new(store.clone(), health.config, merger, health.clock);
        let status = match &health.status_listen {
            Some(listen) => Some(StatusServer::bind(listen, monitor.clone()).await?),
            None => None,
        };
        Ok(Self {
            monitor,
            status,
            health_every: health.every,
            listener,
            address,
            store,
            tokens: Arc::new(options.tokens),
            policy: options.policy,
            audit_key: options.audit_key,
            tls: options.tls,
            kafka: options.kafka,
        })
    }

    /// The address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The status page's address, if served.
    pub fn status_address(&self) -> Option<SocketAddr> {
        self.status.as_ref().map(StatusServer::address)
    }

    /// The sync-health monitor.
    pub fn monitor(&self) -> Arc<Monitor> {
        self.monitor.clone()
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), GatewayError> {
        let span = info_span!("gateway", address = %self.address);
        async move {
            let (stop_watch, watch_stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(
                self.policy
                    .clone()
                    .watch(Duration::from_secs(1), async move {
                        let _ = watch_stopped.await;
                    }),
            );
            let access = Access::new(
                self.policy.clone(),
                AuditWriter::start(self.store.clone(), self.audit_key.clone()),
            );
            let (reporter, health) = tonic_health::server::health_reporter();
            let reflection = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .build_v1()
                .map_err(GatewayError::Reflection)?;
            let lookup = PersonLookupServer::with_interceptor(
                LookupService::new(self.store.clone(), access.clone()),
                authenticate(self.tokens.clone()),
            );
            // Subscriptions never end by themselves: they are told to when
            // the server shuts down, or the shutdown would wait for them.
            let (closing_tx, closing) = tokio::sync::watch::channel(false);
            let shutdown = async move {
                shutdown.await;
                let _ = closing_tx.send(true);
            };
            let stopped = |mut closing: tokio::sync::watch::Receiver<bool>| async move {
                let _ = closing.wait_for(|closed| *closed).await;
            };
            tokio::spawn(
                self.monitor
                    .clone()
                    .run(self.health_every, stopped(closing.clone())),
            );
            if let Some(status) = self.status {
                tokio::spawn(status.serve(stopped(closing.clone())));
            }
            let sync_health = SyncHealthServer::with_interceptor(
                SyncHealthService::new(self.monitor.clone(), access.clone(), closing.clone()),
                authenticate(self.tokens.clone()),
            );
            let changes = ChangesServer::with_interceptor(
                ChangesService::new(access.clone(), self.kafka.clone(), closing),
                authenticate(self.tokens.clone()),
            );
            let office = OfficeService::new(self.store.clone(), access.clone());
            let alerts =
                AlertsServer::with_interceptor(office.clone(), authenticate(self.tokens.clone()));
            let staff = StaffServer::with_interceptor(office, authenticate(self.tokens.clone()));
            reporter
                .set_serving::<PersonLookupServer<LookupService>>()
                .await;
            reporter.set_serving::<AlertsServer<OfficeService>>().await;
            reporter.set_serving::<StaffServer<OfficeService>>().await;
            reporter
                .set_serving::<ChangesServer<ChangesService>>()
                .await;
            reporter
                .set_serving::<SyncHealthServer<SyncHealthService>>()
                .await;
            if self.tokens.is_empty() {
                tracing::warn!("No tokens configured: every call will be refused.");
            }
            let departments = self.policy.current().departments().count();
            info!(
                tokens = self.tokens.len(),
                departments,
                tls = self.tls.is_some(),
                "Gateway serving."
            );
            // One span per call, so an exported trace shows each call
            // beside the batches and ingests it depends on.
            let mut builder = Server::builder()
                .trace_fn(|request| tracing::debug_span!("grpc", path = %request.uri().path()));
            if let Some(tls) = &self.tls {
                builder = builder
                    .tls_config(tls.server_config()?)
                    .map_err(GatewayError::Serve)?;
            }
            let served = builder
                .add_service(health)
                .add_service(reflection)
                .add_service(lookup)
                .add_service(alerts)
                .add_service(staff)
                .add_service(changes)
                .add_service(sync_health)
                .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), shutdown)
                .await
                .map_err(GatewayError::Serve);
            let _ = stop_watch.send(());
            served?;
            info!("Gateway stopped.");
            Ok(())
        }
        .instrument(span)
        .await
    }
}
