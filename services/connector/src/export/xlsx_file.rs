//! Excel workbooks: the first worksheet, with date cells converted using
//! the workbook's own epoch (1900 or 1904).

use std::path::Path;

use blockhub_model::DateError;
use calamine::{Data, Reader, open_workbook_auto};
use chrono::NaiveDate;

use super::{Cell, Export, ExportError, ExportRow};

// TODO(memory: calamine's Range holds the whole sheet): stream cells with
// calamine's worksheet_cells_reader so workbooks beyond Excel's own row
// limit never sit in memory; until then a sheet costs about its unzipped size.
pub(super) fn open(path: &Path, file: String) -> Result<Export, ExportError> {
    let mut workbook = open_workbook_auto(path).map_err(|source| ExportError::Workbook {
        file: file.clone(),
        source,
    })?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or_else(|| ExportError::NoSheet { file: file.clone() })?
        .map_err(|source| ExportError::Workbook {
            file: file.clone(),
            source,
        })?;
    let (first_row, first_column) = range.start().unwrap_or((0, 0));
    let rows: Vec<ExportRow> = range
        .rows()
        .enumerate()
        .map(|(index, cells)| {
            // The range starts at the first used cell; pad so that column
            // positions and row numbers match what a spreadsheet shows.
            let mut row_cells = vec![Cell::Empty; first_column as usize];
            row_cells.extend(cells.iter().map(convert));
            ExportRow {
                row: u64::from(first_row) + index as u64 + 1,
                cells: row_cells,
            }
        })
        .collect();
    Ok(Export {
        rows: Box::new(rows.into_iter().map(Ok)),
        encoding: None,
    })
}

fn convert(data: &Data) -> Cell {
    match data {
        Data::Empty => Cell::Empty,
        Data::String(text) if text.trim().is_empty() => Cell::Empty,
        Data::String(text) => Cell::Text(text.clone()),
        Data::Int(number) => Cell::Number(*number as f64),
        Data::Float(number) => Cell::Number(*number),
        Data::Bool(flag) => Cell::Text(flag.to_string()),
        Data::DateTime(value) => {
            // calamine knows the workbook's epoch; its conversion yields
            // 1900-02-29 for the fictitious serial 60, which chrono refuses.
            let (year, month, day, ..) = value.to_ymd_hms_milli();
            match NaiveDate::from_ymd_opt(i32::from(year), u32::from(month), u32::from(day)) {
                Some(date) if value.as_f64() >= 1.0 => Cell::Date(Ok(date)),
                _ => Cell::Date(Err(DateError::ExcelSerial {
                    serial: value.as_f64().to_string(),
                })),
            }
        }
        Data::DateTimeIso(text) => Cell::Text(text.clone()),
        Data::DurationIso(text) => Cell::Text(text.clone()),
        Data::Error(error) => Cell::Text(format!("#{error:?}")),
    }
}
