//! Finding the header of an export and classifying the rows around it.
//!
//! Exports put a title above the header (often merged across the sheet),
//! sometimes split the header over two rows (合同期限 over 起始 and 终止),
//! and end with totals (合计) and blank or formatted-only rows. The header
//! is the first row, among the first few, that names every required field
//! of the source; rows above it are titles, rows below it are data, totals
//! or blanks. Nothing here rejects data: it only says what each row is.

use blockhub_model::fold::fold_text;

use crate::export::{Cell, ExportRow};

/// How many rows from the top may precede the header.
pub const MAX_HEADER_SEARCH_ROWS: usize = 30;

/// One field a source reads, with the header texts that name it.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    /// The field's name in the model, such as `citizen_id`.
    pub field: &'static str,
    /// Header texts that name this column, compared after normalisation.
    pub aliases: Vec<String>,
    /// Whether the header row must name this field.
    pub required: bool,
}

impl FieldSpec {
    /// A field with its aliases.
    pub fn new(field: &'static str, required: bool, aliases: &[&str]) -> Self {
        let aliases = aliases
            .iter()
            .map(|alias| normalise_header(alias))
            .collect();
        Self {
            field,
            aliases,
            required,
        }
    }
}

/// Where each field is in an export, once the header is found.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The row number of the (last) header row.
    pub header_row: u64,
    /// The header text of each column, sub-headers joined with a dot.
    pub headers: Vec<String>,
    /// Field name and column index, for the fields found.
    pub columns: Vec<(&'static str, usize)>,
    /// Field name and its usual header text, for messages about fields the
    /// export lacks.
    pub labels: Vec<(&'static str, String)>,
}

impl Layout {
    /// The column of a field, if the export has it.
    pub fn column(&self, field: &str) -> Option<usize> {
        self.columns
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, column)| *column)
    }

    /// The header text of a field's column, for messages.
    pub fn header_of<'s>(&'s self, field: &'s str) -> &'s str {
        let label = || {
            let found = self.labels.iter().find(|(name, _)| *name == field);
            found.map_or(field, |(_, label)| label.as_str())
        };
        self.column(field)
            .and_then(|c| self.headers.get(c))
            .map_or_else(label, String::as_str)
    }
}

/// What a row after the header is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKind {
    /// A row to parse.
    Data {
        /// Whether the row had fewer cells than the header and was padded.
        padded: bool,
    },
    /// Nothing visible in it.
    Blank,
    /// A totals or subtotals row (合计, 总计, 小计).
    Totals,
}

/// Normalises header text for comparison: folded, no white space, no
/// required-field stars, no trailing unit in brackets such as （元）.
pub fn normalise_header(raw: &str) -> String {
    let mut text: String = fold_text(raw)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '*' && *c != '＊')
        .collect();
    for (open, close) in [('(', ')'), ('（', '）')] {
        if text.ends_with(close)
            && let Some(start) = text.rfind(open)
            && start > 0
        {
            text.truncate(start);
        }
    }
    text
}

/// Tries a row as the header. Returns the layout when every required
/// field is named.
pub fn try_header(row: &ExportRow, fields: &[FieldSpec]) -> Option<Layout> {
    let headers: Vec<String> = row
        .cells
        .iter()
        .map(|cell| normalise_header(&cell.display()))
        .collect();
    let layout = match_fields(row.row, headers, fields);
    let complete = fields
        .iter()
        .filter(|spec| spec.required)
        .all(|spec| layout.column(spec.field).is_some());
    complete.then_some(layout)
}

/// Whether the row right below a header continues it: a second header row
/// whose cells sit under a merged parent, with no data in the columns the
/// header already identified.
pub fn is_sub_header(layout: &Layout, row: &ExportRow, fields: &[FieldSpec]) -> bool {
    let required_empty = fields
        .iter()
        .filter(|spec| spec.required)
        .filter_map(|spec| layout.column(spec.field))
        .all(|column| row.cells.get(column).is_none_or(Cell::is_empty));
    let texts: Vec<&Cell> = row.cells.iter().filter(|cell| !cell.is_empty()).collect();
    required_empty && !texts.is_empty() && texts.iter().all(|cell| matches!(cell, Cell::Text(_)))
}

/// Joins a sub-header row onto the layout: 合同期限 over 起始 and 终止
/// becomes 合同期限.起始 and 合同期限.终止.
pub fn join_sub_header(layout: &Layout, row: &ExportRow, fields: &[FieldSpec]) -> Layout {
    let width = layout.headers.len().max(row.cells.len());
    let mut parent = String::new();
    let mut headers = Vec::with_capacity(width);
    for column in 0..width {
        let top = layout.headers.get(column).cloned().unwrap_or_default();
        if !top.is_empty() {
            parent = top.clone();
        }
        let sub = row
            .cells
            .get(column)
            .map(|c| normalise_header(&c.display()))
            .unwrap_or_default();
        headers.push(match (top.is_empty(), sub.is_empty()) {
            (_, true) => top,
            (true, false) => format!("{parent}.{sub}"),
            (false, false) => format!("{top}.{sub}"),
        });
    }
    match_fields(row.row, headers, fields)
}

fn match_fields(header_row: u64, headers: Vec<String>, fields: &[FieldSpec]) -> Layout {
    let mut columns = Vec::new();
    for spec in fields {
        let found = headers
            .iter()
            .position(|header| spec.aliases.iter().any(|a| a == header));
        if let Some(column) = found {
            columns.push((spec.field, column));
        }
    }
    let labels = fields
        .iter()
        .map(|spec| {
            (
                spec.field,
                spec.aliases.first().cloned().unwrap_or_default(),
            )
        })
        .collect();
    Layout {
        header_row,
        headers,
        columns,
        labels,
    }
}

/// Classifies a row below the header.
pub fn classify(layout: &Layout, row: &ExportRow) -> RowKind {
    let first = row.cells.iter().find(|cell| !cell.is_empty());
    let Some(first) = first else {
        return RowKind::Blank;
    };
    let first = fold_text(&first.display());
    if ["合计", "总计", "小计", "共计"]
        .iter()
        .any(|word| first.starts_with(word))
    {
        return RowKind::Totals;
    }
    let last_used = layout.columns.iter().map(|(_, c)| *c).max().unwrap_or(0);
    RowKind::Data {
        padded: row.cells.len() <= last_used,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(number: u64, cells: &[&str]) -> ExportRow {
        let cells = cells
            .iter()
            .map(|t| {
                if t.is_empty() {
                    Cell::Empty
                } else {
                    Cell::Text(t.to_string())
                }
            })
            .collect();
        ExportRow { row: number, cells }
    }

    fn fields() -> Vec<FieldSpec> {
        vec![
            FieldSpec::new("citizen_id", true, &["身份证号", "身份证号码"]),
            FieldSpec::new("name", true, &["姓名"]),
            FieldSpec::new("contract_start", false, &["合同起始", "合同期限.起始"]),
            FieldSpec::new("contract_end", false, &["合同终止", "合同期限.终止"]),
        ]
    }

    #[test]
    fn title_row_is_not_a_header_and_aliases_match() {
        assert!(try_header(&row(1, &["2024年第二季度编外人员花名册"]), &fields()).is_none());
        let layout = try_header(&row(2, &["序号", " 姓名 ", "身份证号码*"]), &fields()).unwrap();
        assert_eq!(layout.column("citizen_id"), Some(2));
        assert_eq!(layout.column("name"), Some(1));
    }

    #[test]
    fn two_row_header_joins_parent_and_children() {
        let top = row(2, &["序号", "姓名", "身份证号", "合同期限", "", "入职日期"]);
        let sub = row(3, &["", "", "", "起始", "终止", ""]);
        let layout = try_header(&top, &fields()).unwrap();
        assert!(is_sub_header(&layout, &sub, &fields()));
        let joined = join_sub_header(&layout, &sub, &fields());
        assert_eq!(joined.column("contract_start"), Some(3));
        assert_eq!(joined.column("contract_end"), Some(4));
        assert_eq!(joined.headers[3], "合同期限.起始");
        let data = row(4, &["1", "林晓雯", "330106198703154214", "2021-11-18"]);
        assert!(!is_sub_header(&layout, &data, &fields()));
    }

    #[test]
    fn totals_blank_and_short_rows_are_classified() {
        let layout = try_header(&row(1, &["姓名", "身份证号", "合同起始"]), &fields()).unwrap();
        assert_eq!(
            classify(&layout, &row(9, &["合计：3人", "", ""])),
            RowKind::Totals
        );
        assert_eq!(classify(&layout, &row(9, &["", " ", ""])), RowKind::Blank);
        assert_eq!(
            classify(&layout, &row(9, &["a", "b"])),
            RowKind::Data { padded: true }
        );
        assert_eq!(
            classify(&layout, &row(9, &["a", "b", "c"])),
            RowKind::Data { padded: false }
        );
    }

    #[test]
    fn header_normalisation_drops_units_and_stars() {
        assert_eq!(normalise_header("应发工资（元）"), "应发工资");
        assert_eq!(normalise_header("*身份证号 "), "身份证号");
        assert_eq!(normalise_header("\u{FEFF}姓名"), "姓名");
    }
}
