//! One pension-start row to a `PensionStart` fact.

use blockhub_model::{Fact, PensionStart};

use crate::sources::{Rejection, RowView};

/// Parses a pension-start row; the start date is required, since a pension
/// start without one says nothing a rule could use.
pub fn parse(row: &mut RowView<'_>) -> Result<Fact, Rejection> {
    let citizen_id = row.citizen_id("citizen_id");
    let starts_on = row.required_date("starts_on");
    let fact = (|| {
        Some(Fact::PensionStart(PensionStart {
            citizen_id: citizen_id?,
            name: row.text("name").unwrap_or_default(),
            benefit_type: row.text("benefit_type").unwrap_or_default(),
            starts_on: starts_on?,
        }))
    })();
    row.finish(fact)
}
