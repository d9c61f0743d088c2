//! The department sources. Each has the same files: `mapping` (the fields
//! it reads and the header texts that name them), `parse` (one row to one
//! fact, or a rejection with every reason) and `tests`.

pub mod contributions;
pub mod court_cases;
pub mod payroll;
pub mod placements;
pub mod purchases;
pub mod quota;
pub mod retirements;
pub mod roster;

use blockhub_model::{
    CitizenId, CreditCode, EventKind, Fact, Month, amount_from_number, fold::fold_text,
    parse_amount, parse_date,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::directory::{Resolution, UnitDirectory};
use crate::export::Cell;
use crate::layout::{FieldSpec, Layout};
use crate::mapping_file::Mapping;

/// Header texts naming the citizen ID column, in every source.
pub const CITIZEN_ID_HEADERS: &[&str] = &[
    "身份证号",
    "身份证号码",
    "公民身份号码",
    "证件号码",
    "身份证",
];
/// Header texts naming the person's name column.
pub const NAME_HEADERS: &[&str] = &["姓名", "人员姓名"];
/// Header texts naming the unit's credit code column.
pub const UNIT_CODE_HEADERS: &[&str] = &["统一社会信用代码", "单位统一社会信用代码", "信用代码"];

/// The sources `blockhub ingest` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Unit quotas from the staffing office.
    Quota,
    /// The real-name roster from the staffing office.
    Roster,
    /// Monthly payroll from the finance bureau.
    Payroll,
    /// Monthly contributions from the social-security bureau.
    Contributions,
    /// Pension starts from the social-security bureau.
    Retirements,
    /// Enforcement cases from the court.
    CourtCases,
    /// Placements from the veterans-affairs bureau.
    Placements,
    /// Purchased-service contracts from the finance bureau.
    Purchases,
}

impl SourceKind {
    /// The name used on the command line and as the event's source system.
    pub fn name(&self) -> &'static str {
        // One list of names, in the model, shared with sync health.
        self.event_kind().source().unwrap_or("unknown")
    }

    /// The kind of event the source publishes.
    pub fn event_kind(&self) -> EventKind {
        match self {
            Self::Quota => EventKind::UnitQuota,
            Self::Roster => EventKind::RosterEntry,
            Self::Payroll => EventKind::PayrollPayment,
            Self::Contributions => EventKind::Contribution,
            Self::Retirements => EventKind::PensionStart,
            Self::CourtCases => EventKind::EnforcementCase,
            Self::Placements => EventKind::VeteranPlacement,
            Self::Purchases => EventKind::PurchasedService,
        }
    }

    /// Whether rows name units that must be resolved through the unit
    /// directory (read from the quota topic).
    pub fn needs_unit_directory(&self) -> bool {
        !matches!(self, Self::Quota | Self::Retirements | Self::CourtCases)
    }

    /// The fields the source reads.
    pub fn fields(&self) -> Vec<FieldSpec> {
        match self {
            Self::Quota => quota::mapping::fields(),
            Self::Roster => roster::mapping::fields(),
            Self::Payroll => payroll::mapping::fields(),
            Self::Contributions => contributions::mapping::fields(),
            Self::Retirements => retirements::mapping::fields(),
            Self::CourtCases => court_cases::mapping::fields(),
            Self::Placements => placements::mapping::fields(),
            Self::Purchases => purchases::mapping::fields(),
        }
    }

    /// Parses one data row.
    pub fn parse(&self, row: &mut RowView<'_>) -> Result<Fact, Rejection> {
        match self {
            Self::Quota => quota::parse::parse(row),
            Self::Roster => roster::parse::parse(row),
            Self::Payroll => payroll::parse::parse(row),
            Self::Contributions => contributions::parse::parse(row),
            Self::Retirements => retirements::parse::parse(row),
            Self::CourtCases => court_cases::parse::parse(row),
            Self::Placements => placements::parse::parse(row),
            Self::Purchases => purchases::parse::parse(row),
        }
    }
}

/// One field of a row that failed a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The column's header text.
    pub column: String,
    /// A stable code such as ID_CHECK_CHAR_MISMATCH.
    pub code: String,
    /// The reason in words, never carrying an ID number.
    pub message: String,
}

/// Why a row was rejected: every failed check, not just the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The failed checks, left to right.
    pub problems: Vec<FieldProblem>,
}

impl Rejection {
    /// The codes of every problem, in order, joined by commas.
    pub fn code(&self) -> String {
        let mut codes: Vec<&str> = Vec::new();
        for problem in &self.problems {
            if !codes.contains(&problem.code.as_str()) {
                codes.push(&problem.code);
            }
        }
        if codes.is_empty() {
            "ROW_INVALID".into()
        } else {
            codes.join(",")
        }
    }

    /// All problems in one line.
    pub fn reason(&self) -> String {
        let parts: Vec<String> = self
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.column, p.message))
            .collect();
        parts.join("; ")
    }
}

/// A field failed its check; the reason is already on the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemRecorded;

/// A data row seen through the layout, collecting problems as fields are
/// read so that a row reports all its faults at once.
pub struct RowView<'a> {
    layout: &'a Layout,
    cells: &'a [Cell],
    directory: &'a UnitDirectory,
    mapping: Option<&'a Mapping>,
    problems: Vec<FieldProblem>,
    warnings: Vec<String>,
}

impl<'a> RowView<'a> {
    /// A view of `cells` through `layout`, resolving unit names through
    /// `directory`.
    pub fn new(layout: &'a Layout, cells: &'a [Cell], directory: &'a UnitDirectory) -> Self {
        Self {
            layout,
            cells,
            directory,
            mapping: None,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Translates labels through a department's value maps.
    pub fn with_mapping(mut self, mapping: &'a Mapping) -> Self {
        self.mapping = Some(mapping);
        self
    }

    /// The hub's label for a label as exported: the mapping's translation
    /// where it names one, else the label itself.
    pub fn translated(&self, field: &str, label: &str) -> String {
        self.mapping
            .and_then(|mapping| mapping.translate(field, label))
            .unwrap_or(label)
            .to_string()
    }

    /// Notes something accepted with a caveat; never carries an ID number.
    pub fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    /// The caveats noted so far.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// The unit's credit code: from its own column, else the unit's name
    /// resolved through the unit directory. An unknown or shared name is a
    /// problem on the row, never a guess.
    pub fn unit(&mut self) -> Option<CreditCode> {
        if self.text("unit_code").is_some() {
            return self.credit_code("unit_code");
        }
        let Some(name) = self.text("unit_name") else {
            if let Some(code) = self.directory.export_unit() {
                return Some(code.clone());
            }
            let message = "neither a credit code (统一社会信用代码) nor a unit name given; \
                           if the whole export is one unit's, pass --unit CODE";
            self.problem("unit_code", "UNIT_MISSING", message.into());
            return None;
        };
        match self.directory.resolve(&name) {
            Resolution::Unit(code) => Some(code),
            Resolution::Unknown => {
                let message = format!(
                    "{name} is not in the unit directory (the quota list and configured \
                     aliases); add its credit code to the export, or an alias"
                );
                self.problem("unit_name", "UNIT_UNKNOWN", message);
                None
            }
            Resolution::Ambiguous(codes) => {
                let codes: Vec<&str> = codes.iter().map(CreditCode::as_str).collect();
                let message = format!(
                    "{name} names several units ({}); give the credit code",
                    codes.join(", ")
                );
                self.problem("unit_name", "UNIT_AMBIGUOUS", message);
                None
            }
        }
    }

    fn cell(&self, field: &str) -> &Cell {
        self.layout
            .column(field)
            .and_then(|c| self.cells.get(c))
            .unwrap_or(&Cell::Empty)
    }

    fn problem(&mut self, field: &str, code: &str, message: String) {
        let column = self.layout.header_of(field).to_string();
        self.problems.push(FieldProblem {
            column,
            code: code.to_string(),
            message,
        });
    }

    /// Whether the export has a column for this field at all.
    pub fn has_column(&self, field: &str) -> bool {
        self.layout.column(field).is_some()
    }

    /// Records a failed check that is not about a single cell's form.
    pub fn reject(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.problem(field, code, message.into());
    }

    /// Optional text, folded and trimmed; None when empty.
    pub fn text(&self, field: &str) -> Option<String> {
        let text = fold_text(&self.cell(field).display());
        (!text.is_empty()).then_some(text)
    }

    /// Text that must be present.
    pub fn required_text(&mut self, field: &str) -> Option<String> {
        let text = self.text(field);
        if text.is_none() {
            self.problem(field, "FIELD_MISSING", "no value given".into());
        }
        text
    }

    /// A citizen ID; a number cell too long to hold 18 digits exactly is
    /// refused rather than rounded.
    pub fn citizen_id(&mut self, field: &str) -> Option<CitizenId> {
        let raw = match self.cell(field) {
            Cell::Number(number) if number.abs() >= 1e15 => {
                let message = "stored as a number, so its last digits were lost; format the \
                               column as text in the export"
                    .to_string();
                self.problem(field, "ID_STORED_AS_NUMBER", message);
                return None;
            }
            cell => cell.display(),
        };
        match CitizenId::parse(&raw) {
            Ok(id) => Some(id),
            Err(error) => {
                self.problem(field, error.code(), strip_code(&error.to_string()));
                None
            }
        }
    }

    /// A credit code.
    pub fn credit_code(&mut self, field: &str) -> Option<CreditCode> {
        match CreditCode::parse(&self.cell(field).display()) {
            Ok(code) => Some(code),
            Err(error) => {
                self.problem(field, error.code(), strip_code(&error.to_string()));
                None
            }
        }
    }

    /// An optional date: Ok(None) when empty; when malformed, the problem
    /// is recorded on the row and `ProblemRecorded` returned.
    pub fn date(&mut self, field: &str) -> Result<Option<NaiveDate>, ProblemRecorded> {
        let result = match self.cell(field).clone() {
            Cell::Empty => return Ok(None),
            Cell::Date(result) => result,
            Cell::Number(serial) => {
                blockhub_model::from_excel_serial(serial, blockhub_model::ExcelEpoch::System1900)
            }
            Cell::Text(text) => parse_date(&text),
        };
        result.map(Some).map_err(|error| {
            self.problem(field, error.code(), strip_code(&error.to_string()));
            ProblemRecorded
        })
    }

    /// A date that must be present.
    pub fn required_date(&mut self, field: &str) -> Option<NaiveDate> {
        match self.date(field) {
            Ok(Some(date)) => Some(date),
            Ok(None) => {
                self.problem(field, "FIELD_MISSING", "no date given".into());
                None
            }
            Err(ProblemRecorded) => None,
        }
    }

    /// An optional amount of money: Ok(None) when empty.
    pub fn optional_amount(&mut self, field: &str) -> Result<Option<Decimal>, ProblemRecorded> {
        if self.cell(field).is_empty() {
            return Ok(None);
        }
        self.amount(field).map(Some).ok_or(ProblemRecorded)
    }

    /// A required amount of money.
    pub fn amount(&mut self, field: &str) -> Option<Decimal> {
        let result = match self.cell(field) {
            Cell::Number(number) => amount_from_number(*number),
            cell => parse_amount(&cell.display()),
        };
        match result {
            Ok(amount) => Some(amount),
            Err(error) => {
                self.problem(field, error.code(), strip_code(&error.to_string()));
                None
            }
        }
    }

    /// A required month.
    pub fn month(&mut self, field: &str) -> Option<Month> {
        match Month::parse(&self.cell(field).display()) {
            Ok(month) => Some(month),
            Err(error) => {
                self.problem(field, "MONTH_FORMAT", strip_code(&error.to_string()));
                None
            }
        }
    }

    /// A required whole number of at least zero.
    pub fn count(&mut self, field: &str) -> Option<i32> {
        let text = self.text(field).unwrap_or_default();
        let digits = text.trim_end_matches(['人', '名']).trim();
        let parsed = digits.parse::<i32>().ok().or_else(|| {
            digits
                .parse::<f64>()
                .ok()
                .filter(|n| n.fract() == 0.0)
                .map(|n| n as i32)
        });
        match parsed {
            Some(count) if count >= 0 => Some(count),
            _ => {
                self.problem(
                    field,
                    "COUNT_FORMAT",
                    format!("{text} is not a whole number"),
                );
                None
            }
        }
    }

    /// Finishes the row: the fact if no check failed, else the rejection.
    pub fn finish(&mut self, fact: Option<Fact>) -> Result<Fact, Rejection> {
        match fact {
            Some(fact) if self.problems.is_empty() => Ok(fact),
            _ => Err(Rejection {
                problems: std::mem::take(&mut self.problems),
            }),
        }
    }
}

/// Error texts start with their code; the code is kept separately.
fn strip_code(message: &str) -> String {
    match message.split_once(": ") {
        Some((code, rest)) if code.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
            rest.to_string()
        }
        _ => message.to_string(),
    }
}
