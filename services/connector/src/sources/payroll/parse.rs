//! One payroll row to a `PayrollPayment` fact.

use blockhub_model::{Fact, PayrollPayment};

use crate::sources::{Rejection, RowView};

/// Parses a payroll row.
pub fn parse(row: &mut RowView<'_>) -> Result<Fact, Rejection> {
    let citizen_id = row.citizen_id("citizen_id");
    let month = row.month("month");
    let unit_code = row.unit();
    // Some exports carry only 应发 or only 实发; a row needs at least one.
    let gross = row.text("gross").and_then(|_| row.amount("gross"));
    let net = row.text("net").and_then(|_| row.amount("net"));
    let has_amount = row.text("gross").is_some() || row.text("net").is_some();
    if !has_amount {
        row.reject(
            "net",
            "AMOUNT_MISSING",
            "neither gross (应发) nor net (实发) pay given",
        );
    }

    let fact = (|| {
        has_amount.then_some(())?;
        Some(Fact::PayrollPayment(PayrollPayment {
            citizen_id: citizen_id?,
            name: row.text("name").unwrap_or_default(),
            unit_code: unit_code?,
            unit_name: row.text("unit_name").unwrap_or_default(),
            month: month?,
            gross,
            net,
            fund_source: row.text("fund_source").unwrap_or_default(),
        }))
    })();
    row.finish(fact)
}
