//! Shared set-up for the end-to-end tests: a real tansu broker per test,
//! a fresh SQLite file or PostgreSQL database per test, unique topic
//! names, and a wait for the merger to catch up.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use blockhub_merger::{MergerConfig, Store};
use blockhub_model::KafkaSettings;
use sqlx::Connection;
use tempfile::TempDir;

/// A tansu broker on a free loopback port, stopped when dropped.
pub struct TestBroker {
    child: Child,
    /// host:port.
    pub address: String,
    storage: TempDir,
}

fn spawn_tansu(binary: &std::path::Path, storage: &TempDir, address: &str) -> Child {
    let url = format!("tcp://{address}");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(storage.path().join("broker.log"))
        .expect("broker log");
    Command::new(binary)
        .current_dir(storage.path())
        .arg("broker")
        .args(["--listener-url", &url, "--advertised-listener-url", &url])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .stdout(Stdio::from(log.try_clone().expect("log handle")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start tansu")
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

impl TestBroker {
    /// Starts tansu and waits until it answers metadata requests. A port
    /// picked free can be taken by a parallel test before tansu binds it,
    /// so a broker that exits at once is started again on another port.
    pub async fn start() -> Self {
        for _ in 0..3 {
            if let Some(broker) = Self::try_start().await {
                return broker;
            }
        }
        panic!("tansu did not start after three attempts");
    }

    async fn try_start() -> Option<Self> {
        let binary = blockhub::broker::find_tansu(None).expect(
            "tansu 0.6.0 is needed for the end-to-end tests: run `bash .ci/run`, or install it \
             and set BLOCKHUB_TANSU",
        );
        let storage = tempfile::tempdir().expect("broker storage directory");
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let child = spawn_tansu(&binary, &storage, &address);
        let mut broker = Self {
            child,
            address,
            storage,
        };
        broker.wait_ready().await.then_some(broker)
    }

    /// Kills the broker and starts it again on the same port and storage
    /// after `down` (topics and committed offsets survive, as in
    /// production).
    pub async fn restart(&mut self, down: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        tokio::time::sleep(down).await;
        let binary = blockhub::broker::find_tansu(None).expect("tansu");
        self.child = spawn_tansu(&binary, &self.storage, &self.address);
        assert!(self.wait_ready().await, "tansu did not come back");
    }

    async fn wait_ready(&mut self) -> bool {
        let broker = self;
        let settings = KafkaSettings::new(broker.address.clone());
        let started = Instant::now();
        while settings.ping(Duration::from_secs(2)).await.is_err() {
            if broker.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "tansu did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }

    /// Settings with a topic prefix unique to one test.
    pub fn settings(&self) -> KafkaSettings {
        let mut settings = KafkaSettings::new(self.address.clone());
        settings.topic_prefix = format!("t{}.", uuid::Uuid::new_v4().simple());
        settings
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which store backend a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A fresh, empty store database, removed at the end of the test.
pub struct TestDatabase {
    /// The URL to open.
    pub url: String,
    _dir: Option<TempDir>,
    drop_name: Option<String>,
}

fn postgres_admin_url() -> String {
    std::env::var("BLOCKHUB_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDatabase {
    /// Creates the database.
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("store directory");
                let url = format!("sqlite://{}", dir.path().join("store.db").display());
                Self {
                    url,
                    _dir: Some(dir),
                    drop_name: None,
                }
            }
            Backend::Postgres => {
                sqlx::any::install_default_drivers();
                let admin = postgres_admin_url();
                let name = format!("blockhub_test_{}", uuid::Uuid::new_v4().simple());
                let mut connection = sqlx::AnyConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed: {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut connection)
                    .await
                    .expect("create test database");
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(base, _)| base);
                Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    drop_name: Some(name),
                }
            }
        }
    }

    /// Drops a PostgreSQL test database (SQLite files go with their
    /// directory).
    pub async fn remove(self, store: Store) {
        store.close().await;
        self.drop_database().await;
    }

    /// Drops the database (a PostgreSQL one; an SQLite file goes with its
    /// folder), for a database no store was opened on, such as a
    /// department's source tables.
    pub async fn drop_database(self) {
        if let Some(name) = &self.drop_name {
            // FORCE (PostgreSQL 13 and later) ends sessions still open on
            // it, such as a benchmark's merger process that has not quite
            // exited; a database left behind is said, not ignored.
            let dropped = match sqlx::AnyConnection::connect(&postgres_admin_url()).await {
                Ok(mut connection) => {
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut connection)
                        .await
                        .map(|_| ())
                }
                Err(error) => Err(error),
            };
            if let Err(error) = dropped {
                eprintln!("warning: test database {name} was not dropped: {error}");
            }
        }
    }
}

/// Waits until the store has applied every message on the merger's topics.
pub async fn wait_caught_up(config: &MergerConfig, store: &Store) {
    wait_caught_up_within(config, store, Duration::from_secs(120)).await;
}

/// Waits, at most `limit`, until the store has applied every message on
/// the merger's topics.
pub async fn wait_caught_up_within(config: &MergerConfig, store: &Store, limit: Duration) {
    let started = Instant::now();
    loop {
        // A broker busy under a long load may let one metadata request
        // time out; only a lag that cannot be measured until the limit
        // fails the wait.
        let lag = match blockhub_merger::lag(config, store).await {
            Ok(lag) => lag,
            Err(error) => {
                assert!(
                    started.elapsed() < limit,
                    "lag could not be measured: {error}"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let written: i64 = lag.iter().map(|p| p.high_watermark).sum();
        if written > 0 && lag.iter().all(|p| p.lag() == 0) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "merger did not catch up: {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A file of the sample county, which lives beside the repository.
pub fn sample(relative: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/samples/county-small")
        .join(relative);
    assert!(
        path.exists(),
        "sample county file missing: {}",
        path.display()
    );
    path
}

/// A person-key secret for tests.
pub fn test_keyer() -> blockhub_model::PersonKeyer {
    blockhub_model::PersonKeyer::new(b"test-secret-0123456789").expect("keyer")
}

/// Ingests every file of the sample county, in the order a department
/// would hand them over (the quota list first, for the unit directory).
pub async fn ingest_sample_county(
    settings: &KafkaSettings,
) -> std::collections::BTreeMap<&'static str, blockhub_connector::IngestReport> {
    ingest_sample_county_keyed(settings, test_keyer()).await
}

/// Ingests the sample county as `ingest_sample_county` does, with the
/// person keys of a hub's own secret.
pub async fn ingest_sample_county_keyed(
    settings: &KafkaSettings,
    keyer: blockhub_model::PersonKeyer,
) -> std::collections::BTreeMap<&'static str, blockhub_connector::IngestReport> {
    let payroll = [
        sample("finance/payroll_202609.csv"),
        sample("finance/payroll_202610.csv"),
        sample("finance/payroll_202611.csv"),
    ];
    let mut reports = std::collections::BTreeMap::new();
    for (name, source, files) in [
        (
            "quota",
            blockhub_connector::SourceKind::Quota,
            vec![sample("staffing/quota.csv")],
        ),
        (
            "roster",
            blockhub_connector::SourceKind::Roster,
            vec![sample("staffing/roster.xlsx")],
        ),
        (
            "payroll",
            blockhub_connector::SourceKind::Payroll,
            payroll.to_vec(),
        ),
        (
            "contributions",
            blockhub_connector::SourceKind::Contributions,
            vec![sample("social_security/contributions.csv")],
        ),
        (
            "retirements",
            blockhub_connector::SourceKind::Retirements,
            vec![sample("social_security/retirements.csv")],
        ),
        (
            "court-cases",
            blockhub_connector::SourceKind::CourtCases,
            vec![sample("court/enforcement_cases.csv")],
        ),
        (
            "placements",
            blockhub_connector::SourceKind::Placements,
            vec![sample("veterans/placements.csv")],
        ),
        (
            "purchases",
            blockhub_connector::SourceKind::Purchases,
            vec![sample("finance/purchase_services.csv")],
        ),
    ] {
        let report = blockhub_connector::ingest(
            source,
            &files,
            settings,
            keyer.clone(),
            &Default::default(),
        )
        .await
        .expect("ingest");
        reports.insert(name, report);
    }
    reports
}

/// The audit key the test gateways chain their logs with.
pub const TEST_AUDIT_KEY: &[u8] = b"test-audit-key-not-for-production";

/// A gateway over a store, with a policy file it re-reads, stopped when
/// `stop` is called.
pub struct TestGateway {
    /// host:port.
    pub address: std::net::SocketAddr,
    /// The policy file (rewrite it to change the policy).
    pub policy_file: PathBuf,
    /// The status page's host:port, when the options asked for one.
    pub status_address: Option<std::net::SocketAddr>,
    _dir: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), blockhub_gateway::GatewayError>>>,
}

impl TestGateway {
    /// Starts a gateway whose callers are `tokens` (department, token)
    /// under `policy` (TOML), over plain TCP.
    pub async fn start(store: &Store, tokens: &[(&str, &str)], policy: &str) -> Self {
        Self::start_with(store, tokens, policy, |_, options| options).await
    }

    /// As `start`, letting the caller adjust the options (TLS, pinned
    /// certificates) given the gateway's temporary directory.
    pub async fn start_with(
        store: &Store,
        tokens: &[(&str, &str)],
        policy: &str,
        adjust: impl FnOnce(
            &std::path::Path,
            blockhub_gateway::GatewayOptions,
        ) -> blockhub_gateway::GatewayOptions,
    ) -> Self {
        use blockhub_gateway::{
            BoundGateway, GatewayOptions, PolicyHandle, TokenEntry, TokenRegistry, hash_token,
        };
        let dir = TempDir::new().expect("gateway directory");
        let policy_file = dir.path().join("policy.toml");
        std::fs::write(&policy_file, policy).expect("write policy");
        let registry = TokenRegistry::from_entries(
            tokens
                .iter()
                .map(|(department, token)| TokenEntry {
                    department: department.to_string(),
                    sha256: hash_token(token),
                })
                .collect(),
        );
        let options = GatewayOptions {
            tokens: registry,
            policy: std::sync::Arc::new(PolicyHandle::from_file(&policy_file).expect("policy")),
            audit_key: TEST_AUDIT_KEY.to_vec(),
            tls: None,
            kafka: None,
            health: Default::default(),
        };
        let options = adjust(dir.path(), options);
        let gateway = BoundGateway::bind("127.0.0.1:0", store.clone(), options)
            .await
            .expect("bind gateway");
        let address = gateway.address();
        let status_address = gateway.status_address();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(gateway.serve(async {
            let _ = stopped.await;
        }));
        Self {
            address,
            policy_file,
            status_address,
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A plain-TCP channel to the gateway.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(format!("http://{}", self.address))
            .expect("gateway URL")
            .connect()
            .await
            .expect("connect to the gateway")
    }

    /// Stops the gateway and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("gateway stops")
                .expect("gateway task")
                .expect("gateway ran");
        }
    }
}

/// A request carrying a bearer token.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}").parse().expect("token header");
    request.metadata_mut().insert("authorization", value);
    request
}

/// Reads `topic` from its beginning (assigned, no group) and hands each
/// message's key and payload to `done` until it returns true; fails after
/// `limit`.
pub fn read_topic_until(
    brokers: &str,
    topic: &str,
    limit: Duration,
    mut done: impl FnMut(Option<&[u8]>, &[u8]) -> bool,
) {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("test consumer");
    let started = Instant::now();
    let metadata = loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("topic metadata");
        if metadata.topics().iter().any(|t| !t.partitions().is_empty()) {
            break metadata;
        }
        assert!(started.elapsed() < limit, "topic {topic} never appeared");
        std::thread::sleep(Duration::from_millis(300));
    };
    let mut assignment = rdkafka::TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        assignment
            .add_partition_offset(topic, partition.id(), rdkafka::Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    loop {
        assert!(
            started.elapsed() < limit,
            "{topic}: expected message never came"
        );
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        if done(message.key(), message.payload().unwrap_or_default()) {
            return;
        }
    }
}

/// A whole hub as `blockhub up` runs it (embedded broker, SQLite store in
/// the data directory, status page on a free port), in a temporary data
/// directory, until `stop`.
pub struct TestHub {
    /// The data directory's folder.
    pub dir: TempDir,
    /// The data directory.
    pub data: blockhub::config::DataDir,
    /// What the hub wrote for its clients.
    pub hub: blockhub::config::HubFile,
    /// The gateway's port.
    pub gateway_port: u16,
    /// The embedded broker's port.
    pub broker_port: u16,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<std::process::ExitCode>>,
}

impl TestHub {
    /// Starts the hub and waits until it has written its hub file.
    pub async fn start() -> Self {
        use blockhub::commands::gateway::GatewayFlags;
        use blockhub::commands::up::{UpArgs, run_until};

        let dir = TempDir::new().expect("data directory");
        let data = blockhub::config::DataDir::create(dir.path()).expect("create data directory");
        let (gateway_port, broker_port) = (free_port(), free_port());
        let args = UpArgs {
            store: blockhub::StoreArgs { database_url: None },
            listen: format!("127.0.0.1:{gateway_port}"),
            broker_port,
            tansu: None,
            gateway: GatewayFlags {
                tokens_file: None,
                gateway_policy: None,
                tls_cert: None,
                tls_key: None,
                tls_client_ca: None,
                status_listen: "127.0.0.1:0".into(),
                health_config: None,
            },
            rules_interval: 1,
            policy: None,
            broker: blockhub::BrokerArgs {
                brokers: None,
                topic_prefix: None,
                partitions: 3,
                replication: 1,
            },
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let hub_data = data.clone();
        let task = tokio::spawn(async move {
            run_until(&hub_data, args, async {
                let _ = stopped.await;
            })
            .await
        });
        // The hub file appears once everything is up; clients read it.
        let started = Instant::now();
        let hub = loop {
            if let Some(hub) = data.hub() {
                break hub;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "hub did not come up"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Self {
            dir,
            data,
            hub,
            gateway_port,
            broker_port,
            stop,
            task,
        }
    }

    /// The gateway's URL and the operator token, as the client commands
    /// find them through the data directory.
    pub fn client(&self) -> (String, Option<String>) {
        let args = blockhub::ClientArgs {
            gateway: None,
            token: None,
            ca_cert: None,
            client_cert: None,
            client_key: None,
        };
        blockhub::commands::client_settings(&self.data, &args).expect("client settings")
    }

    /// The hub's broker settings, with its topic prefix.
    pub fn settings(&self) -> KafkaSettings {
        let mut settings = KafkaSettings::new(self.hub.brokers.clone());
        settings.topic_prefix = self.hub.topic_prefix.clone();
        settings
    }

    /// Stops the hub and returns its exit code; the data stay.
    pub async fn stop(self) -> (TempDir, std::process::ExitCode) {
        let _ = self.stop.send(());
        let code = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("hub stopped within 30 s")
            .expect("hub task")
            .expect("hub ran");
        (self.dir, code)
    }
}
