//! Calendar dates in every form the departments export them.
//!
//! A date is accepted only when year, month and day are all present and form
//! a real calendar date. Nothing is ever filled in: 2021年11月 and 11月17日
//! are rejected rather than completed with a guessed day or year.

use chrono::{Datelike, NaiveDate};

/// Why a value is not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Year and month without a day.
    #[error("DATE_INCOMPLETE: {raw} has no day")]
    Incomplete {
        /// The value as exported.
        raw: String,
    },
    /// Month and day without a year.
    #[error("DATE_NO_YEAR: {raw} has no year")]
    NoYear {
        /// The value as exported.
        raw: String,
    },
    /// The parts are present but name no calendar day, such as 2023年2月29日.
    #[error("DATE_INVALID: {raw} is not a calendar date")]
    Invalid {
        /// The value as exported.
        raw: String,
    },
    /// An Excel serial number that names no day (serial 60 is 1900-02-29).
    #[error("DATE_EXCEL_SERIAL_INVALID: {serial} does not name a calendar day")]
    ExcelSerial {
        /// The serial as stored.
        serial: String,
    },
    /// Text in no date form this parser knows.
    #[error("DATE_FORMAT: {raw} is not in a known date form")]
    Format {
        /// The value as exported.
        raw: String,
    },
}

impl DateError {
    /// A stable code for dead letters and counts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Incomplete { .. } => "DATE_INCOMPLETE",
            Self::NoYear { .. } => "DATE_NO_YEAR",
            Self::Invalid { .. } => "DATE_INVALID",
            Self::ExcelSerial { .. } => "DATE_EXCEL_SERIAL_INVALID",
            Self::Format { .. } => "DATE_FORMAT",
        }
    }
}

/// Which epoch an Excel workbook counts its serial numbers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExcelEpoch {
    /// The default 1900 system, with its fictitious 1900-02-29 (serial 60).
    System1900,
    /// The 1904 system of old Mac workbooks.
    System1904,
}

/// Converts an Excel serial day number to a date; the time part is ignored.
pub fn from_excel_serial(serial: f64, epoch: ExcelEpoch) -> Result<NaiveDate, DateError> {
    let invalid = || DateError::ExcelSerial {
        serial: format_serial(serial),
    };
    if !serial.is_finite() || !(1.0..2_958_466.0).contains(&serial) {
        return Err(invalid());
    }
    let days = serial.floor() as i64;
    let (base, offset) = match epoch {
        ExcelEpoch::System1904 => ((1904, 1, 1), days),
        // Excel counts 1900 as a leap year: serial 60 is a day that never
        // was, and from serial 61 on the count runs one ahead.
        ExcelEpoch::System1900 if days == 60 => return Err(invalid()),
        ExcelEpoch::System1900 if days < 60 => ((1899, 12, 31), days),
        ExcelEpoch::System1900 => ((1899, 12, 30), days),
    };
    NaiveDate::from_ymd_opt(base.0, base.1, base.2)
        .and_then(|start| start.checked_add_days(chrono::Days::new(offset as u64)))
        .ok_or_else(invalid)
}

fn format_serial(serial: f64) -> String {
    if serial.fract() == 0.0 {
        format!("{}", serial as i64)
    } else {
        serial.to_string()
    }
}

/// Parses a date written as text: 2021-03-01, 2021.03.01, 2021/3/1,
/// 2021年3月1日, 20211118, with an optional midnight time after it, or an
/// Excel serial number written as text (1900 system).
pub fn parse_date(raw: &str) -> Result<NaiveDate, DateError> {
    let text = crate::fold::fold_text(raw);
    let text = strip_midnight(&text);
    let fields: Vec<&str> = text
        .split(['-', '.', '/', '年', '月', '日'])
        .filter(|part| !part.is_empty())
        .collect();
    let all_digits = fields.iter().all(|f| f.chars().all(|c| c.is_ascii_digit()));
    if fields.is_empty() || !all_digits {
        return Err(DateError::Format {
            raw: raw.to_string(),
        });
    }

    if fields.len() == 1 {
        let digits = fields[0];
        return match digits.len() {
            8 => ymd(&digits[..4], &digits[4..6], &digits[6..], raw),
            1..=5 => {
                let serial: f64 = digits
                    .parse()
                    .map_err(|_| DateError::Format { raw: raw.into() })?;
                from_excel_serial(serial, ExcelEpoch::System1900)
            }
            _ => Err(DateError::Format {
                raw: raw.to_string(),
            }),
        };
    }

    let has_year = fields[0].len() == 4;
    match (fields.len(), has_year) {
        (3, true) => ymd(fields[0], fields[1], fields[2], raw),
        (2, true) => Err(DateError::Incomplete {
            raw: raw.to_string(),
        }),
        (2, false) if text.contains('月') || fields[0].len() <= 2 => Err(DateError::NoYear {
            raw: raw.to_string(),
        }),
        _ => Err(DateError::Format {
            raw: raw.to_string(),
        }),
    }
}

fn strip_midnight(text: &str) -> &str {
    for suffix in [" 00:00:00", "T00:00:00", " 0:00:00", " 00:00"] {
        if let Some(stripped) = text.strip_suffix(suffix) {
            return stripped;
        }
    }
    text
}

fn ymd(year: &str, month: &str, day: &str, raw: &str) -> Result<NaiveDate, DateError> {
    let format = || DateError::Format {
        raw: raw.to_string(),
    };
    if month.len() > 2 || day.len() > 2 {
        return Err(format());
    }
    let year: i32 = year.parse().map_err(|_| format())?;
    let month: u32 = month.parse().map_err(|_| format())?;
    let day: u32 = day.parse().map_err(|_| format())?;
    NaiveDate::from_ymd_opt(year, month, day).ok_or(DateError::Invalid {
        raw: raw.to_string(),
    })
}

/// Days since 1970-01-01, the Avro `date` logical type.
pub fn to_epoch_days(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// The date for a count of days since 1970-01-01.
pub fn from_epoch_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(EPOCH_DAYS_FROM_CE)?)
}

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn accepts_every_exported_form() {
        for raw in [
            "2021年11月18日",
            "2021.11.18",
            "2021/11/18",
            "20211118",
            "2021-11-18",
            "2021-11-18 00:00:00",
            "44518",
            "２０２１－１１－１８",
        ] {
            assert_eq!(parse_date(raw), Ok(d(2021, 11, 18)), "{raw}");
        }
        assert_eq!(parse_date("2021.11.8"), Ok(d(2021, 11, 8)));
        assert_eq!(parse_date("2021/3/1"), Ok(d(2021, 3, 1)));
        assert_eq!(parse_date("2024年2月29日"), Ok(d(2024, 2, 29)));
    }

    // C07: incomplete or impossible dates were completed by other loaders
    // with the current year or day 1; they must be rejected instead.
    #[test]
    fn never_fills_in_a_missing_year_or_day() {
        assert_eq!(
            parse_date("2021年11月").unwrap_err().code(),
            "DATE_INCOMPLETE"
        );
        assert_eq!(parse_date("11月17日").unwrap_err().code(), "DATE_NO_YEAR");
        assert_eq!(
            parse_date("2023年2月29日").unwrap_err().code(),
            "DATE_INVALID"
        );
        assert_eq!(
            parse_date("60").unwrap_err().code(),
            "DATE_EXCEL_SERIAL_INVALID"
        );
        assert_eq!(parse_date("soon").unwrap_err().code(), "DATE_FORMAT");
    }

    #[test]
    fn excel_serials_in_both_systems() {
        assert_eq!(
            from_excel_serial(44518.0, ExcelEpoch::System1900),
            Ok(d(2021, 11, 18))
        );
        assert_eq!(
            from_excel_serial(43056.0, ExcelEpoch::System1904),
            Ok(d(2021, 11, 18))
        );
        assert_eq!(
            from_excel_serial(59.0, ExcelEpoch::System1900),
            Ok(d(1900, 2, 28))
        );
        assert_eq!(
            from_excel_serial(61.0, ExcelEpoch::System1900),
            Ok(d(1900, 3, 1))
        );
        assert!(from_excel_serial(60.0, ExcelEpoch::System1900).is_err());
        assert!(from_excel_serial(-3.0, ExcelEpoch::System1900).is_err());
    }

    #[test]
    fn epoch_days_round_trip() {
        assert_eq!(to_epoch_days(d(1970, 1, 1)), 0);
        assert_eq!(
            from_epoch_days(to_epoch_days(d(2026, 11, 30))),
            Some(d(2026, 11, 30))
        );
    }
}
