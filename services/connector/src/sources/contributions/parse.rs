//! One contribution row to a `Contribution` fact.

use blockhub_model::{Contribution, Fact};

use crate::sources::{Rejection, RowView};

/// Parses a contribution row. Legacy 15-digit ID numbers are upgraded by
/// `CitizenId::parse`, so they join the same person's 18-digit rows.
pub fn parse(row: &mut RowView<'_>) -> Result<Fact, Rejection> {
    let citizen_id = row.citizen_id("citizen_id");
    let month = row.month("month");
    let unit_code = row.unit();

    let fact = (|| {
        Some(Fact::Contribution(Contribution {
            citizen_id: citizen_id?,
            name: row.text("name").unwrap_or_default(),
            unit_code: unit_code?,
            unit_name: row.text("unit_name").unwrap_or_default(),
            insurance_type: row.text("insurance_type").unwrap_or_default(),
            insured_status: row.text("insured_status").unwrap_or_default(),
            month: month?,
        }))
    })();
    row.finish(fact)
}
