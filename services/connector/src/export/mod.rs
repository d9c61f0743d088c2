//! Reading department exports (CSV and Excel) as rows of cells.
//!
//! This layer knows files, not meanings: it yields every row with its row
//! number as a spreadsheet program would show it, leaving header detection
//! to `layout` and field checks to each source's parser.

mod csv_file;
pub mod encoding;
mod xlsx_file;

use std::path::Path;

use blockhub_model::{DateError, ExcelEpoch, from_excel_serial};
use chrono::NaiveDate;

pub use encoding::{DetectedEncoding, UndecodableBytes};

/// One cell as the export holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Nothing, or only white space.
    Empty,
    /// Text.
    Text(String),
    /// A number cell (Excel only; CSV cells are always text).
    Number(f64),
    /// A date cell (Excel only), already converted with the workbook epoch.
    Date(Result<NaiveDate, DateError>),
}

impl Cell {
    /// Whether the cell holds nothing visible.
    pub fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(text) => text.trim().is_empty(),
            _ => false,
        }
    }

    /// The cell as text, the way a person reading the export would see it.
    pub fn display(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(text) => text.clone(),
            Cell::Number(number) if number.fract() == 0.0 && number.abs() < 1e15 => {
                format!("{}", *number as i64)
            }
            Cell::Number(number) => number.to_string(),
            Cell::Date(Ok(date)) => date.to_string(),
            Cell::Date(Err(error)) => error.to_string(),
        }
    }

    /// Builds a cell from an Excel serial stored with a date format.
    pub fn excel_date(serial: f64, epoch: ExcelEpoch) -> Self {
        Cell::Date(from_excel_serial(serial, epoch))
    }
}

/// One row of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    /// 1-based row number (the line in a CSV file, the row in a sheet).
    pub row: u64,
    /// The cells, left to right.
    pub cells: Vec<Cell>,
}

/// Why an export could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file could not be opened or read.
    #[error("{file}: cannot be read")]
    Io {
        /// The file.
        file: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Bytes that decode in no supported encoding.
    #[error("{file}: {source}; save the export as UTF-8 or GB18030")]
    Encoding {
        /// The file.
        file: String,
        /// Where and in which encoding.
        #[source]
        source: UndecodableBytes,
    },
    /// A CSV record could not be parsed.
    #[error("{file}: row {row} is not valid CSV")]
    Csv {
        /// The file.
        file: String,
        /// The row where parsing failed.
        row: u64,
        /// The CSV parser's error.
        #[source]
        source: csv::Error,
    },
    /// The workbook could not be opened.
    #[error("{file}: not a readable Excel workbook (a CSV or other file renamed .xlsx?)")]
    Workbook {
        /// The file.
        file: String,
        /// calamine's error.
        #[source]
        source: calamine::Error,
    },
    /// The path is a directory.
    #[error("{file}: is a directory, not an export file")]
    NotAFile {
        /// The path.
        file: String,
    },
    /// The file has no bytes at all.
    #[error("{file}: the file is empty")]
    Empty {
        /// The file.
        file: String,
    },
    /// The workbook has no sheet.
    #[error("{file}: the workbook has no worksheet")]
    NoSheet {
        /// The file.
        file: String,
    },
    /// The file type is not one the connectors read.
    #[error("{file}: unsupported file type (expected .csv, .txt, .xlsx, .xlsm or .xls)")]
    UnsupportedType {
        /// The file.
        file: String,
    },
}

/// An open export, yielding rows in order.
pub type Rows = Box<dyn Iterator<Item = Result<ExportRow, ExportError>> + Send>;

/// An export opened for reading.
pub struct Export {
    /// The rows.
    pub rows: Rows,
    /// How the file was decoded, for CSV files.
    pub encoding: Option<DetectedEncoding>,
}

/// Opens an export by its extension.
pub fn open_export(path: &Path) -> Result<Export, ExportError> {
    let file = path.display().to_string();
    let metadata = std::fs::metadata(path).map_err(|source| ExportError::Io {
        file: file.clone(),
        source,
    })?;
    if metadata.is_dir() {
        return Err(ExportError::NotAFile { file });
    }
    if metadata.len() == 0 {
        return Err(ExportError::Empty { file });
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "csv" | "txt" => csv_file::open(path, file),
        "xlsx" | "xlsm" | "xls" | "xlsb" | "ods" => xlsx_file::open(path, file),
        _ => Err(ExportError::UnsupportedType { file }),
    }
}
