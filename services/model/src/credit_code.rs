//! Unified social credit codes (GB 32100), the key every unit is joined by.
//!
//! Names of units differ between departments; the credit code does not. A
//! code is accepted only when its characters belong to the code alphabet and
//! its check character matches.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::fold::fold_identifier;

const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// A unit's unified social credit code, 18 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CreditCode(String);

/// Why a value is not a credit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditCodeError {
    /// The cell was empty.
    #[error("CREDIT_CODE_MISSING: no credit code given")]
    Missing,
    /// Not 18 characters after folding.
    #[error("CREDIT_CODE_LENGTH: expected 18 characters, found {found}")]
    Length {
        /// Characters left after folding.
        found: usize,
    },
    /// A character outside the code alphabet (I, O, S, V and Z are not used).
    #[error("CREDIT_CODE_CHARACTER: character {position} ({found}) is not in the code alphabet")]
    Character {
        /// 1-based position.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// The check character does not match the first 17.
    #[error("CREDIT_CODE_CHECK_CHAR_MISMATCH: check character expected {expected}, found {found}")]
    CheckChar {
        /// The character the first 17 call for.
        expected: char,
        /// The character the export carries.
        found: char,
    },
}

impl CreditCodeError {
    /// A stable code for dead letters and counts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "CREDIT_CODE_MISSING",
            Self::Length { .. } => "CREDIT_CODE_LENGTH",
            Self::Character { .. } => "CREDIT_CODE_CHARACTER",
            Self::CheckChar { .. } => "CREDIT_CODE_CHECK_CHAR_MISMATCH",
        }
    }
}

impl CreditCode {
    /// Parses a credit code as exported.
    pub fn parse(raw: &str) -> Result<Self, CreditCodeError> {
        let folded = fold_identifier(raw);
        if folded.is_empty() {
            return Err(CreditCodeError::Missing);
        }
        let chars: Vec<char> = folded.chars().collect();
        if chars.len() != 18 {
            return Err(CreditCodeError::Length { found: chars.len() });
        }
        let mut values = Vec::with_capacity(18);
        for (index, &c) in chars.iter().enumerate() {
            match ALPHABET.find(c) {
                Some(value) => values.push(value as u32),
                None => {
                    return Err(CreditCodeError::Character {
                        position: index + 1,
                        found: c,
                    });
                }
            }
        }
        let sum: u32 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
        let check = ((31 - sum % 31) % 31) as usize;
        let expected = ALPHABET.as_bytes()[check] as char;
        if chars[17] != expected {
            return Err(CreditCodeError::CheckChar {
                expected,
                found: chars[17],
            });
        }
        Ok(Self(folded))
    }

    /// The 18 characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CreditCode {
    type Error = CreditCodeError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CreditCode> for String {
    fn from(code: CreditCode) -> Self {
        code.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sample_county_codes() {
        for code in [
            "1133068152601815XX",
            "11330681830166130U",
            "113306810913909981",
        ] {
            assert_eq!(CreditCode::parse(code).unwrap().as_str(), code);
        }
        assert_eq!(
            CreditCode::parse(" 1133068152601815xx ").unwrap().as_str(),
            "1133068152601815XX"
        );
    }

    #[test]
    fn rejects_wrong_check_character_and_foreign_letters() {
        assert_eq!(
            CreditCode::parse("11330681830166130A"),
            Err(CreditCodeError::CheckChar {
                expected: 'U',
                found: 'A'
            })
        );
        assert_eq!(
            CreditCode::parse("11330681830166130I"),
            Err(CreditCodeError::Character {
                position: 18,
                found: 'I'
            })
        );
        assert_eq!(
            CreditCode::parse("1133"),
            Err(CreditCodeError::Length { found: 4 })
        );
    }
}
