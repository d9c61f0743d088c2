//! `blockhub connect SOURCE --table-url URL --table NAME --watermark COLUMN`

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use blockhub_connector::IngestReport;
use blockhub_connector::table::{TableOptions, TablePoller};
use blockhub_model::PersonKeyer;
use clap::Args;

use super::ingest::{MappingArgs, SourceName, print_table};
use crate::BrokerArgs;
use crate::config::DataDir;

/// Flags of `connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The source the table holds.
    pub source: SourceName,
    /// The department's database (postgres://user@host/db). Kept out of
    /// logs; prefer the environment variable when it holds a password.
    #[arg(long, env = "BLOCKHUB_TABLE_URL", hide_env_values = true)]
    pub table_url: String,
    /// The table, optionally schema-qualified (schema.table).
    #[arg(long)]
    pub table: String,
    /// The column the department's system raises on every change (an
    /// update time or version number). Rows sharing a value are all read.
    #[arg(long)]
    pub watermark: String,
    /// A column naming each row, shown with rejected rows.
    #[arg(long)]
    pub key: Option<String>,
    /// Seconds between polls.
    #[arg(long, default_value_t = 30)]
    pub interval: u64,
    /// Poll once, print what was published, and exit (for cron).
    #[arg(long)]
    pub once: bool,
    /// With --once, print the counts as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// How this department's table differs from the defaults.
    #[command(flatten)]
    pub mapping: MappingArgs,
    /// Broker settings.
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// Runs `connect`. With --once, exits as `ingest` does: 0, or 3 when rows
/// were rejected; otherwise runs until stopped.
pub async fn run(data: &DataDir, args: ConnectArgs) -> Result<ExitCode> {
    let source = args.source.kind();
    let options = args.mapping.options(source)?;
    let settings = super::kafka_settings(data, &args.broker)?;
    let keyer = PersonKeyer::new(&data.key_secret()?).context("person-key secret")?;
    let table = TableOptions {
        url: args.table_url.clone(),
        table: args.table.clone(),
        watermark: args.watermark.clone(),
        key: args.key.clone(),
    };
    let mut poller = TablePoller::connect(source, table, &settings, keyer, &options).await?;
    if !args.once {
        poller
            .run(
                Duration::from_secs(args.interval.max(1)),
                super::stop_signal(),
            )
            .await?;
        return Ok(ExitCode::SUCCESS);
    }
    let file = poller.poll().await?;
    let rejected = file.rejected;
    let report = IngestReport {
        source: source.name().to_string(),
        files: vec![file],
        ..IngestReport::default()
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(
            &report,
            &settings.topic(blockhub_model::EventKind::DeadLetter),
        );
    }
    Ok(if rejected > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
