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
    Clock, DeadLetter, Envelope, Event, Fact, KafkaSettings, Operation, PersonKeyer, SourceRef,
    SourceRefKind, SyncRun, error_chain, mask_id_text, mask_ids_in_text,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::directory::UnitDirectory;
use crate::error::ConnectorError;
use crate::export::Cell;
use crate::export_time::{ExportTime, export_time};
use crate::layout::Layout;
use crate::mapping_file::Mapping;
use crate::progress::Progress;
use crate::publish::Publisher;
use crate::reader::{RowOutcome, SourceReader};
use crate::snapshot::{Change, Snapshot};
use crate::sources::{FieldProblem, Rejection, SourceKind};

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
    /// Facts not published before (or deleted since).
    pub inserted: u64,
    /// Facts published before with other content.
    pub updated: u64,
    /// Rows older than what a newer export of the source stated: published
    /// as history (the merger keeps them as superseded), not applied.
    pub stale: u64,
    /// Rows of an export older than the newest one of their unit or list,
    /// which may have stated them unchanged: not published at all.
    pub outdated: u64,
    /// Facts published before exactly so: nothing sent.
    pub unchanged: u64,
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
    /// Rows accepted with a caveat, by caveat (an unknown label, say).
    pub warnings: std::collections::BTreeMap<String, u64>,
    /// Why the file stopped early, if it did.
    pub error: Option<String>,
    /// When the export was made, which orders its facts against other
    /// exports', and where that time was read.
    pub exported: Option<ExportTime>,
}

/// A rejected row, as shown to the person running the ingest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RejectedRow {
    /// The row number in a file; the row's key or watermark in a table.
    pub position: String,
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
    /// Facts published before that these exports no longer have, published
    /// as deletes (departures, for a roster).
    pub deleted: u64,
    /// Deletes not published because rows were rejected or a file failed:
    /// a rejected row may be one of the facts that looked missing.
    pub deletes_withheld: u64,
    /// Facts missing from these exports that a newer export stated: not
    /// deleted (an old export cannot undo a newer one).
    pub deletes_kept_newer: u64,
}

impl FileReport {
    /// The file's name, without its folders.
    pub fn name(&self) -> &str {
        self.file.rsplit('/').next().unwrap_or(&self.file)
    }

    /// Rows that held data: every row read but titles, headers, blanks and
    /// totals.
    pub fn data_rows(&self) -> u64 {
        self.rows_read
            .saturating_sub(self.skipped_title + self.skipped_blank + self.skipped_totals)
    }
}

impl IngestReport {
    /// The files' names, comma separated.
    pub fn file_names(&self) -> String {
        let names: Vec<&str> = self.files.iter().map(FileReport::name).collect();
        names.join(", ")
    }

    /// Totals over all files.
    pub fn total(&self) -> FileReport {
        let mut total = FileReport {
            file: "total".into(),
            ..FileReport::default()
        };
        for file in &self.files {
            total.rows_read += file.rows_read;
            total.published += file.published;
            total.inserted += file.inserted;
            total.updated += file.updated;
            total.stale += file.stale;
            total.outdated += file.outdated;
            total.unchanged += file.unchanged;
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

/// How a department's exports differ from the defaults.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Unit names and the codes they stand for, beside the quota list;
    /// may also name the unit the whole export belongs to.
    pub aliases: UnitDirectory,
    /// Header texts and value maps (`--mapping`).
    pub mapping: Mapping,
    /// The time the run's record carries; a test moves it.
    pub clock: Clock,
    /// When the exports were made (`--exported-at`), for files whose own
    /// time is wrong or missing; else each file's own time is used.
    pub exported_at: Option<DateTime<Utc>>,
}

impl From<UnitDirectory> for IngestOptions {
    fn from(aliases: UnitDirectory) -> Self {
        Self {
            aliases,
            ..Self::default()
        }
    }
}

/// Reads each file of one source and publishes only what changed since
/// the source last published (see `snapshot`).
pub async fn ingest(
    source: SourceKind,
    files: &[PathBuf],
    settings: &KafkaSettings,
    keyer: PersonKeyer,
    options: &IngestOptions,
) -> Result<IngestReport, ConnectorError> {
    let started_at = options.clock.now();
    let mut publisher = Publisher::connect(settings, keyer).await?;
    let mut directory = if source.needs_unit_directory() {
        UnitDirectory::from_topic(settings).await?
    } else {
        UnitDirectory::default()
    };
    directory.extend(&options.aliases);
    let mapping = Arc::new(options.mapping.clone());
    let mut snapshot = Snapshot::load(settings, source).await?;
    if let Some(unit) = directory.export_unit() {
        snapshot.cover_unit(unit.clone());
    }
    let directory = Arc::new(directory);
    let mut report = IngestReport {
        source: source.name().to_string(),
        ..IngestReport::default()
    };
    for path in files {
        let topic = settings.topic(source.event_kind());
        let span = info_span!("ingest", source = source.name(), file = %path.display(), %topic);
        let run = FileRun {
            source,
            publisher: &mut publisher,
            snapshot: &mut snapshot,
            directory: directory.clone(),
            mapping: mapping.clone(),
            exported: export_time(path, options.exported_at),
        };
        let file_report = ingest_file(run, path).instrument(span).await?;
        report.files.push(file_report);
    }
    publish_deletes(source, &mut publisher, &mut snapshot, &mut report).await?;
    // What the run stated in full, so that a later, older export is known
    // to be older even where this one changed nothing.
    let exports = snapshot.export_scopes(run_exported(&report));
    let run = run_record(&report, exports, started_at, options.clock.now());
    publisher.sync_run(&run).await?;
    Ok(report)
}

/// The run's record for sync health: what was read and what became of it;
/// and, for the connector's next runs, what it stated in full (`exports`).
fn run_record(
    report: &IngestReport,
    exports: Vec<blockhub_model::ExportScope>,
    started_at: chrono::DateTime<Utc>,
    finished_at: chrono::DateTime<Utc>,
) -> SyncRun {
    let total = report.total();
    let error = report.files.iter().find_map(|f| {
        let name = f.name();
        // Names only: the hub's folders are nobody else's business.
        f.error.as_ref().map(|error| match error.contains(name) {
            true => error.replace(&f.file, name),
            false => format!("{name}: {error}"),
        })
    });
    // One bad file among good ones must still show: the file with the
    // largest share of rejected rows is named in the record.
    let worst = report
        .files
        .iter()
        .filter(|f| f.rejected > 0)
        .max_by(|a, b| {
            let share = |f: &FileReport| f.rejected as f64 / f.data_rows().max(1) as f64;
            share(a).total_cmp(&share(b))
        });
    SyncRun {
        run_id: uuid::Uuid::new_v4().to_string(),
        source_system: report.source.clone(),
        location: report.file_names(),
        started_at,
        finished_at,
        rows_read: total.data_rows(),
        published: total.published + report.deleted,
        unchanged: total.unchanged,
        rejected: total.rejected,
        error: error.map(|e| mask_ids_in_text(&e)),
        worst_file: worst.map(|f| blockhub_model::FileRejections {
            location: f.name().to_string(),
            rows_read: f.data_rows(),
            rejected: f.rejected,
        }),
        exports,
    }
}

/// The newest export time among the run's files.
fn run_exported(report: &IngestReport) -> Option<DateTime<Utc>> {
    report
        .files
        .iter()
        .filter_map(|f| f.exported.map(|e| e.at))
        .max()
}

/// Publishes the facts the exports no longer have, unless a rejected row
/// or a failed file leaves it unclear whether they are really gone.
async fn publish_deletes(
    source: SourceKind,
    publisher: &mut Publisher,
    snapshot: &mut Snapshot,
    report: &mut IngestReport,
) -> Result<(), ConnectorError> {
    // Whole lists and units named with --unit are as of the newest file
    // of the run; a unit with rows, as of the newest file that had them.
    let (deletions, kept_newer) = snapshot.deletions(run_exported(report));
    report.deletes_kept_newer = kept_newer;
    if deletions.is_empty() {
        return Ok(());
    }
    if report.has_failures() || report.total().rejected > 0 {
        report.deletes_withheld = deletions.len() as u64;
        warn!(
            withheld = report.deletes_withheld,
            "Facts missing from the export were not deleted, because rows were rejected or a \
             file failed; fix those and ingest again."
        );
        return Ok(());
    }
    let location = report.file_names();
    let before = publisher.confirmed();
    for deletion in deletions {
        let envelope = Envelope::for_file_row(source.name(), &location, 0, Operation::Delete);
        let mut envelope = envelope.exported(deletion.exported_at);
        envelope.source_ref.position = "absent".into();
        let fact = deletion.fact;
        publisher.send(&Event { envelope, fact }).await?;
    }
    publisher.finish().await?;
    report.deleted = publisher.confirmed() - before;
    info!(
        deleted = report.deleted,
        "Facts missing from the export deleted."
    );
    Ok(())
}

/// Where a data row's fact or rejection goes; shared by files and tables.
pub(crate) struct RowSink<'a> {
    pub(crate) source: SourceKind,
    pub(crate) publisher: &'a mut Publisher,
    pub(crate) snapshot: &'a mut Snapshot,
    /// When the export was made; none for a table read live.
    pub(crate) exported_at: Option<DateTime<Utc>>,
}

impl RowSink<'_> {
    /// Publishes a good row's fact if it changed since the source last
    /// published it, and counts its caveats.
    pub(crate) async fn fact(
        &mut self,
        source_ref: SourceRef,
        fact: Fact,
        warnings: Vec<String>,
        report: &mut FileReport,
    ) -> Result<(), ConnectorError> {
        for warning in warnings {
            let count = report.warnings.entry(warning.clone()).or_default();
            if *count == 0 {
                // Once per distinct caveat and file: the count says the rest.
                warn!(position = %source_ref.position, "{warning}");
            }
            *count += 1;
        }
        // The envelope's times order this row against what the source
        // stated before (see `snapshot`), so it is made first.
        let mut envelope = Envelope::new(self.source.name(), source_ref, Operation::Upsert)
            .exported(self.exported_at);
        // Where the row is, as a conflict with a later row names it: the
        // file too, as a run may read several.
        let place = match envelope.source_ref.kind {
            SourceRefKind::FileRow => format!(
                "{} row {}",
                envelope.source_ref.location, envelope.source_ref.position
            ),
            _ => format!(
                "{} key {}",
                envelope.source_ref.location, envelope.source_ref.position
            ),
        };
        let exported = envelope.exported_at.is_some();
        let change = self
            .snapshot
            .observe_at(&fact, &place, envelope.order(), exported);
        match &change {
            Change::Unchanged => report.unchanged += 1,
            Change::Insert => report.inserted += 1,
            Change::Update => report.updated += 1,
            Change::Stale => report.stale += 1,
            Change::Outdated => report.outdated += 1,
            Change::Repeated => {
                let warning = "DUPLICATE_ROW: repeats an earlier row exactly; counted once";
                *report.warnings.entry(warning.to_string()).or_default() += 1;
            }
            Change::Conflict { earlier } => {
                // Taking either row would be a guess: the later one goes to
                // the dead letters, the earlier stands until the export is
                // fixed, and a re-ingest of the same file stays quiet.
                let rejection = Rejection {
                    problems: vec![FieldProblem {
                        column: "row".into(),
                        code: "DUPLICATE_FACT".into(),
                        message: format!(
                            "states the same fact as {earlier} (for a roster: the same \
                             person at the same unit; for payroll: the same person, unit and \
                             month) with other values; {earlier} was kept, correct the \
                             export"
                        ),
                    }],
                };
                // The fact as read, in the words of its fields, ID masked.
                let raw = mask_ids_in_text(&serde_json::to_string(&fact).unwrap_or_default());
                let source_ref = envelope.source_ref;
                return self
                    .rejected(
                        &source_ref.location,
                        &source_ref.position,
                        &rejection,
                        raw,
                        report,
                    )
                    .await;
            }
        }
        if let Some(operation) = change.operation() {
            envelope.operation = operation;
            self.publisher.send(&Event { envelope, fact }).await?;
        }
        Ok(())
    }

    /// Sends a rejected row to the dead-letter topic with where and why.
    pub(crate) async fn rejected(
        &mut self,
        location: &str,
        position: &str,
        rejection: &Rejection,
        raw: String,
        report: &mut FileReport,
    ) -> Result<(), ConnectorError> {
        debug!(position, code = rejection.code(), "Row rejected.");
        let source = self.source.name();
        // A reason may quote the cell it rejects, and an ID number can sit
        // in the wrong column: reasons are masked like the raw row.
        let reason = mask_ids_in_text(&rejection.reason());
        let letter = DeadLetter {
            dead_letter_id: DeadLetter::stable_id(&[source, location, position, &reason, &raw]),
            source_system: source.to_string(),
            location: location.to_string(),
            position: position.to_string(),
            reason_code: rejection.code(),
            reason,
            raw,
            observed_at: Utc::now(),
        };
        self.publisher.dead_letter(&letter).await?;
        report.rejected += 1;
        if report.rejected_sample.len() < REJECTED_SAMPLE {
            report.rejected_sample.push(RejectedRow {
                position: position.to_string(),
                reason: letter.reason.clone(),
            });
        }
        *report
            .rejected_by_reason
            .entry(rejection.code())
            .or_default() += 1;
        Ok(())
    }
}

/// What one file's ingest works with.
struct FileRun<'a> {
    source: SourceKind,
    publisher: &'a mut Publisher,
    snapshot: &'a mut Snapshot,
    directory: Arc<UnitDirectory>,
    mapping: Arc<Mapping>,
    exported: Option<ExportTime>,
}

async fn ingest_file(run: FileRun<'_>, path: &Path) -> Result<FileReport, ConnectorError> {
    let FileRun {
        source,
        publisher,
        snapshot,
        directory,
        mapping,
        exported,
    } = run;
    let file = path.display().to_string();
    let file_name = path
        .file_name()
        .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
    let mut report = FileReport {
        file: file.clone(),
        exported,
        ..FileReport::default()
    };
    let exported_at = exported.map(|e| e.at);
    let confirmed_before = publisher.confirmed();

    let reader = match SourceReader::open(source, path, directory) {
        Ok(reader) => reader.with_mapping(mapping),
        Err(error) => {
            return file_failed(publisher, source, &file_name, "file", report, error).await;
        }
    };
    report.encoding = reader.encoding().map(|e| e.name().to_string());
    info!(
        encoding = report.encoding.as_deref().unwrap_or("workbook"),
        exported_at = ?exported_at,
        exported_from = exported.map_or("unknown", |e| e.from.label()),
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
            RowOutcome::Fact {
                fact,
                padded,
                warnings,
            } => {
                if padded {
                    report.padded += 1;
                    warn!(
                        row,
                        "ROW_SHORT_PADDED: row has fewer cells than the header."
                    );
                }
                let source_ref = SourceRef {
                    kind: SourceRefKind::FileRow,
                    location: file_name.clone(),
                    position: row.to_string(),
                };
                let mut sink = RowSink {
                    source,
                    publisher: &mut *publisher,
                    snapshot: &mut *snapshot,
                    exported_at,
                };
                sink.fact(source_ref, fact, warnings, &mut report).await?;
            }
            RowOutcome::Rejected { rejection, raw } => {
                let mut sink = RowSink {
                    source,
                    publisher: &mut *publisher,
                    snapshot: &mut *snapshot,
                    exported_at,
                };
                let position = row.to_string();

                sink.rejected(&file_name, &position, &rejection, raw, &mut report)
                    .await?;
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
