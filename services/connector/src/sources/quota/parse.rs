//! One quota row to a `UnitQuota` fact.

use blockhub_model::{Fact, UnitQuota};

use crate::sources::{Rejection, RowView};

/// Parses a quota row.
pub fn parse(row: &mut RowView<'_>) -> Result<Fact, Rejection> {
    let unit_code = row.credit_code("unit_code");
    let quota = row.count("quota");
    let approved_on = row.date("approved_on").ok().flatten();
    let unit_name = row.text("unit_name").unwrap_or_default();
    let unit_type = row.text("unit_type").unwrap_or_default();

    let fact = match (unit_code, quota) {
        (Some(unit_code), Some(quota)) => Some(Fact::UnitQuota(UnitQuota {
            unit_code,
            unit_name,
            unit_type,
            quota,
            approved_on,
        })),
        _ => None,
    };
    row.finish(fact)
}
