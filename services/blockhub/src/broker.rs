//! The embedded broker: tansu 0.6.0, a Kafka-compatible broker, run as a
//! child process with its topics in an SQLite file in the data directory.
//!
//! A separate process rather than a linked library keeps Blockhub's own
//! build small and exercises exactly the Kafka protocol path a production
//! cluster uses. If tansu is not installed, Blockhub installs it once with
//! cargo into a cache outside the data directory.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use blockhub_model::KafkaSettings;
use tokio::process::{Child, Command};
use tracing::{info, warn};

use crate::config::DataDir;

/// The tansu release Blockhub is tested with.
pub const TANSU_VERSION: &str = "0.6.0";
const TANSU_FEATURES: &str = "dynostore,libsql,postgres";

/// Where an installed tansu is cached between runs and machines' sessions.
pub fn tansu_cache_root() -> PathBuf {
    let base = std::env::var_os("BLOCKHUB_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/blockhub"))
        })
        .unwrap_or_else(|| PathBuf::from("/tmp/blockhub-cache"));
    base.join(format!("tansu-{TANSU_VERSION}"))
}

/// Finds a tansu binary: the given path, BLOCKHUB_TANSU, the cache, PATH.
pub fn find_tansu(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("BLOCKHUB_TANSU") {
        return Some(PathBuf::from(path));
    }
    let cached = tansu_cache_root().join("bin/tansu");
    if cached.is_file() {
        return Some(cached);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("tansu"))
            .find(|path| path.is_file())
    })
}

/// Installs tansu into the cache with cargo; takes about 15 minutes on two
/// cores, once.
pub async fn install_tansu(log: &Path) -> Result<PathBuf> {
    let root = tansu_cache_root();
    info!(
        version = TANSU_VERSION,
        root = %root.display(),
        log = %log.display(),
        "Installing the tansu broker with cargo (once; about 15 minutes on two cores)."
    );
    let log_file =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let status = Command::new("cargo")
        .args([
            "install",
            "tansu",
            "--version",
            TANSU_VERSION,
            "--locked",
            "--features",
        ])
        .arg(TANSU_FEATURES)
        .arg("--root")
        .arg(&root)
        .stdout(Stdio::from(log_file.try_clone()?))
        .stderr(Stdio::from(log_file))
        .status()
        .await
        .context("running cargo install tansu (is cargo on PATH?)")?;
    if !status.success() {
        bail!("installing tansu failed ({status}); see {}", log.display());
    }
    Ok(root.join("bin/tansu"))
}

/// A running embedded broker.
pub struct EmbeddedBroker {
    child: Child,
    /// host:port clients connect to.
    pub address: String,
    /// The broker's log file.
    pub log: PathBuf,
    /// The broker's storage.
    pub storage: PathBuf,
}

impl EmbeddedBroker {
    /// Starts tansu on 127.0.0.1:`port` with its storage in the data
    /// directory, installing it first if needed, and waits until it answers.
    pub async fn start(data: &DataDir, port: u16, tansu: Option<&Path>) -> Result<Self> {
        let address = format!("127.0.0.1:{port}");
        if TcpStream::connect_timeout(&address.parse()?, Duration::from_millis(300)).is_ok() {
            bail!(
                "port {port} is already in use: another broker or hub runs there. Stop it, or \
                 pass --broker-port for another port, or --brokers {address} to use it"
            );
        }
        let binary = match find_tansu(tansu) {
            Some(path) => path,
            None => install_tansu(&data.path("logs/tansu-install.log")).await?,
        };
        let storage_dir = data.path("broker");
        std::fs::create_dir_all(&storage_dir)
            .with_context(|| format!("creating {}", storage_dir.display()))?;
        let storage = storage_dir.join("tansu.db");
        let log = data.path("logs/broker.log");
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;

        let url = format!("tcp://{address}");
        // tansu reads the path of an sqlite:// URL relative to its working
        // directory, so it runs inside the storage directory.
        let mut command = Command::new(&binary);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches only the child.
        // It asks the kernel to stop the broker if this process dies without
        // cleaning up (kill -9), so no orphan keeps the port and the files.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command
            .current_dir(&storage_dir)
            .env("NO_COLOR", "1")
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::from(log_file.try_clone()?))
            .stderr(Stdio::from(log_file))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting tansu at {}", binary.display()))?;
        let mut broker = Self {
            child,
            address,
            log,
            storage,
        };
        broker.wait_ready(Duration::from_secs(30)).await?;
        info!(address = %broker.address, storage = %broker.storage.display(), "Broker started.");
        Ok(broker)
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let started = Instant::now();
        let settings = KafkaSettings::new(self.address.clone());
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "tansu exited at start ({status}); see {}",
                    self.log.display()
                );
            }
            let listening =
                TcpStream::connect_timeout(&self.address.parse()?, Duration::from_millis(200))
                    .is_ok();
            if listening && settings.ping(Duration::from_secs(3)).await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!(
                    "tansu did not answer within {limit:?}; see {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The process id, for operators.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Asks the broker to stop, and kills it if it does not within 10 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
                Ok(_) => info!("Broker stopped."),
                Err(_) => {
                    warn!("Broker did not stop within 10 s; killing it.");
                    let _ = self.child.kill().await;
                }
            }
        }
    }
}
