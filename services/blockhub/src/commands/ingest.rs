//! `blockhub ingest SOURCE FILE...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use blockhub_connector::{
    FileReport, IngestOptions, IngestReport, Mapping, SourceKind, UnitDirectory, ingest,
};

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
    /// The social-security bureau's pension starts.
    Retirements,
    /// The court's enforcement cases.
    CourtCases,
    /// The veterans-affairs bureau's placements.
    Placements,
    /// The finance bureau's purchased-service contracts.
    Purchases,
}

/// Flags of `ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The source the files come from.
    pub source: SourceName,
    /// The exports (.csv in UTF-8 or GB18030, .xlsx).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How this department's export differs from the defaults.
    #[command(flatten)]
    pub mapping: MappingArgs,
    /// When these exports were made: 2026-11-30, 2026-11-30 17:30 (local
    /// time) or RFC 3339. Of two exports stating one fact, the later made
    /// holds it, whichever is ingested last. Default: each workbook's saved
    /// time, else each file's modification time (the summary says which).
    #[arg(long, value_parser = blockhub_connector::parse_export_time)]
    pub exported_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Print the counts as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Broker settings.
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// Flags saying how a department's export or table differs from the
/// defaults; shared by `ingest` and `connect`.
#[derive(Debug, Args)]
pub struct MappingArgs {
    /// Unit names as departments write them, mapped to credit codes (TOML,
    /// an `[aliases]` table), for exports that name units without codes.
    /// The quota list already ingested is always used.
    #[arg(long, env = "BLOCKHUB_UNIT_ALIASES")]
    pub unit_aliases: Option<PathBuf>,
    /// How this department's export differs from the defaults (TOML):
    /// `[columns]` header texts per field, `[values.FIELD]` label maps.
    /// See the README's "Mapping a department's export".
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// The credit code of the unit the whole export belongs to, for rows
    /// that name no unit (a unit's own staff list or payroll). Rows that
    /// do name a unit keep theirs.
    #[arg(long)]
    pub unit: Option<String>,
}

impl MappingArgs {
    /// The aliases and mapping these flags name, checked for `source`.
    pub fn options(&self, source: SourceKind) -> Result<IngestOptions> {
        let mut aliases = match &self.unit_aliases {
            Some(path) => UnitDirectory::from_aliases_file(path)?,
            None => UnitDirectory::default(),
        };
        if let Some(unit) = &self.unit {
            aliases.set_export_unit(CreditCode::parse(unit).context("--unit")?);
        }
        let mapping = match &self.mapping {
            Some(path) => Mapping::from_file(path, source)?,
            None => Mapping::default(),
        };
        Ok(IngestOptions {
            aliases,
            mapping,
            ..IngestOptions::default()
        })
    }
}

impl SourceName {
    /// The connector's source.
    pub fn kind(self) -> SourceKind {
        match self {
            SourceName::Quota => SourceKind::Quota,
            SourceName::Roster => SourceKind::Roster,
            SourceName::Payroll => SourceKind::Payroll,
            SourceName::Contributions => SourceKind::Contributions,
            SourceName::Retirements => SourceKind::Retirements,
            SourceName::CourtCases => SourceKind::CourtCases,
            SourceName::Placements => SourceKind::Placements,
            SourceName::Purchases => SourceKind::Purchases,
        }
    }
}

/// Runs `ingest`. Exits 0 when every data row was published, 3 when some
/// rows were rejected (and kept as dead letters), 2 when a file could not
/// be read.
pub async fn run(data: &DataDir, args: IngestArgs) -> Result<ExitCode> {
    let source = args.source.kind();
    let options = IngestOptions {
        exported_at: args.exported_at,
        ..args.mapping.options(source)?
    };
    let settings = super::kafka_settings(data, &args.broker)?;
    let keyer = PersonKeyer::new(&data.key_secret()?).context("person-key secret")?;
    let report = ingest(source, &args.files, &settings, keyer, &options)
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

pub fn print_table(report: &IngestReport, dead_letter_topic: &str) {
    println!(
        "{:<28} {:>9} {:>7} {:>7} {:>9} {:>6} {:>6} {:>6} {:>8}",
        "file", "rows read", "new", "changed", "unchanged", "title", "blank", "totals", "rejected"
    );
    let line = |file: &FileReport, name: &str| {
        println!(
            "{:<28} {:>9} {:>7} {:>7} {:>9} {:>6} {:>6} {:>6} {:>8}",
            name,
            file.rows_read,
            file.inserted,
            file.updated,
            file.unchanged,
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
        if let Some(exported) = &file.exported {
            let local = exported.at.with_timezone(&chrono::Local);
            println!(
                "  {}: exported {} ({})",
                file.name(),
                local.format("%Y-%m-%d %H:%M:%S %:z"),
                exported.from.label()
            );
        }
        for sample in &file.rejected_sample {
            println!(
                "  rejected {} row {}: {}",
                file.file, sample.position, sample.reason
            );
        }
        if file.rejected > file.rejected_sample.len() as u64 {
            println!(
                "  ... and {} more",
                file.rejected - file.rejected_sample.len() as u64
            );
        }
        if file.stale > 0 {
            let rows = if file.stale == 1 { "row" } else { "rows" };
            println!(
                "  {}: {} {rows} older than what a newer export of the same facts stated: \
                 published as history, not applied (blockhub superseded lists them)",
                file.file, file.stale
            );
        }
        if file.outdated > 0 {
            let rows = if file.outdated == 1 { "row" } else { "rows" };
            println!(
                "  {}: {} {rows} from an export older than one of the same unit (or list) \
                 ingested before: not published, the newer export holds",
                file.file, file.outdated
            );
        }
        if file.padded > 0 {
            println!(
                "  {}: {} short rows padded with empty cells",
                file.file, file.padded
            );
        }
        for (warning, count) in &file.warnings {
            let rows = if *count == 1 { "row" } else { "rows" };
            println!("  {}: {count} {rows}: {warning}", file.file);
        }
        if let Some(error) = &file.error {
            println!("  FAILED {error}");
        }
    }
    if report.deleted > 0 {
        println!(
            "{} published before and no longer in the export: published as deletes.",
            report.deleted
        );
    }
    if report.deletes_kept_newer > 0 {
        println!(
            "{} missing from the export but stated by a newer export: not deleted.",
            report.deletes_kept_newer
        );
    }
    if report.deletes_withheld > 0 {
        println!(
            "{} published before are missing from the export but were NOT deleted, because \
             rows were rejected or a file failed; fix those and ingest again.",
            report.deletes_withheld
        );
    }
    let rejected = report.total().rejected;
    if rejected > 0 {
        println!("Rejected rows are kept, with their reasons, on topic {dead_letter_topic}.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_health_names_each_source_as_the_command_line_does() {
        for name in SourceName::value_variants() {
            let typed = name.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(name.kind().event_kind().ingest_name(), Some(typed.as_str()));
        }
    }
}
