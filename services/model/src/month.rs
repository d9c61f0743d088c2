//! Pay and contribution months, exported as 202611, 2026-11 or 2026年11月.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::fold::fold_text;

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Month {
    year: i32,
    month: u32,
}

/// Why a value is not a month.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonthError {
    /// Not in a month form, or a month outside 1 to 12.
    #[error("MONTH_FORMAT: {raw} is not a month such as 202611 or 2026-11")]
    Format {
        /// The value as exported.
        raw: String,
    },
}

impl Month {
    /// Builds a month, refusing month numbers outside 1 to 12.
    pub fn new(year: i32, month: u32) -> Option<Self> {
        ((1..=12).contains(&month) && (1900..=9999).contains(&year)).then_some(Self { year, month })
    }

    /// Parses 202611, 2026-11, 2026.11, 2026/11 or 2026年11月.
    pub fn parse(raw: &str) -> Result<Self, MonthError> {
        let error = || MonthError::Format {
            raw: raw.to_string(),
        };
        let text = fold_text(raw);
        let fields: Vec<&str> = text
            .split(['-', '.', '/', '年', '月'])
            .filter(|part| !part.is_empty())
            .collect();
        let (year, month) = match fields.as_slice() {
            [digits] if digits.len() == 6 => (&digits[..4], &digits[4..]),
            [year, month] if year.len() == 4 && month.len() <= 2 => (*year, *month),
            _ => return Err(error()),
        };
        if !year
            .chars()
            .chain(month.chars())
            .all(|c| c.is_ascii_digit())
        {
            return Err(error());
        }
        let year = year.parse().map_err(|_| error())?;
        let month = month.parse().map_err(|_| error())?;
        Self::new(year, month).ok_or_else(error)
    }

    /// The month as a sortable number, 202611.
    pub fn as_number(&self) -> i32 {
        self.year * 100 + self.month as i32
    }

    /// The month from its sortable number.
    pub fn from_number(number: i32) -> Option<Self> {
        Self::new(number / 100, (number % 100) as u32)
    }

    /// The year.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The month of the year, 1 to 12.
    pub fn month(&self) -> u32 {
        self.month
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_exported_form() {
        for raw in [
            "202611",
            "2026-11",
            "2026.11",
            "2026/11",
            "2026年11月",
            " 2026-11 ",
        ] {
            assert_eq!(Month::parse(raw).unwrap().to_string(), "2026-11", "{raw}");
        }
        assert_eq!(Month::parse("2026-3").unwrap().as_number(), 202603);
    }

    #[test]
    fn rejects_impossible_months() {
        for raw in ["202613", "2026-00", "26-11", "", "2026-11-01", "abcdef"] {
            assert!(Month::parse(raw).is_err(), "{raw}");
        }
    }
}
