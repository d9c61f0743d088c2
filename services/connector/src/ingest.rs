//! `blockhub ingest`: one export file in, events and dead letters out.
//!
//! Each row is read, classified (title, header, data, totals, blank),
//! parsed by its source and published; a row that fails its checks goes to
//! the dead-letter topic with file, row and every reason, and the next row
//! goes on. Counts come back in an `IngestReport`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use blockhub_model::fold::fold_identifier;
use blockhub_model::{
    DeadLetter, Envelope, Event, KafkaSettings, Operation, PersonKeyer, error_chain, mask_id_text,
    mask_ids_in_text,
};
use chrono::Utc;
use serde::Serialize;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::directory::UnitDirectory;
use crate::error::ConnectorError;
use crate::export::Cell;
use crate::layout::Layout;
use crate::progress::Progress;
use crate::publish::Publisher;
use crate::reader::{RowOutcome, SourceReader};
use crate::sources::SourceKind;

/// What one file yielded.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FileReport {
    /// The file as given.
    pub file: String,
    /// How a CSV file was decoded.
    pub encoding: Option<String>,
    /// The row holding the header (the lower one of a two-row header).
    pub header_row: Option<u64>,
    /// Every row read, whatever it was.
    pub rows_read: u64,
    /// Events the broker confirmed.
    pub published: u64,
    /// Title rows above the header, and the header rows themselves.
    pub skipped_title: u64,
    /// Blank or formatted-only rows.
    pub skipped_blank: u64,
    /// Totals rows (合计).
    pub skipped_totals: u64,
    /// Rows rejected to the dead-letter topic.
    pub rejected: u64,
    /// Rows shorter than the header, padded with empty cells.
    pub padded: u64,
    /// The first rejected rows with their reasons (ID numbers masked).
    pub rejected_sample: Vec<RejectedRow>,
    /// Rejection counts by reason code.
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
    /// Why the file stopped early, if it did.
    pub error: Option<String>,
}

/// A rejected row, as shown to the person running the ingest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RejectedRow {
    /// The row number.
    pub row: u64,
    /// Every reason.
    pub reason: String,
}

/// How many rejected rows a report lists; the rest are on the dead-letter topic.
const REJECTED_SAMPLE: usize = 20;

/// What one ingest run yielded.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct IngestReport {
    /// The source name.
    pub source: String,
    /// One report per file, in the order given.
    pub files: Vec<FileReport>,
}

impl IngestReport {
    /// Totals over all files.
    pub fn total(&self) -> FileReport {
        let mut total = FileReport {
            file: "total".into(),
            ..FileReport::default()
        };
        for file in &self.files {
            total.rows_read += file.rows_read;
            total.published += file.published;
            total.skipped_title += file.skipped_title;
            total.skipped_blank += file.skipped_blank;
            total.skipped_totals += file.skipped_totals;
            total.rejected += file.rejected;
            total.padded += file.padded;
            for (reason, count) in &file.rejected_by_reason {
                *total.rejected_by_reason.entry(reason.clone()).or_default() += count;
            }
        }
        total
    }

    /// Whether any file stopped early.
    pub fn has_failures(&self) -> bool {
        self.files.iter().any(|file| file.error.is_some())
    }
}

/// Reads each file of one source and publishes its rows.
pub async fn ingest(
    source: SourceKind,
    files: &[PathBuf],
    settings: &KafkaSettings,
    keyer: PersonKeyer,
    aliases: &UnitDirectory,
) -> Result<IngestReport, ConnectorError> {
    let mut publisher = Publisher::connect(settings, keyer).await?;
    let mut directory = match source {
        SourceKind::Quota => UnitDirectory::default(),
        SourceKind::Roster | SourceKind::Payroll | SourceKind::Contributions => {
            UnitDirectory::from_topic(settings).await?
        }
    };
    directory.extend(aliases);
    let directory = Arc::new(directory);
    let mut report = IngestReport {
        source: source.name().to_string(),
        files: Vec::new(),
    };
    for path in files {
        let span = info_span!("ingest", source = source.name(), file = %path.display());
        let file_report = ingest_file(source, path, &mut publisher, directory.clone())
            .instrument(span)
            .await?;
        report.files.push(file_report);
    }
    Ok(report)
}

async fn ingest_file(
    source: SourceKind,
    path: &Path,
    publisher: &mut Publisher,
    directory: Arc<UnitDirectory>,
) -> Result<FileReport, ConnectorError> {
    let file = path.display().to_string();
    let file_name = path
        .file_name()
        .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
    let mut report = FileReport {
        file: file.clone(),
        ..FileReport::default()
    };
    let confirmed_before = publisher.confirmed();

    let reader = match SourceReader::open(source, path, directory) {
        Ok(reader) => reader,
        Err(error) => {
            return file_failed(publisher, source, &file_name, "file", report, error).await;
        }
    };
    report.encoding = reader.encoding().map(|e| e.name().to_string());
    info!(
        encoding = report.encoding.as_deref().unwrap_or("workbook"),
        "Reading export."
    );

    let mut progress = Progress::start(&file_name);
    let mut reader = reader;
    while let Some(next) = reader.next() {
        let (row, outcome) = match next {
            Ok(next) => next,
            Err(error) => {
                progress.finish();
                let position = match report.rows_read {
                    0 => "file".to_string(),
                    rows => format!("after row {rows}"),
                };
                return file_failed(publisher, source, &file_name, &position, report, error).await;
            }
        };
        report.rows_read += 1;
        progress.row();

        match outcome {
            RowOutcome::Title => {
                report.skipped_title += 1;
                report.header_row = reader.layout().map(|layout| layout.header_row);
            }
            RowOutcome::Blank => report.skipped_blank += 1,
            RowOutcome::Totals => report.skipped_totals += 1,
            RowOutcome::Fact { fact, padded } => {
                if padded {
                    report.padded += 1;
                    warn!(
                        row,
                        "ROW_SHORT_PADDED: row has fewer cells than the header."
                    );
                }
                let envelope =
                    Envelope::for_file_row(source.name(), &file_name, row, Operation::Upsert);
                publisher.send(&Event { envelope, fact }).await?;
            }
            RowOutcome::Rejected { rejection, raw } => {
                debug!(row, code = rejection.code(), "Row rejected.");
                let reason = rejection.reason();
                let letter = DeadLetter {
                    dead_letter_id: DeadLetter::stable_id(&[
                        source.name(),
                        &file_name,
                        &row.to_string(),
                        &reason,
                        &raw,
                    ]),
                    source_system: source.name().to_string(),
                    location: file_name.clone(),
                    position: row.to_string(),
                    reason_code: rejection.code().to_string(),
                    reason,
                    raw,
                    observed_at: Utc::now(),
                };
                publisher.dead_letter(&letter).await?;
                report.rejected += 1;
                if report.rejected_sample.len() < REJECTED_SAMPLE {
                    report.rejected_sample.push(RejectedRow {
                        row,
                        reason: letter.reason.clone(),
                    });
                }
                *report
                    .rejected_by_reason
                    .entry(rejection.code().to_string())
                    .or_default() += 1;
            }
        }
    }
    progress.finish();

    publisher.finish().await?;
    report.published = publisher.confirmed() - confirmed_before;
    info!(
        rows_read = report.rows_read,
        published = report.published,
        rejected = report.rejected,
        skipped = report.skipped_title + report.skipped_blank + report.skipped_totals,
        "Export ingested."
    );
    Ok(report)
}

/// Records a file that could not be read to the end: what was published
/// stays published, a dead letter says where and why the file stopped.
async fn file_failed(
    publisher: &mut Publisher,
    source: SourceKind,
    file_name: &str,
    position: &str,
    mut report: FileReport,
    error: ConnectorError,
) -> Result<FileReport, ConnectorError> {
    publisher.finish().await?;
    let reason = error_chain(&error);
    if matches!(error, ConnectorError::NoHeader { .. }) {
        // Rows searched for a header were not titles: nothing was read.
        report.skipped_title = 0;
    }
    warn!(%reason, "Export could not be read.");
    let letter = DeadLetter {
        dead_letter_id: DeadLetter::stable_id(&[source.name(), file_name, position, &reason]),
        source_system: source.name().to_string(),
        location: file_name.to_string(),
        position: position.to_string(),
        reason_code: match error {
            ConnectorError::NoHeader { .. } => "NO_HEADER",
            _ => "FILE_UNREADABLE",
        }
        .to_string(),
        reason: reason.clone(),
        raw: String::new(),
        observed_at: Utc::now(),
    };
    publisher.dead_letter(&letter).await?;
    report.error = Some(reason);
    Ok(report)
}

/// The row as text with the ID column masked whatever its form, and any
/// other ID-like run masked too.
pub fn masked_raw(layout: &Layout, cells: &[Cell]) -> String {
    let id_column = layout.column("citizen_id");
    let unit_column = layout.column("unit_code");
    let parts: Vec<String> = cells
        .iter()
        .enumerate()
        .map(|(index, cell)| {
            let text = cell.display();
            if Some(index) == id_column && !text.is_empty() {
                mask_id_text(&fold_identifier(&text))
            } else if Some(index) == unit_column {
                // Credit codes identify units, not people, and are public.
                text
            } else {
                mask_ids_in_text(&text)
            }
        })
        .collect();
    parts.join(" | ")
}
