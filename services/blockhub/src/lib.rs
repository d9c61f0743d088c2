//! The `blockhub` command line: the services wired together.
//!
//! `blockhub up` runs a whole hub on one machine; `merger` and `gateway`
//! run one service each for deployments that spread them out; `ingest`,
//! `lookup`, `health` and `token` are the clients.

pub mod broker;
pub mod commands;
pub mod config;
pub mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use blockhub_merger::Store;
use clap::{Args, Parser, Subcommand};

/// Blockhub: one person- and unit-centred store from every department's data.
#[derive(Debug, Parser)]
#[command(name = "blockhub", version, about)]
pub struct Cli {
    /// Where the hub keeps its store, broker files, secrets and tokens;
    /// client commands find a running hub through it.
    #[arg(
        long,
        global = true,
        env = "BLOCKHUB_DATA_DIR",
        default_value = "./blockhub-data"
    )]
    pub data_dir: PathBuf,

    /// More log detail (-v debug, -vv trace). RUST_LOG or BLOCKHUB_LOG override.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Broker settings shared by every command that talks to Kafka.
#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// Kafka bootstrap servers (host:port,...). Default: the broker of the
    /// hub running with --data-dir; without one, the command refuses.
    #[arg(long, env = "BLOCKHUB_BROKERS")]
    pub brokers: Option<String>,

    /// Prefix of every topic name, so several hubs can share a cluster.
    #[arg(long, env = "BLOCKHUB_TOPIC_PREFIX")]
    pub topic_prefix: Option<String>,

    /// Partitions for topics Blockhub creates.
    #[arg(long, env = "BLOCKHUB_PARTITIONS", default_value_t = 3)]
    pub partitions: i32,

    /// Replication factor for topics Blockhub creates (3 on a production cluster).
    #[arg(long, env = "BLOCKHUB_REPLICATION", default_value_t = 1)]
    pub replication: i32,
}

/// Where the store is, for every command that opens it.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store: postgres://user@host/db for PostgreSQL, or sqlite://FILE.
    /// Default: for `up`, the SQLite store in --data-dir; for the other
    /// commands, the store of the hub running (or last run) with
    /// --data-dir, else that SQLite store.
    #[arg(long, env = "BLOCKHUB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl StoreArgs {
    /// The store URL to open: the flag's, else the running hub's, else
    /// the one the last hub of this data directory ran on (unless hub.json
    /// or last-store hide its password), else the data directory's own.
    pub fn url(&self, data: &config::DataDir) -> String {
        self.database_url
            .clone()
            .or_else(|| {
                recorded_store(data)
                    .map(|(store, _)| store)
                    .filter(|store| !hides_password(store))
            })
            .unwrap_or_else(|| data.store_url())
    }

    /// Opens a store that must exist already, for the commands that read
    /// what a hub built: without --database-url, the data directory must
    /// hold a hub's store.
    pub async fn open_existing(&self, data: &config::DataDir) -> anyhow::Result<Store> {
        let url = match (&self.database_url, recorded_store(data)) {
            (Some(url), _) => {
                if let Some(file) = url.strip_prefix("sqlite://") {
                    let file = file.split('?').next().unwrap_or(file);
                    if !std::path::Path::new(file).exists() {
                        anyhow::bail!(
                            "no store at {file}: check --database-url (a command that reads \
                             the store never creates one)"
                        );
                    }
                }
                url.clone()
            }
            (None, Some((store, _))) if hides_password(&store) => anyhow::bail!(
                "the hub of data directory {} uses {store}, whose password is not written \
                 down: pass --database-url (or BLOCKHUB_DATABASE_URL)",
                data.root().display(),
            ),
            (None, Some((store, running))) => {
                if !running {
                    // Said, because no hub runs to show which store this is.
                    eprintln!(
                        "(reading {store}, the store the last hub of this data directory ran on)"
                    );
                }
                store
            }
            (None, None) if !data.store_file().exists() => anyhow::bail!(
                "no store in data directory {} (no hub has run there): pass the hub's \
                 --data-dir (before or after the command's own flags), or --database-url",
                data.root().display()
            ),
            (None, None) => data.store_url(),
        };
        Store::open(&url)
            .await
            .map_err(|error| anyhow::Error::new(error).context("opening the store"))
    }
}

/// Gateway client settings.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The gateway's URL. Default: the gateway of the hub running with
    /// --data-dir (and its operator token); without one, the command refuses.
    #[arg(long, env = "BLOCKHUB_GATEWAY")]
    pub gateway: Option<String>,

    /// The bearer token. Default: the operator token in --data-dir.
    #[arg(long, env = "BLOCKHUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// The CA certificate (PEM) that signed an https gateway's certificate.
    #[arg(long, env = "BLOCKHUB_GATEWAY_CA")]
    pub ca_cert: Option<std::path::PathBuf>,

    /// A client certificate (PEM) for mutual TLS; it identifies the
    /// department instead of a token.
    #[arg(long, env = "BLOCKHUB_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<std::path::PathBuf>,

    /// The client certificate's private key (PEM).
    #[arg(long, env = "BLOCKHUB_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<std::path::PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a whole hub on this machine: broker, store, merger and gateway.
    Up(commands::up::UpArgs),
    /// Read department exports and publish their rows as events.
    Ingest(commands::ingest::IngestArgs),
    /// Poll a department's PostgreSQL table and publish its changed rows.
    Connect(commands::connect::ConnectArgs),

    /// Run the merger alone: topics in, store out.
    Merger(commands::merger::MergerArgs),
    /// Run the gateway alone: store out over gRPC.
    Gateway(commands::gateway::GatewayArgs),
    /// Look up a person by citizen ID through the gateway.
    Lookup(commands::lookup::LookupArgs),
    /// Every feed's sync health (OK, LATE, STALLED, FAILING), why, and what
    /// to do; --serving-only just checks that the gateway answers.
    Health(commands::health::HealthArgs),
    /// List rejected rows and events with where and why (IDs masked).
    DeadLetters(commands::dead_letters::DeadLettersArgs),
    /// List statements kept as history instead of applied, because the
    /// store held a newer one (an old export ingested late); IDs masked.
    Superseded(commands::superseded::SupersededArgs),
    /// The staffing office's alerts, kept with their state; `alerts ack`.
    Alerts(commands::alerts::AlertsArgs),
    /// Replay every topic into a fresh database (and restore alert states).
    Rebuild(commands::rebuild::RebuildArgs),
    /// A unit's staff, counts per unit and post category, a person's history.
    Staff(commands::staff::StaffArgs),
    /// Per-unit and city-wide figures as JSON, CSV or an Excel workbook.
    Report(commands::report::ReportArgs),
    /// Manage gateway tokens.
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// The gateway's audit log: verify its chain, show recent entries.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// The gateway's sharing policy: print the shipped one, check a file.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
}

impl Command {
    /// Whether the command runs until stopped (a service whose log is its
    /// record), rather than answering once (whose output is its answer and
    /// whose log only needs warnings).
    pub fn is_service(&self) -> bool {
        match self {
            Self::Up(_) | Self::Merger(_) | Self::Gateway(_) => true,
            Self::Connect(args) => !args.once,
            _ => false,
        }
    }
}

/// The store of the hub running with this data directory, else of the last
/// one that ran there, and whether it runs: read from hub.json, else from
/// last-store.
fn recorded_store(data: &config::DataDir) -> Option<(String, bool)> {
    match data.hub() {
        Some(hub) => Some((hub.store, true)),
        None => data.last_store().map(|store| (store, false)),
    }
}

/// Whether a recorded store URL stands without its password (`up` writes
/// it through `redact`, which puts *** for one): it cannot be opened so.
fn hides_password(url: &str) -> bool {
    url.contains(":***@")
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Logging starts inside the runtime, which an OTLP exporter runs on.
    let telemetry = {
        let _entered = runtime.enter();
        logging::init(cli.verbose, cli.command.is_service())
    };
    let result = runtime.block_on(commands::dispatch(cli));
    telemetry.shutdown();
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", blockhub_model::error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DataDir, HubFile};

    fn hub_file(store: &str, pid: u32) -> HubFile {
        HubFile {
            brokers: "127.0.0.1:1".into(),
            topic_prefix: "blockhub.".into(),
            gateway: "http://127.0.0.1:1".into(),
            store: store.into(),
            pid,
            status: None,
        }
    }

    #[tokio::test]
    async fn client_commands_read_the_running_hubs_store_not_a_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::create(dir.path()).unwrap();
        let args = StoreArgs { database_url: None };
        let elsewhere = format!("sqlite://{}", dir.path().join("elsewhere.db").display());

        data.write_hub(&hub_file(&elsewhere, std::process::id()))
            .unwrap();
        assert_eq!(args.url(&data), elsewhere);
        let flag = StoreArgs {
            database_url: Some("sqlite:///given.db".into()),
        };
        assert_eq!(flag.url(&data), "sqlite:///given.db");

        // A hub whose password hub.json does not keep: asked for, not guessed.
        let hidden = "postgres://hub:***@127.0.0.1/blockhub";
        data.write_hub(&hub_file(hidden, std::process::id()))
            .unwrap();
        let error = args.open_existing(&data).await.err().unwrap();
        assert!(format!("{error:#}").contains("--database-url"), "{error:#}");

        // A hub killed before it removed hub.json: its addresses are not
        // used, and the store is the one the last hub ran on.
        data.write_hub(&hub_file(&elsewhere, u32::MAX)).unwrap();
        assert!(data.hub().is_none() && data.stale_hub_file());
        assert_eq!(
            args.url(&data),
            data.store_url(),
            "no hub ever wrote last-store"
        );
        data.write_last_store(&elsewhere).unwrap();
        assert_eq!(args.url(&data), elsewhere);
        data.remove_hub();
        assert_eq!(args.url(&data), elsewhere, "after a clean stop too");
    }
}
