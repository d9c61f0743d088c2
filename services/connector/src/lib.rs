//! Connectors: department exports in, validated change events out.
//!
//! A connector reads an export as handed over (CSV in UTF-8 or GB18030,
//! Excel with title and totals rows), finds its header, checks and
//! normalises every row and publishes one Avro event per good row to the
//! source's topic. Bad rows go to the dead-letter topic with file, row and
//! reason; they never stop the good ones.

pub mod directory;
pub mod error;
pub mod export;
pub mod export_time;
pub mod ingest;
pub mod layout;
pub mod mapping_file;
pub mod progress;
pub mod publish;
pub mod reader;
pub mod replay;
pub mod snapshot;
pub mod sources;
pub mod table;
#[cfg(test)]
mod test_support;

pub use directory::UnitDirectory;
pub use error::ConnectorError;
pub use export_time::{ExportTime, ExportTimeSource, parse_export_time};
pub use ingest::{FileReport, IngestOptions, IngestReport, ingest};
pub use mapping_file::Mapping;
pub use sources::SourceKind;
