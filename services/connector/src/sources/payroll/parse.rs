//! One payroll row to a `PayrollPayment` fact.

use blockhub_model::{Fact, PayrollPayment};

use crate::sources::{Rejection, RowView};

/// Parses a payroll row.
pub fn parse(row: &mut RowView<'_>) -> Result<Fact, Rejection> {
    let citizen_id = row.citizen_id("citizen_id");
    let month = row.month("month");
    let unit_code = if row.text("unit_code").is_some() {
        row.credit_code("unit_code")
    } else {
        // TODO(issue 3, unit directory): resolve unit names without codes.
        row.reject(
            "unit_code",
            "UNIT_UNRESOLVED",
            "the row names no credit code",
        );
        None
    };
    let net = row.amount("net");
    let gross = row.amount("gross");

    let fact = (|| {
        Some(Fact::PayrollPayment(PayrollPayment {
            citizen_id: citizen_id?,
            name: row.text("name").unwrap_or_default(),
            unit_code: unit_code?,
            unit_name: row.text("unit_name").unwrap_or_default(),
            month: month?,
            gross: gross?,
            net: net?,
            fund_source: row.text("fund_source").unwrap_or_default(),
        }))
    })();
    row.finish(fact)
}
