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
        if let Some(name) = &self.drop_name
            && let Ok(mut connection) = sqlx::AnyConnection::connect(&postgres_admin_url()).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut connection)
                .await;
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
        let lag = blockhub_merger::lag(config, store)
            .await
            .expect("measure lag");
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
        let report =
            blockhub_connector::ingest(source, &files, settings, test_keyer(), &Default::default())
                .await
                .expect("ingest");
        reports.insert(name, report);
    }
    reports
}
