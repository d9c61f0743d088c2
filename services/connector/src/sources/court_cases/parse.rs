//! One enforcement-case row to an `EnforcementCase` fact.

use blockhub_model::{EnforcementCase, Fact};

use crate::sources::{Rejection, RowView};

/// Parses an enforcement-case row.
pub fn parse(row: &mut RowView<'_>) -> Result<Fact, Rejection> {
    let case_number = row.required_text("case_number").and_then(|text| {
        canonical_case_number(&text)
            .map_err(|message| row.reject("case_number", "CASE_NUMBER_FORMAT", message))
            .ok()
    });
    let citizen_id = row.citizen_id("citizen_id");
    let amount = row.amount("amount");
    let filed_on = row.date("filed_on");
    let fact = (|| {
        Some(Fact::EnforcementCase(EnforcementCase {
            case_number: case_number?,
            citizen_id: citizen_id?,
            name: row.text("name").unwrap_or_default(),
            amount: amount?,
            filed_on: filed_on.ok()?,
            case_status: row.text("case_status").unwrap_or_default(),
        }))
    })();
    row.finish(fact)
}

/// A case number in the court's form, （2025）浙0681执1234号, with
/// full-width brackets whatever brackets the export used: folding turns
/// them half-width, and the court's own systems write them full-width.
pub fn canonical_case_number(text: &str) -> Result<String, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let canonical = compact
        .replace(['(', '〔', '['], "（")
        .replace([')', '〕', ']'], "）");
    let shape = || -> Option<()> {
        let rest = canonical.strip_prefix('（')?;
        let (year, rest) = rest.split_once('）')?;
        let year_ok = year.len() == 4 && year.chars().all(|c| c.is_ascii_digit());
        let body = rest.strip_suffix('号')?;
        let (court, number) = body.split_once('执')?;
        let number = number.trim_start_matches(|c: char| !c.is_ascii_digit());
        let number_ok = !number.is_empty() && number.chars().all(|c| c.is_ascii_digit());
        (year_ok && !court.is_empty() && number_ok).then_some(())
    };
    match shape() {
        Some(()) => Ok(canonical),
        None => Err(format!(
            "{text} is not a case number of the form （2025）浙0681执1234号"
        )),
    }
}
