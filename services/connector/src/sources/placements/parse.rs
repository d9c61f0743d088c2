//! One placement row to a `VeteranPlacement` fact.

use blockhub_model::{Fact, VeteranPlacement};

use crate::sources::{Rejection, RowView};

/// Parses a placement row; the unit is joined by credit code, or by name
/// through the unit directory.
pub fn parse(row: &mut RowView<'_>) -> Result<Fact, Rejection> {
    let citizen_id = row.citizen_id("citizen_id");
    let placement_type = row.required_text("placement_type");
    let unit_code = row.unit();
    let placed_on = row.date("placed_on");
    let fact = (|| {
        Some(Fact::VeteranPlacement(VeteranPlacement {
            citizen_id: citizen_id?,
            name: row.text("name").unwrap_or_default(),
            placement_type: placement_type?,
            unit_code: unit_code?,
            unit_name: row.text("unit_name").unwrap_or_default(),
            placed_on: placed_on.ok()?,
        }))
    })();
    row.finish(fact)
}
