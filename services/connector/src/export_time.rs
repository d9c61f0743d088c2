//! When an export was made, which orders its facts against other exports.
//!
//! Two exports of one source can state the same fact differently; the
//! newer export must hold the fact however late the older one is read. The
//! time an export was made is, in order of trust: what the person running
//! the ingest says (`--exported-at`), the workbook's own "modified"
//! property (Excel and WPS write it on save, and copying the file keeps
//! it), and the file's modification time (which a careless copy resets,
//! so the ingest summary always says which was used).

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use tracing::warn;

/// Where an export time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportTimeSource {
    /// Given on the command line.
    Given,
    /// The workbook's core properties (docProps/core.xml, dcterms:modified).
    Workbook,
    /// The file's modification time.
    FileTime,
}

impl ExportTimeSource {
    /// How the ingest summary names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Given => "given",
            Self::Workbook => "workbook properties",
            Self::FileTime => "file time",
        }
    }
}

/// An export's time and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExportTime {
    /// When the export was made.
    pub at: DateTime<Utc>,
    /// Where that was read.
    pub from: ExportTimeSource,
}

/// The export time of a file: the given one, else the workbook's, else
/// the file's. None only when the file has no readable time at all; its
/// facts are then ordered by when they were read.
pub fn export_time(path: &Path, given: Option<DateTime<Utc>>) -> Option<ExportTime> {
    if let Some(at) = given {
        return Some(ExportTime {
            at,
            from: ExportTimeSource::Given,
        });
    }
    let is_workbook = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "xlsx" | "xlsm"));
    // A time ahead of this machine's clock (a workbook saved on a PC whose
    // clock is wrong) would hold its facts against every later export, so
    // it is passed over for the next candidate.
    let believable = |at: &DateTime<Utc>| {
        let fine = *at <= Utc::now() + FUTURE_SLACK;
        if !fine {
            warn!(
                file = %path.display(),
                time = %at.to_rfc3339(),
                "An export time ahead of this machine's clock is passed over; pass \
                 --exported-at with the time the export was made."
            );
        }
        fine
    };
    if is_workbook && let Some(at) = workbook_modified(path).filter(believable) {
        return Some(ExportTime {
            at,
            from: ExportTimeSource::Workbook,
        });
    }
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    Some(ExportTime {
        at: DateTime::<Utc>::from(modified),
        from: ExportTimeSource::FileTime,
    })
    .filter(|e| believable(&e.at))
}

/// How far ahead of this machine's clock an export time may be (clocks of
/// department PCs drift a little); anything later is refused or passed
/// over.
const FUTURE_SLACK: chrono::Duration = chrono::Duration::minutes(10);

/// The core properties are a few hundred bytes; anything much larger is
/// not what Excel writes and is not read.
const CORE_PROPERTIES_LIMIT: u64 = 64 * 1024;

/// The workbook's dcterms:modified (else dcterms:created), if the file is
/// a zip holding readable core properties.
fn workbook_modified(path: &Path) -> Option<DateTime<Utc>> {
    let file = std::fs::File::open(path).ok()?;
    let mut archive = zip::ZipArchive::new(file).ok()?;
    let entry = archive.by_name("docProps/core.xml").ok()?;
    let mut xml = String::new();
    entry
        .take(CORE_PROPERTIES_LIMIT)
        .read_to_string(&mut xml)
        .ok()?;
    core_property_time(&xml, "dcterms:modified")
        .or_else(|| core_property_time(&xml, "dcterms:created"))
}

/// The W3C date-time inside `<tag ...>...</tag>`.
fn core_property_time(xml: &str, tag: &str) -> Option<DateTime<Utc>> {
    let open = xml.find(&format!("<{tag}"))?;
    let start = open + xml[open..].find('>')? + 1;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    let text = xml[start..end].trim();
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        // 1980-01-01: what some writers put when they know no time.
        .filter(|t| t.timestamp() > 315_532_800)
}

/// Parses `--exported-at`: RFC 3339 (2026-11-30T17:30:00+08:00), or a
/// local date and time (2026-11-30 17:30), or a local date in any form the
/// exports use (2026-11-30, 2026年11月30日, 20261130: its start). Local
/// means this machine's time zone (TZ). A time in the future is refused:
/// it would hold its facts against every real export to come.
pub fn parse_export_time(text: &str) -> Result<DateTime<Utc>, String> {
    let at = parse_time(text)?;
    if at > Utc::now() + FUTURE_SLACK {
        return Err(format!(
            "{text:?} is in the future ({} UTC): give when the export was made",
            at.format("%Y-%m-%d %H:%M")
        ));
    }
    Ok(at)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    // With an offset but without seconds (2026-11-30T17:30+08:00), or an
    // offset written +0800.
    let offset_forms = [
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%d %H:%M%:z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%d %H:%M%z",
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%d %H:%M:%S%:z",
        "%Y-%m-%d %H:%M:%S%z",
    ];
    if let Some(at) = offset_forms
        .iter()
        .find_map(|format| DateTime::parse_from_str(text, format).ok())
    {
        return Ok(at.with_timezone(&Utc));
    }
    let local = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .or_else(|| {
        // Not an Excel serial: a bare number is a date only as 8 digits.
        let serial = text.chars().all(|c| c.is_ascii_digit()) && text.len() != 8;
        (!serial)
            .then(|| blockhub_model::parse_date(text).ok())
            .flatten()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    });
    let Some(local) = local else {
        return Err(format!(
            "{text:?} is not a time: give 2026-11-30 (or 2026年11月30日), 2026-11-30 17:30 \
             (this machine's local time) or 2026-11-30T17:30:00+08:00"
        ));
    };
    Local
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{text:?} does not exist in the local time zone"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_properties_give_the_modified_time_else_the_created_one() {
        let xml = r#"<cp:coreProperties><dc:creator>x</dc:creator>
            <dcterms:created xsi:type="dcterms:W3CDTF">2026-11-01T08:00:00Z</dcterms:created>
            <dcterms:modified xsi:type="dcterms:W3CDTF">2026-11-30T09:15:00Z</dcterms:modified>
            </cp:coreProperties>"#;
        let modified = core_property_time(xml, "dcterms:modified").unwrap();
        assert_eq!(modified.to_rfc3339(), "2026-11-30T09:15:00+00:00");
        let no_modified = xml.replace("dcterms:modified", "dcterms:other");
        assert!(core_property_time(&no_modified, "dcterms:modified").is_none());
        let created = core_property_time(&no_modified, "dcterms:created").unwrap();
        assert_eq!(created.to_rfc3339(), "2026-11-01T08:00:00+00:00");
        let garbage = xml.replace("2026-11-30T09:15:00Z", "yesterday");
        assert!(core_property_time(&garbage, "dcterms:modified").is_none());
    }

    #[test]
    fn the_given_time_wins_and_a_csv_falls_back_to_its_file_time() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("payroll.csv");
        std::fs::write(&csv, "a,b\n").unwrap();
        let found = export_time(&csv, None).unwrap();
        assert_eq!(found.from, ExportTimeSource::FileTime);
        let given = parse_export_time("2026-11-30T17:30:00+08:00").unwrap();
        let found = export_time(&csv, Some(given)).unwrap();
        assert_eq!((found.at, found.from), (given, ExportTimeSource::Given));
        // Not a zip: the workbook's time is not there, the file's is.
        let fake = dir.path().join("roster.xlsx");
        std::fs::write(&fake, "not a workbook").unwrap();
        assert_eq!(
            export_time(&fake, None).unwrap().from,
            ExportTimeSource::FileTime
        );
    }

    /// A one-cell workbook in `dir` whose core properties say it was saved
    /// at `saved` (rust_xlsxwriter writes it as created and modified).
    fn workbook_saved_at(dir: &Path, saved: &str) -> std::path::PathBuf {
        let path = dir.join("roster.xlsx");
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let saved = rust_xlsxwriter::ExcelDateTime::parse_from_str(saved).unwrap();
        let properties = rust_xlsxwriter::DocProperties::new().set_creation_datetime(&saved);
        workbook.set_properties(&properties);
        workbook.add_worksheet().write(0, 0, "姓名").unwrap();
        workbook.save(&path).unwrap();
        path
    }

    #[test]
    fn a_saved_workbook_gives_its_own_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = workbook_saved_at(dir.path(), "2026-11-30T09:15:00");
        let found = export_time(&path, None).unwrap();
        assert_eq!(found.from, ExportTimeSource::Workbook);
        assert_eq!(found.at.to_rfc3339(), "2026-11-30T09:15:00+00:00");
    }

    #[test]
    fn export_times_parse_in_three_forms_and_refuse_others() {
        let exact = parse_export_time("2026-11-30T17:30:00+08:00").unwrap();
        assert_eq!(exact.to_rfc3339(), "2026-11-30T09:30:00+00:00");
        let local = parse_export_time("2026-11-30 17:30").unwrap();
        let expected = Local.with_ymd_and_hms(2026, 11, 30, 17, 30, 0).unwrap();
        assert_eq!(local, expected.with_timezone(&Utc));
        let day = parse_export_time("2026-11-30").unwrap();
        let midnight = Local.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap();
        assert_eq!(day, midnight.with_timezone(&Utc));
        let error = parse_export_time("30/11/2026").unwrap_err();
        assert!(error.contains("not a time"), "{error}");
        for other in ["2026年11月30日", "20261130", "2026.11.30"] {
            assert_eq!(parse_export_time(other).unwrap(), day, "{other}");
        }
        for offset in [
            "2026-11-30T17:30+08:00",
            "2026-11-30 17:30+08:00",
            "2026-11-30T17:30+0800",
            "2026-11-30 17:30:00+08:00",
        ] {
            assert_eq!(parse_export_time(offset).unwrap(), exact, "{offset}");
        }
        assert!(parse_export_time("46000").is_err(), "not an Excel serial");
        let error = parse_export_time("2062-11-30").unwrap_err();
        assert!(error.contains("in the future"), "{error}");
    }

    #[test]
    fn a_workbook_saved_in_the_future_falls_back_to_its_file_time() {
        let future = "<dcterms:modified>2062-11-30T09:15:00Z</dcterms:modified>";
        let at = core_property_time(future, "dcterms:modified").unwrap();
        assert!(
            at > Utc::now(),
            "parsed, and then passed over by export_time"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = workbook_saved_at(dir.path(), "2062-11-30T09:15:00");
        let found = export_time(&path, None).unwrap();
        assert_eq!(found.from, ExportTimeSource::FileTime);
    }
}
