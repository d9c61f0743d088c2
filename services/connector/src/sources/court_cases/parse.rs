//! One enforcement-case row to an `EnforcementCase` fact.

pub use blockhub_model::canonical_case_number;
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
