//! Amounts of money as exported ("3,250.00", "￥4,066.82").
//!
//! Money is a decimal with at most two places; an amount with more places is
//! rejected rather than rounded, so that no export is silently changed.

use rust_decimal::Decimal;

use crate::fold::fold_text;

/// Why a value is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The cell was empty.
    #[error("AMOUNT_MISSING: no amount given")]
    Missing,
    /// Not a decimal number.
    #[error("AMOUNT_FORMAT: {raw} is not an amount")]
    Format {
        /// The value as exported.
        raw: String,
    },
    /// Twelve or more digits before the decimal point: beyond what the
    /// event schema carries (decimal with 14 digits, 2 of them places).
    #[error("AMOUNT_RANGE: {raw} is too large for an amount")]
    Range {
        /// The value as exported.
        raw: String,
    },
    /// More than two decimal places.
    #[error("AMOUNT_PRECISION: {raw} has more than two decimal places")]
    Precision {
        /// The value as exported.
        raw: String,
    },
}

impl MoneyError {
    /// A stable code for dead letters and counts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "AMOUNT_MISSING",
            Self::Format { .. } => "AMOUNT_FORMAT",
            Self::Precision { .. } => "AMOUNT_PRECISION",
            Self::Range { .. } => "AMOUNT_RANGE",
        }
    }
}

/// Parses an amount, accepting thousands separators and a currency sign.
pub fn parse_amount(raw: &str) -> Result<Decimal, MoneyError> {
    let text = fold_text(raw);
    let text = text.trim_start_matches(['¥', '￥']).replace('，', ",");
    if text.contains(',') && !grouped_by_thousands(&text) {
        return Err(MoneyError::Format {
            raw: raw.to_string(),
        });
    }
    let cleaned: String = text
        .chars()
        .filter(|c| *c != ',' && !c.is_whitespace())
        .collect();
    if cleaned.is_empty() {
        return Err(MoneyError::Missing);
    }
    let valid_shape = cleaned
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+')));
    if !valid_shape {
        return Err(MoneyError::Format {
            raw: raw.to_string(),
        });
    }
    let amount: Decimal = cleaned.parse().map_err(|_| MoneyError::Format {
        raw: raw.to_string(),
    })?;
    if amount.scale() > 2 {
        return Err(MoneyError::Precision {
            raw: raw.to_string(),
        });
    }
    if amount.abs() >= Decimal::from(1_000_000_000_000i64) {
        return Err(MoneyError::Range {
            raw: raw.to_string(),
        });
    }
    let mut amount = amount;
    amount.rescale(2);
    Ok(amount)
}

/// Whether thousands separators stand every three digits of the integer
/// part ("3,250.00" yes, "1,2,3" no), so a separator is never mistaken
/// for a typo that changes the amount.
fn grouped_by_thousands(text: &str) -> bool {
    let integer = text.split('.').next().unwrap_or_default();
    let integer = integer.trim_start_matches(['-', '+']);
    let mut groups = integer.split(',');
    let first = groups.next().unwrap_or_default();
    let digits = |g: &str| g.chars().all(|c| c.is_ascii_digit());
    (1..=3).contains(&first.len())
        && digits(first)
        && groups.all(|group| group.len() == 3 && digits(group))
}

/// Converts an amount parsed from an Excel number cell.
pub fn amount_from_number(value: f64) -> Result<Decimal, MoneyError> {
    // Excel stores 4066.82 as the nearest binary fraction; two places is the
    // precision of the cell as typed, so rounding here restores it exactly.
    let raw = format!("{value:.2}");
    if (raw.parse::<f64>().unwrap_or(f64::NAN) - value).abs() > 1e-6 {
        return Err(MoneyError::Precision {
            raw: value.to_string(),
        });
    }
    parse_amount(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_separators_and_currency_signs() {
        assert_eq!(parse_amount("3,250.00").unwrap().to_string(), "3250.00");
        assert_eq!(parse_amount("￥4,066.8").unwrap().to_string(), "4066.80");
        assert_eq!(parse_amount(" 12 ").unwrap().to_string(), "12.00");
        assert_eq!(parse_amount("-15.50").unwrap().to_string(), "-15.50");
        assert_eq!(amount_from_number(4066.82).unwrap().to_string(), "4066.82");
    }

    #[test]
    fn rejects_text_and_extra_places() {
        assert_eq!(parse_amount("").unwrap_err().code(), "AMOUNT_MISSING");
        assert_eq!(parse_amount("三千").unwrap_err().code(), "AMOUNT_FORMAT");
        assert_eq!(parse_amount("1.2.3").unwrap_err().code(), "AMOUNT_FORMAT");
        assert_eq!(parse_amount("1,2,3").unwrap_err().code(), "AMOUNT_FORMAT");
        assert_eq!(
            parse_amount("12,34.00").unwrap_err().code(),
            "AMOUNT_FORMAT"
        );
        assert_eq!(
            parse_amount("1,234,567.8").unwrap().to_string(),
            "1234567.80"
        );
        assert_eq!(parse_amount("-1,234").unwrap().to_string(), "-1234.00");
        assert_eq!(
            parse_amount("10.005").unwrap_err().code(),
            "AMOUNT_PRECISION"
        );
        assert_eq!(
            amount_from_number(10.005).unwrap_err().code(),
            "AMOUNT_PRECISION"
        );
        assert_eq!(
            parse_amount("1000000000000").unwrap_err().code(),
            "AMOUNT_RANGE"
        );
        assert_eq!(
            parse_amount("999999999999.99").unwrap().to_string(),
            "999999999999.99"
        );
    }
}
