//! One purchased-service row to a `PurchasedService` fact.

use blockhub_model::{Fact, PurchasedService, parse_date};
use chrono::NaiveDate;

use crate::sources::{Rejection, RowView};

/// Parses a purchased-service row. The service period comes either as one
/// range (2026-01-01至2026-12-31) or as two date columns.
pub fn parse(row: &mut RowView<'_>) -> Result<Fact, Rejection> {
    let project_name = row.required_text("project_name");
    let unit_code = row.unit();
    let staff_count = row.count("staff_count");
    let contract_amount = row.optional_amount("contract_amount");
    let period = match row.text("period") {
        Some(text) => parse_period(&text)
            .map_err(|message| row.reject("period", "PERIOD_FORMAT", message))
            .ok(),
        None => match (row.date("period_start"), row.date("period_end")) {
            (Ok(start), Ok(end)) => Some((start, end)),
            _ => None,
        },
    };
    let fact = (|| {
        let (period_start, period_end) = period?;
        Some(Fact::PurchasedService(PurchasedService {
            project_name: project_name?,
            unit_code: unit_code?,
            unit_name: row.text("unit_name").unwrap_or_default(),
            provider: row.text("provider").unwrap_or_default(),
            staff_count: staff_count?,
            contract_amount: contract_amount.ok()?,
            period_start,
            period_end,
        }))
    })();
    row.finish(fact)
}

type Period = (Option<NaiveDate>, Option<NaiveDate>);

/// "2026-01-01至2026-12-31", also with ~ or — between; both ends required,
/// and the end not before the start.
pub fn parse_period(text: &str) -> Result<Period, String> {
    let separators = ['至', '~', '—', '～'];
    let Some((start, end)) = text.split_once(separators) else {
        return Err(format!(
            "{text} is not a period such as 2026-01-01至2026-12-31"
        ));
    };
    let start = parse_date(start.trim()).map_err(|e| format!("period start: {e}"))?;
    let end = parse_date(end.trim()).map_err(|e| format!("period end: {e}"))?;
    if end < start {
        return Err(format!("period {text} ends before it starts"));
    }
    Ok((Some(start), Some(end)))
}
