//! The table connector: polls a department's PostgreSQL table and
//! publishes the rows that changed.
//!
//! Rows are read in watermark order (a column the department's system
//! raises on every change: an update time or a version number). Each poll
//! reads the rows at or above the highest watermark seen so far, so rows
//! that share a watermark value, even ones committed after the last poll,
//! are never skipped; rows read again are told apart from changed ones by
//! the snapshot diff against what the source already published (read back
//! from its topic), so they are not sent again. The first poll after a
//! start reads the whole table once for the same reason, which makes a
//! restart at any moment safe without a cursor of its own.
//!
//! A row deleted from the table cannot be seen this way; a department
//! marks departures with a status column instead, as the roster does.

use std::sync::Arc;
use std::time::Duration;

use blockhub_model::{KafkaSettings, PersonKeyer, SourceRef, SourceRefKind};
use futures_util::StreamExt;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Row, postgres::PgRow};
use tracing::{debug, info, warn};

use crate::directory::UnitDirectory;
use crate::error::ConnectorError;
use crate::export::{Cell, ExportRow};
use crate::ingest::{FileReport, IngestOptions, RowSink, masked_raw};
use crate::layout::{Layout, try_header};
use crate::publish::Publisher;
use crate::snapshot::Snapshot;
use crate::sources::{RowView, SourceKind};

/// Which table to poll and how.
#[derive(Debug, Clone)]
pub struct TableOptions {
    /// postgres://user@host/database; never logged (it may hold a password).
    pub url: String,
    /// The table, optionally schema-qualified (schema.table).
    pub table: String,
    /// The column raised on every change.
    pub watermark: String,
    /// A column naming each row, for dead letters; the watermark if none.
    pub key: Option<String>,
}

/// Why a table could not be polled.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The database refused the connection or a query.
    #[error("table {table}: {action} failed")]
    Database {
        /// The table.
        table: String,
        /// What was being done.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The table or a named column does not exist, or a name is unsafe.
    #[error("table {table}: {reason}")]
    Shape {
        /// The table.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// Publishing failed.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
}

/// A connected table: its columns, layout and the SQL of one poll.
pub struct Table {
    options: TableOptions,
    pool: PgPool,
    columns: Vec<String>,
    layout: Layout,
    watermark_type: String,
    key_index: Option<usize>,
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

impl Table {
    /// Connects and reads the table's columns; fails when the table, the
    /// watermark or the key column is missing, or no header matches.
    pub async fn open(
        options: TableOptions,
        source: SourceKind,
        fields: &[crate::layout::FieldSpec],
    ) -> Result<Self, TableError> {
        let table = options.table.clone();
        let database = |action| {
            let table = table.clone();
            move |source| TableError::Database {
                table,
                action,
                source,
            }
        };
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&options.url)
            .await
            .map_err(database("connecting"))?;
        let (schema, name) = match options.table.split_once('.') {
            Some((schema, name)) => (schema.to_string(), name.to_string()),
            None => ("public".to_string(), options.table.clone()),
        };
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        )
        .bind(&schema)
        .bind(&name)
        .fetch_all(&pool)
        .await
        .map_err(database("reading its columns"))?;
        let shape = |reason: String| TableError::Shape {
            table: table.clone(),
            reason,
        };
        if rows.is_empty() {
            return Err(shape(format!("no such table in schema {schema}")));
        }
        let columns: Vec<String> = rows.iter().map(|(c, _)| c.clone()).collect();
        let type_of = |column: &str| rows.iter().find(|(c, _)| c == column).map(|(_, t)| t);
        let watermark_type = type_of(&options.watermark)
            .ok_or_else(|| {
                shape(format!(
                    "no watermark column {}; its columns are {}",
                    options.watermark,
                    columns.join(", ")
                ))
            })?
            .clone();
        let key_index = match &options.key {
            Some(key) => Some(columns.iter().position(|c| c == key).ok_or_else(|| {
                shape(format!(
                    "no key column {key}; its columns are {}",
                    columns.join(", ")
                ))
            })?),
            None => None,
        };
        let header = ExportRow {
            row: 0,
            cells: columns.iter().map(|c| Cell::Text(c.clone())).collect(),
        };
        let layout = try_header(&header, fields).ok_or_else(|| {
            let required: Vec<&str> = fields
                .iter()
                .filter(|f| f.required)
                .map(|f| f.field)
                .collect();
            shape(format!(
                "its columns ({}) do not name every field {} needs ({}); name them in a \
                 mapping file's [columns]",
                columns.join(", "),
                source.name(),
                required.join(", ")
            ))
        })?;
        Ok(Self {
            options,
            pool,
            columns,
            layout,
            watermark_type,
            key_index,
        })
    }

    /// The SQL of one poll: every column as text, the watermark last, in
    /// watermark order, from `$1` (as text, cast to the column's type) on.
    fn poll_sql(&self, from_cursor: bool) -> String {
        let texts: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("CAST({} AS TEXT)", quote(c)))
            .collect();
        let watermark = quote(&self.options.watermark);
        let table = match self.options.table.split_once('.') {
            Some((schema, name)) => format!("{}.{}", quote(schema), quote(name)),
            None => quote(&self.options.table),
        };
        let filter = if from_cursor {
            format!("WHERE {watermark} >= CAST($1 AS {})", self.watermark_type)
        } else {
            format!("WHERE {watermark} IS NOT NULL")
        };
        format!(
            "SELECT {}, CAST({watermark} AS TEXT) FROM {table} {filter} ORDER BY {watermark}",
            texts.join(", ")
        )
    }
}

/// Polls a table until `stop` resolves (or once), publishing changed rows.
pub struct TablePoller {
    source: SourceKind,
    table: Table,
    directory: Arc<UnitDirectory>,
    mapping: Arc<crate::Mapping>,
    publisher: Publisher,
    snapshot: Snapshot,
    cursor: Option<String>,
    clock: blockhub_model::Clock,
}

impl TablePoller {
    /// Connects to the table and the broker and reads what the source
    /// published before.
    pub async fn connect(
        source: SourceKind,
        table: TableOptions,
        settings: &KafkaSettings,
        keyer: PersonKeyer,
        options: &IngestOptions,
    ) -> Result<Self, TableError> {
        let fields = options.mapping.apply(source.fields());
        let table = Table::open(table, source, &fields).await?;
        let publisher = Publisher::connect(settings, keyer).await?;
        let mut directory = if source.needs_unit_directory() {
            UnitDirectory::from_topic(settings)
                .await
                .map_err(ConnectorError::from)?
        } else {
            UnitDirectory::default()
        };
        directory.extend(&options.aliases);
        let snapshot = Snapshot::load(settings, source)
            .await
            .map_err(ConnectorError::from)?;
        info!(
            table = %table.options.table,
            published_before = snapshot.live(),
            "Table connector ready."
        );
        Ok(Self {
            source,
            table,
            directory: Arc::new(directory),
            mapping: Arc::new(options.mapping.clone()),
            publisher,
            snapshot,
            cursor: None,
            clock: options.clock.clone(),
        })
    }

    /// The highest watermark read so far, as text.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// One poll: reads the rows at or above the cursor and publishes those
    /// that changed. The report counts rows read, new, changed, unchanged
    /// and rejected.
    pub async fn poll(&mut self) -> Result<FileReport, TableError> {
        let started_at = self.clock.now();
        self.snapshot.start_run();
        let sql = self.table.poll_sql(self.cursor.is_some());

        let mut query = sqlx::query(&sql);
        if let Some(cursor) = &self.cursor {
            query = query.bind(cursor.clone());
        }
        let table_name = self.table.options.table.clone();
        let mut report = FileReport {
            file: table_name.clone(),
            ..FileReport::default()
        };
        let confirmed_before = self.publisher.confirmed();
        let mut rows = query.fetch(&self.table.pool);
        let width = self.table.columns.len();
        while let Some(row) = rows.next().await {
            let row: PgRow = row.map_err(|source| TableError::Database {
                table: table_name.clone(),
                action: "reading rows",
                source,
            })?;
            let mut cells = Vec::with_capacity(width);
            for index in 0..width {
                let text: Option<String> = row.try_get(index).unwrap_or(None);
                cells.push(text.map_or(Cell::Empty, Cell::Text));
            }
            let watermark: String = row.try_get(width).unwrap_or_default();
            report.rows_read += 1;
            let position = match self.table.key_index {
                Some(key) => format!("key {}", cells[key].display()),
                None => format!("watermark {watermark}"),
            };
            let mut view = RowView::new(&self.table.layout, &cells, &self.directory)
                .with_mapping(&self.mapping);
            let parsed = self.source.parse(&mut view);
            let warnings = view.take_warnings();
            let mut sink = RowSink {
                source: self.source,
                publisher: &mut self.publisher,
                snapshot: &mut self.snapshot,
                // A table read live is as of now: ordered by the read time.
                exported_at: None,
            };
            match parsed {
                Ok(fact) => {
                    let source_ref = SourceRef {
                        kind: SourceRefKind::TableKey,
                        location: table_name.clone(),
                        position,
                    };
                    sink.fact(source_ref, fact, warnings, &mut report).await?;
                }
                Err(rejection) => {
                    let raw = masked_raw(&self.table.layout, &cells);
                    sink.rejected(&table_name, &position, &rejection, raw, &mut report)
                        .await?;
                }
            }
            self.cursor = Some(watermark);
        }
        drop(rows);
        self.publisher.finish().await?;
        report.published = self.publisher.confirmed() - confirmed_before;
        // A poll that found rows is a delivery; an empty one is not, since
        // nothing in the department's table moved.
        if report.rows_read > 0 {
            self.publish_run(started_at, &report, None).await?;
        }
        if report.published > 0 || report.rejected > 0 {
            info!(
                table = %table_name,
                rows_read = report.rows_read,
                published = report.published,
                rejected = report.rejected,
                "Table polled."
            );
        }
        Ok(report)
    }

    /// Publishes the record of one poll for sync health.
    async fn publish_run(
        &self,
        started_at: chrono::DateTime<chrono::Utc>,
        report: &FileReport,
        error: Option<String>,
    ) -> Result<(), ConnectorError> {
        let run = blockhub_model::SyncRun {
            run_id: uuid::Uuid::new_v4().to_string(),
            source_system: self.source.name().to_string(),
            location: self.table.options.table.clone(),
            started_at,
            finished_at: self.clock.now(),
            rows_read: report.rows_read,
            published: report.published,
            unchanged: report.unchanged,
            rejected: report.rejected,
            error: error.map(|e| blockhub_model::mask_ids_in_text(&e)),
            worst_file: None,
            exports: Vec::new(),
        };
        self.publisher.sync_run(&run).await
    }

    /// Polls every `interval` until `stop` resolves; a failed poll is
    /// logged once and retried at the next interval.
    pub async fn run(
        &mut self,
        interval: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), TableError> {
        tokio::pin!(stop);
        let mut failing = false;
        loop {
            match self.poll().await {
                Ok(_) if failing => {
                    info!("Table polling recovered.");
                    failing = false;
                }
                Ok(_) => {}
                Err(error) if !failing => {
                    let error = blockhub_model::error_chain(&error);
                    warn!(%error, "Table poll failed; retrying.");
                    failing = true;
                    // Once per failure, so sync health shows the feed as
                    // failing with this reason; the broker may be the cause.
                    let report = FileReport {
                        file: self.table.options.table.clone(),
                        ..FileReport::default()
                    };
                    let at = self.clock.now();
                    if let Err(publish) = self.publish_run(at, &report, Some(error)).await {
                        debug!(error = %publish, "Failed poll not recorded.");
                    }
                }
                Err(_) => {}
            }
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}
