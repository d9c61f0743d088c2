//! A source's view of an export: every row, classified and parsed.
//!
//! This is the whole of a connector's judgement about a file, kept apart
//! from publishing so it can be tested on plain files with no broker.

use std::path::Path;
use std::sync::Arc;

use blockhub_model::Fact;

use crate::directory::UnitDirectory;
use crate::error::ConnectorError;
use crate::mapping_file::Mapping;

use crate::export::{DetectedEncoding, ExportRow, Rows, open_export};
use crate::layout::{
    FieldSpec, Layout, MAX_HEADER_SEARCH_ROWS, RowKind, classify, is_sub_header, join_sub_header,
    try_header,
};
use crate::sources::{Rejection, RowView, SourceKind};

/// What one row of an export turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// A title row above the header, or a header row.
    Title,
    /// A blank or formatted-only row.
    Blank,
    /// A totals row.
    Totals,
    /// A good row.
    Fact {
        /// The fact it states.
        fact: Fact,
        /// Whether it was shorter than the header and padded.
        padded: bool,
        /// What was accepted with a caveat, such as an unknown label.
        warnings: Vec<String>,
    },
    /// A row that failed its checks.
    Rejected {
        /// Every reason.
        rejection: Rejection,
        /// The row as text with ID numbers masked, for the dead letter.
        raw: String,
    },
}

/// Reads one export as one source.
pub struct SourceReader {
    source: SourceKind,
    directory: Arc<UnitDirectory>,
    mapping: Arc<Mapping>,
    file: String,
    fields: Vec<FieldSpec>,
    rows: Rows,
    layout: Option<Layout>,
    header_may_continue: bool,
    rows_seen: usize,
    encoding: Option<DetectedEncoding>,
    done: bool,
}

impl SourceReader {
    /// Opens `path` as an export of `source`, resolving unit names
    /// through `directory`.
    pub fn open(
        source: SourceKind,
        path: &Path,
        directory: Arc<UnitDirectory>,
    ) -> Result<Self, ConnectorError> {
        let export = open_export(path)?;
        Ok(Self {
            source,
            directory,
            mapping: Arc::default(),
            file: path.display().to_string(),
            fields: source.fields(),
            rows: export.rows,
            layout: None,
            header_may_continue: false,
            rows_seen: 0,
            encoding: export.encoding,
            done: false,
        })
    }

    /// Reads the export through a department's mapping: its header texts
    /// and value maps.
    pub fn with_mapping(mut self, mapping: Arc<Mapping>) -> Self {
        self.fields = mapping.apply(std::mem::take(&mut self.fields));
        self.mapping = mapping;
        self
    }

    /// How a CSV file was decoded.
    pub fn encoding(&self) -> Option<DetectedEncoding> {
        self.encoding
    }

    /// The layout, once the header has been read.
    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_ref()
    }

    fn no_header(&self) -> ConnectorError {
        let required: Vec<String> = self
            .fields
            .iter()
            .filter(|spec| spec.required)
            .map(|spec| {
                spec.aliases
                    .first()
                    .cloned()
                    .unwrap_or_else(|| spec.field.to_string())
            })
            .collect();
        ConnectorError::NoHeader {
            file: self.file.clone(),
            required: required.join(" and "),
            searched: MAX_HEADER_SEARCH_ROWS,
        }
    }

    fn outcome(&mut self, row: &ExportRow) -> Result<RowOutcome, ConnectorError> {
        let Some(layout) = &self.layout else {
            if let Some(found) = try_header(row, &self.fields) {
                self.layout = Some(found);
                self.header_may_continue = true;
            } else if self.rows_seen >= MAX_HEADER_SEARCH_ROWS {
                return Err(self.no_header());
            }
            return Ok(RowOutcome::Title);
        };
        if std::mem::take(&mut self.header_may_continue) && is_sub_header(layout, row, &self.fields)
        {
            self.layout = Some(join_sub_header(layout, row, &self.fields));
            return Ok(RowOutcome::Title);
        }

        Ok(match classify(layout, row) {
            RowKind::Blank => RowOutcome::Blank,
            RowKind::Totals => RowOutcome::Totals,
            RowKind::Data { padded } => {
                let mut view =
                    RowView::new(layout, &row.cells, &self.directory).with_mapping(&self.mapping);
                match self.source.parse(&mut view) {
                    Ok(fact) => RowOutcome::Fact {
                        fact,
                        padded,
                        warnings: view.take_warnings(),
                    },
                    Err(rejection) => {
                        let raw = crate::ingest::masked_raw(layout, &row.cells);
                        RowOutcome::Rejected { rejection, raw }
                    }
                }
            }
        })
    }
}

impl Iterator for SourceReader {
    type Item = Result<(u64, RowOutcome), ConnectorError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let row = match self.rows.next() {
            Some(Ok(row)) => row,
            Some(Err(error)) => {
                self.done = true;
                return Some(Err(error.into()));
            }
            None => {
                self.done = true;
                return self.layout.is_none().then(|| Err(self.no_header()));
            }
        };
        self.rows_seen += 1;
        let outcome = self.outcome(&row);
        if outcome.is_err() {
            self.done = true;
        }
        Some(outcome.map(|outcome| (row.row, outcome)))
    }
}
