//! CSV exports, decoded as they stream in.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::encoding::{DecodingReader, UndecodableBytes};
use super::{Cell, Export, ExportError, ExportRow};

pub(super) fn open(path: &Path, file: String) -> Result<Export, ExportError> {
    let handle = File::open(path).map_err(|source| ExportError::Io {
        file: file.clone(),
        source,
    })?;
    let decoded =
        DecodingReader::new(BufReader::with_capacity(256 * 1024, handle)).map_err(|source| {
            ExportError::Io {
                file: file.clone(),
                source,
            }
        })?;
    let encoding = decoded.encoding();
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(decoded);
    let mut records = reader.into_records();
    let mut row = 0u64;
    let mut failed = false;
    let rows = std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let record = records.next()?;
        row += 1;
        match record {
            // Rows are numbered by record, as a spreadsheet program shows
            // the file: a quoted cell spanning several lines stays one row.
            Ok(record) => {
                let cells = record
                    .iter()
                    .map(|text| {
                        if text.trim().is_empty() {
                            Cell::Empty
                        } else {
                            Cell::Text(text.to_string())
                        }
                    })
                    .collect();
                Some(Ok(ExportRow { row, cells }))
            }
            Err(source) => {
                failed = true;
                Some(Err(csv_error(&file, row, source)))
            }
        }
    });
    Ok(Export {
        rows: Box::new(rows),
        encoding: Some(encoding),
    })
}

fn csv_error(file: &str, row: u64, source: csv::Error) -> ExportError {
    if let csv::ErrorKind::Io(io) = source.kind()
        && let Some(bytes) = io
            .get_ref()
            .and_then(|e| e.downcast_ref::<UndecodableBytes>())
    {
        let source = UndecodableBytes {
            offset: bytes.offset,
            encoding: bytes.encoding,
        };
        return ExportError::Encoding {
            file: file.to_string(),
            source,
        };
    }
    ExportError::Csv {
        file: file.to_string(),
        row,
        source,
    }
}
