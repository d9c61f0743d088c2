//! Citizen identity numbers (GB 11643).
//!
//! Every person in the block data is keyed by the normalised 18-character
//! number. Parsing accepts the forms departments export (lower-case x,
//! spaces, full-width digits, the legacy 15-digit form) and rejects anything
//! whose birth date or check character is wrong, saying which check failed.
//! The number itself never appears in an error message or a log line: use
//! [`CitizenId::masked`] where a person must be recognisable.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::fold::fold_identifier;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// A citizen ID number in its normalised 18-character form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CitizenId(String);

/// Why a value is not a citizen ID number. Messages never repeat the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CitizenIdError {
    /// The cell was empty after folding white space.
    #[error("ID_MISSING: no ID number given")]
    Missing,
    /// Neither 15 nor 18 characters after folding.
    #[error("ID_LENGTH: expected 18 (or legacy 15) characters, found {found}")]
    Length {
        /// Characters left after folding.
        found: usize,
    },
    /// A character other than a digit where a digit is required.
    #[error("ID_CHARACTER: character {position} is not a digit")]
    NotDigit {
        /// 1-based position in the folded value.
        position: usize,
    },
    /// The embedded birth date is not a calendar date.
    #[error("ID_BIRTH_DATE: the embedded birth date is not a valid date")]
    BirthDate,
    /// The check character does not match the first 17 digits.
    #[error("ID_CHECK_CHAR_MISMATCH: check character expected {expected}, found {found}")]
    CheckChar {
        /// The character the first 17 digits call for.
        expected: char,
        /// The character the export carries.
        found: char,
    },
}

impl CitizenIdError {
    /// A stable code for dead letters and counts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "ID_MISSING",
            Self::Length { .. } => "ID_LENGTH",
            Self::NotDigit { .. } => "ID_CHARACTER",
            Self::BirthDate => "ID_BIRTH_DATE",
            Self::CheckChar { .. } => "ID_CHECK_CHAR_MISMATCH",
        }
    }
}

impl CitizenId {
    /// Parses an ID number as exported, folding and upgrading legacy numbers.
    pub fn parse(raw: &str) -> Result<Self, CitizenIdError> {
        let folded = fold_identifier(raw);
        if folded.is_empty() {
            return Err(CitizenIdError::Missing);
        }
        let chars: Vec<char> = folded.chars().collect();
        match chars.len() {
            15 => Self::from_legacy(&chars),
            18 => Self::from_full(&chars),
            found => Err(CitizenIdError::Length { found }),
        }
    }

    fn from_legacy(chars: &[char]) -> Result<Self, CitizenIdError> {
        require_digits(chars, 15)?;
        let mut body: String = chars[..6].iter().collect();
        body.push_str("19");
        body.extend(&chars[6..]);
        birth_date_of(&body)?;
        let check = check_char(&body);
        body.push(check);
        Ok(Self(body))
    }

    fn from_full(chars: &[char]) -> Result<Self, CitizenIdError> {
        require_digits(chars, 17)?;
        let body: String = chars[..17].iter().collect();
        birth_date_of(&body)?;
        let expected = check_char(&body);
        let found = chars[17];
        if found != expected {
            return Err(CitizenIdError::CheckChar { expected, found });
        }
        Ok(Self(format!("{body}{found}")))
    }

    /// Completes the first 17 digits with their check character, for
    /// generated data such as benchmarks.
    pub fn from_body(body: &str) -> Result<Self, CitizenIdError> {
        let chars: Vec<char> = body.chars().collect();
        if chars.len() != 17 {
            return Err(CitizenIdError::Length { found: chars.len() });
        }
        require_digits(&chars, 17)?;
        birth_date_of(body)?;
        Ok(Self(format!("{body}{}", check_char(body))))
    }

    /// The normalised 18 characters. Handle with care: this is personal data.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The date of birth encoded in the number.
    pub fn birth_date(&self) -> NaiveDate {
        // Parsing validated the date, so this cannot fail for a constructed ID.
        birth_date_of(&self.0).unwrap_or(NaiveDate::MIN)
    }

    /// Whether the sequence digit marks a man (odd) or a woman (even).
    pub fn is_male(&self) -> bool {
        let digit = self.0.as_bytes()[16] - b'0';
        digit % 2 == 1
    }

    /// The number with its middle hidden, as 330681********1234.
    pub fn masked(&self) -> String {
        mask_id_text(&self.0)
    }
}

/// Masks anything that may be an ID number: keeps the first six and last
/// four characters and stars the rest; short values are starred entirely.
pub fn mask_id_text(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    if chars.len() < 12 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 10))
}

/// Masks every run of fifteen or more ID-like characters (digits and X,
/// half- or full-width) in free text, for dead letters and messages.
pub fn mask_ids_in_text(text: &str) -> String {
    fn id_like(c: char) -> bool {
        c.is_ascii_digit() || matches!(c, 'x' | 'X' | 'ｘ' | 'Ｘ' | '０'..='９')
    }
    let mut out = String::with_capacity(text.len());
    let mut run: Vec<char> = Vec::new();
    let flush = |run: &mut Vec<char>, out: &mut String| {
        if run.len() >= 15 {
            out.push_str(&mask_id_text(&run.iter().collect::<String>()));
        } else {
            out.extend(run.iter());
        }
        run.clear();
    };
    for c in text.chars() {
        if id_like(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn require_digits(chars: &[char], count: usize) -> Result<(), CitizenIdError> {
    match chars[..count].iter().position(|c| !c.is_ascii_digit()) {
        Some(index) => Err(CitizenIdError::NotDigit {
            position: index + 1,
        }),
        None => Ok(()),
    }
}

fn birth_date_of(body: &str) -> Result<NaiveDate, CitizenIdError> {
    let digits = body.get(6..14).ok_or(CitizenIdError::BirthDate)?;
    NaiveDate::parse_from_str(digits, "%Y%m%d").map_err(|_| CitizenIdError::BirthDate)
}

fn check_char(body: &str) -> char {
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    char::from(CHECK_CHARS[(sum % 11) as usize])
}

impl fmt::Display for CitizenId {
    /// Displays masked, so that a careless log line leaks nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CitizenId({})", self.masked())
    }
}

impl TryFrom<String> for CitizenId {
    type Error = CitizenIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CitizenId> for String {
    fn from(id: CitizenId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_number_and_lower_case_x() {
        let id = CitizenId::parse("33010419900708105x").unwrap();
        assert_eq!(id.as_str(), "33010419900708105X");
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1990, 7, 8).unwrap()
        );
    }

    // C01: an X where 0 is right, and a digit from a wrong table, must be
    // rejected with the expected and found characters.
    #[test]
    fn rejects_wrong_check_character_with_expected_and_found() {
        assert_eq!(
            CitizenId::parse("33010219791102101X"),
            Err(CitizenIdError::CheckChar {
                expected: '0',
                found: 'X'
            })
        );
        assert_eq!(
            CitizenId::parse("330108198502201007"),
            Err(CitizenIdError::CheckChar {
                expected: '5',
                found: '7'
            })
        );
    }

    #[test]
    fn upgrades_legacy_fifteen_digit_numbers() {
        // 330681 + 710702 + 527 is the legacy form of 330681197107025275.
        let id = CitizenId::parse("330681710702527").unwrap();
        assert_eq!(id.as_str(), "330681197107025275");
    }

    #[test]
    fn rejects_bad_lengths_dates_and_characters() {
        assert_eq!(
            CitizenId::parse("33010619870315421"),
            Err(CitizenIdError::Length { found: 17 })
        );
        assert_eq!(CitizenId::parse("  "), Err(CitizenIdError::Missing));
        assert_eq!(
            CitizenId::parse("330106198702304214"),
            Err(CitizenIdError::BirthDate)
        );
        assert_eq!(
            CitizenId::parse("33010619870315A214"),
            Err(CitizenIdError::NotDigit { position: 15 })
        );
    }

    #[test]
    fn messages_and_display_never_carry_the_number() {
        let err = CitizenId::parse("33010219791102101X").unwrap_err();
        assert!(!err.to_string().contains("197911"));
        let id = CitizenId::parse("330106198703154214").unwrap();
        assert_eq!(id.to_string(), "330106********4214");
        assert!(!format!("{id:?}").contains("19870315"));
    }

    #[test]
    fn ids_inside_free_text_are_masked() {
        let masked = mask_ids_in_text("周雅琴,33010419900708105x,2024-05,5230.00");
        assert_eq!(masked, "周雅琴,330104********105x,2024-05,5230.00");
    }

    #[test]
    fn sex_comes_from_the_sequence_digit() {
        assert!(!CitizenId::parse("330106199105232360").unwrap().is_male());
        assert!(CitizenId::parse("330681197107025275").unwrap().is_male());
    }
}
