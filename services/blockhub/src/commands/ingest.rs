//! `blockhub ingest SOURCE FILE...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use blockhub_connector::{FileReport, IngestReport, SourceKind, UnitDirectory, ingest};
use blockhub_model::{CreditCode, PersonKeyer};
use clap::{Args, ValueEnum};

use crate::BrokerArgs;
use crate::config::DataDir;

/// Which export a file is.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SourceName {
    /// The staffing office's unit quota list.
    Quota,
    /// The staffing office's real-name roster.
    Roster,
    /// The finance bureau's monthly payroll.
    Payroll,
    /// The social-security bureau's monthly contributions.
    Contributions,
}

/// Flags of `ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The source the files come from.
    pub source: SourceName,
    /// The exports (.csv in UTF-8 or GB18030, .xlsx).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Unit names as departments write them, mapped to credit codes (TOML,
    /// an `[aliases]` table), for exports that name units without codes.
    /// The quota list already ingested is always used.
    #[arg(long, env = "BLOCKHUB_UNIT_ALIASES")]
    pub unit_aliases: Option<PathBuf>,
    /// The credit code of the unit the whole export belongs to, for rows
    /// that name no unit (a unit's own staff list or payroll). Rows that
    /// do name a unit keep theirs.
    #[arg(long)]
    pub unit: Option<String>,
    /// Print the counts as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Broker settings.
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// Runs `ingest`. Exits 0 when every data row was published, 3 when some
/// rows were rejected (and kept as dead letters), 2 when a file could not
/// be read.
pub async fn run(data: &DataDir, args: IngestArgs) -> Result<ExitCode> {
    let source = match args.source {
        SourceName::Quota => SourceKind::Quota,
        SourceName::Roster => SourceKind::Roster,
        SourceName::Payroll => SourceKind::Payroll,
        SourceName::Contributions => SourceKind::Contributions,
    };
    let settings = super::kafka_settings(data, &args.broker)?;
    let keyer = PersonKeyer::new(&data.key_secret()?).context("person-key secret")?;
    let mut aliases = match &args.unit_aliases {
        Some(path) => UnitDirectory::from_aliases_file(path)?,
        None => UnitDirectory::default(),
    };
    if let Some(unit) = &args.unit {
        aliases.set_export_unit(CreditCode::parse(unit).context("--unit")?);
    }
    let report = ingest(source, &args.files, &settings, keyer, &aliases)
        .await
        .with_context(|| format!("publishing to the broker at {}", settings.brokers))?;

    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["total"] = serde_json::to_value(report.total())?;
        println!("{}", serde_json::to_string(&value)?);
    } else {
        print_table(
            &report,
            &settings.topic(blockhub_model::EventKind::DeadLetter),
        );
    }
    Ok(if report.has_failures() {
        ExitCode::from(2)
    } else if report.total().rejected > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_table(report: &IngestReport, dead_letter_topic: &str) {
    println!(
        "{:<32} {:>9} {:>9} {:>7} {:>7} {:>7} {:>9}",
        "file", "rows read", "published", "title", "blank", "totals", "rejected"
    );
    let line = |file: &FileReport, name: &str| {
        println!(
            "{:<32} {:>9} {:>9} {:>7} {:>7} {:>7} {:>9}",
            name,
            file.rows_read,
            file.published,
            file.skipped_title,
            file.skipped_blank,
            file.skipped_totals,
            file.rejected
        );
    };
    for file in &report.files {
        let name = std::path::Path::new(&file.file)
            .file_name()
            .map_or(file.file.clone(), |n| n.to_string_lossy().into_owned());
        line(file, &name);
    }
    if report.files.len() > 1 {
        line(&report.total(), "total");
    }
    for file in &report.files {
        for sample in &file.rejected_sample {
            println!(
                "  rejected {} row {}: {}",
                file.file, sample.row, sample.reason
            );
        }
        if file.rejected > file.rejected_sample.len() as u64 {
            println!(
                "  ... and {} more",
                file.rejected - file.rejected_sample.len() as u64
            );
        }
        if file.padded > 0 {
            println!(
                "  {}: {} short rows padded with empty cells",
                file.file, file.padded
            );
        }
        if let Some(error) = &file.error {
            println!("  FAILED {error}");
        }
    }
    let rejected = report.total().rejected;
    if rejected > 0 {
        println!("Rejected rows are kept, with their reasons, on topic {dead_letter_topic}.");
    }
}
