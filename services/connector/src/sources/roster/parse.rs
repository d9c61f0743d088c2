//! One roster row to a `RosterEntry` fact.

use blockhub_model::fold::fold_text;
use blockhub_model::{Fact, PostCategory, RosterEntry, StaffStatus};

use crate::sources::{Rejection, RowView};

/// The text departments write for a contract without an end date.
const OPEN_ENDED: [&str; 3] = ["无固定期限", "无固定期", "长期"];

/// Parses a roster row.
pub fn parse(row: &mut RowView<'_>) -> Result<Fact, Rejection> {
    let citizen_id = row.citizen_id("citizen_id");
    let name = row.required_text("name");
    let unit_code = row.unit();

    let hire_date = row.date("hire_date");
    let contract_start = row.date("contract_start");
    let end_text = row
        .text("contract_end")
        .map(|t| fold_text(&t))
        .unwrap_or_default();
    let contract_open_ended = OPEN_ENDED.contains(&end_text.as_str());
    let contract_end = if contract_open_ended {
        Ok(None)
    } else {
        row.date("contract_end")
    };
    let left_on = row.date("left_on");

    let post_category_label = row.text("post_category").unwrap_or_default();
    let post_category =
        PostCategory::from_label(&row.translated("post_category", &post_category_label));
    if !row.has_column("post_category") {
        // Said once per file in the summary (warnings count by text), not
        // as a puzzle about an empty label on every row.
        row.warn(
            "POST_CATEGORY_MISSING: the export has no post category (岗位类别) column; posts \
             are kept as 未知 (if the column has another header, name it under [columns] in \
             a mapping file)"
                .to_string(),
        );
    } else if post_category_label.is_empty() {
        row.warn("POST_CATEGORY_BLANK: no post category on the row; kept as 未知".to_string());
    } else if post_category == PostCategory::Unknown {
        row.warn(format!(
            "POST_CATEGORY_UNKNOWN: post category \"{post_category_label}\" is none of 普通辅助, \
             技术技能, 执法辅助; kept as 未知 with the label as written (map it under \
             [values.post_category] in a mapping file)"
        ));
    }
    let status_label = row.text("status").unwrap_or_default();
    let status = if row.has_column("status") {
        let status = StaffStatus::from_label(&row.translated("status", &status_label));
        if status == StaffStatus::Unknown {
            row.warn(format!(
                "STATUS_UNKNOWN: status \"{status_label}\" is neither 在职 nor 减少; kept as 未知 \
                 with the label as written (map it under [values.status] in a mapping file)"
            ));
        }
        status
    } else {
        // A roster without a status column lists the current holders of
        // posts: a row is active unless it records when the person left.
        match left_on {
            Ok(Some(_)) => StaffStatus::Left,
            _ => StaffStatus::Active,
        }
    };
    let fact = (|| {
        Some(Fact::RosterEntry(RosterEntry {
            citizen_id: citizen_id?,
            name: name?,
            unit_code: unit_code?,
            unit_name: row.text("unit_name").unwrap_or_default(),
            post_category,

            post_category_label: post_category_label.clone(),
            employment_form: row.text("employment_form").unwrap_or_default(),
            hire_date: hire_date.ok()?,
            contract_start: contract_start.ok()?,
            contract_end: contract_end.ok()?,
            contract_open_ended,
            status,
            status_label: status_label.clone(),
            left_on: left_on.ok()?,
            post_name: row.text("post_name"),
        }))
    })();
    row.finish(fact)
}
