//! Per-unit and city-wide reports: quota, headcount, posts by category,
//! hires and departures in the last 12 months, veteran placements and
//! purchased-service staff.

use std::collections::BTreeMap;

use blockhub_merger::store::RuleFacts;
use chrono::{Months, NaiveDate};
use serde::Serialize;

use crate::policy::Policy;

/// The post categories every report lists, even at zero.
pub const POST_CATEGORIES: [&str; 3] = ["普通辅助", "技术技能", "执法辅助"];

/// One unit's figures as of a date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnitReport {
    /// The unit's name on the quota list.
    pub name: String,
    /// Posts allowed.
    pub quota: i64,
    /// Active roster rows.
    pub headcount: i64,
    /// Active rows per post category (未知 only when some are).
    pub by_post: BTreeMap<String, i64>,
    /// Rows hired in the window, active or not.
    pub hired_last_12m: i64,
    /// Rows that left (减少) in the window.
    pub left_last_12m: i64,
    /// Placements with 安置方式 安排工作.
    pub veteran_placements: i64,
    /// 服务人数 summed over the unit's purchased-service contracts.
    pub purchased_service_staff: i64,
}

/// Reports for every unit on the quota list (and any unit the roster names
/// that the quota list lacks), keyed by credit code.
pub fn unit_reports(
    facts: &RuleFacts,
    as_of: NaiveDate,
    policy: &Policy,
) -> BTreeMap<String, UnitReport> {
    let mut reports: BTreeMap<String, UnitReport> = BTreeMap::new();
    let blank = || UnitReport {
        by_post: POST_CATEGORIES.iter().map(|c| (c.to_string(), 0)).collect(),
        ..UnitReport::default()
    };
    for unit in &facts.units {
        let report = reports.entry(unit.unit_code.clone()).or_insert_with(blank);
        report.name = unit.unit_name.clone();
        report.quota = unit.quota;
    }
    let from = as_of.checked_sub_months(Months::new(policy.quota_unused_months));
    let in_window = |day: Option<NaiveDate>| match (day, from) {
        (Some(day), Some(from)) => day > from && day <= as_of,
        _ => false,
    };
    for row in &facts.roster {
        let report = reports.entry(row.unit_code.clone()).or_insert_with(blank);
        if row.status == "在职" {
            report.headcount += 1;
            *report.by_post.entry(row.post_category.clone()).or_default() += 1;
        }
        if in_window(row.hire_date) {
            report.hired_last_12m += 1;
        }
        if row.status == "减少" && in_window(row.left_on) {
            report.left_last_12m += 1;
        }
    }
    for (_, unit, placement_type) in &facts.placements {
        if placement_type == "安排工作" {
            reports
                .entry(unit.clone())
                .or_insert_with(blank)
                .veteran_placements += 1;
        }
    }
    for (unit, staff) in &facts.purchases {
        reports
            .entry(unit.clone())
            .or_insert_with(blank)
            .purchased_service_staff += staff;
    }
    reports
}

/// The city-wide sums of every unit's figures.
pub fn city_total(reports: &BTreeMap<String, UnitReport>) -> UnitReport {
    let mut total = UnitReport {
        name: "全市合计".into(),
        ..UnitReport::default()
    };
    for report in reports.values() {
        total.quota += report.quota;
        total.headcount += report.headcount;
        for (category, count) in &report.by_post {
            *total.by_post.entry(category.clone()).or_default() += count;
        }
        total.hired_last_12m += report.hired_last_12m;
        total.left_last_12m += report.left_last_12m;
        total.veteran_placements += report.veteran_placements;
        total.purchased_service_staff += report.purchased_service_staff;
    }
    total
}
