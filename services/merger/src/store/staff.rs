//! Queries for the staffing office: a unit's staff, counts per unit and
//! post category, and one person's history across departments.

use serde::Serialize;
use sqlx::FromRow;

use super::Store;
use crate::error::{MergerError, query};

/// One roster row as a staff list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct StaffRow {
    /// The person (normalised ID).
    pub citizen_id: String,
    /// The name on the roster.
    pub name: String,
    /// The unit.
    pub unit_code: String,
    /// 普通辅助, 技术技能, 执法辅助 or 未知.
    pub post_category: String,
    /// 用工形式 as exported.
    pub employment_form: String,
    /// 在职, 减少 or 未知.
    pub status: String,
    /// 入职日期.
    pub hire_date: Option<String>,
    /// 合同终止日期.
    pub contract_end: Option<String>,
}

/// Which staff to list.
#[derive(Debug, Clone, Default)]
pub struct StaffFilter {
    /// The unit (credit code); required.
    pub unit_code: String,
    /// Only this post category.
    pub post_category: Option<String>,
    /// Only this employment form.
    pub employment_form: Option<String>,
    /// Only this status (在职, 减少).
    pub status: Option<String>,
    /// Skip this many.
    pub offset: i64,
    /// At most this many.
    pub limit: i64,
}

/// Active posts of one unit in one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct PostCount {
    /// The unit.
    pub unit_code: String,
    /// The unit's name on the quota list (empty when it is not there).
    pub unit_name: String,
    /// The category.
    pub post_category: String,
    /// Active roster rows.
    pub active: i64,
}

/// One fact of a person's history, from any department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct HistoryItem {
    /// Which source stated it, such as staffing.roster.
    pub source_system: String,
    /// What kind of fact: roster, payroll, contribution, pension, placement.
    pub fact: String,
    /// The unit concerned, if any.
    pub unit_code: String,
    /// When it applies: a date or a YYYYMM month, as text.
    pub when_text: String,
    /// What it says, in a few words.
    pub detail: String,
    /// Whether the source later deleted it (1) or not (0).
    #[serde(serialize_with = "as_bool")]
    pub deleted: i64,
    /// An amount in cents (net pay), where the fact has one.
    #[serde(skip)]
    pub amount_cents: Option<i64>,
}

fn as_bool<S: serde::Serializer>(flag: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(*flag != 0)
}

impl Store {
    /// A unit's staff, by status, name and ID.
    pub async fn staff(&self, filter: &StaffFilter) -> Result<Vec<StaffRow>, MergerError> {
        sqlx::query_as(
            "SELECT citizen_id, name, unit_code, post_category, employment_form, status, \
               hire_date, contract_end \
             FROM roster_entries \
             WHERE deleted = 0 AND unit_code = $1 \
               AND ($2 = '' OR post_category = $2) \
               AND ($3 = '' OR employment_form = $3) \
               AND ($4 = '' OR status = $4) \
             ORDER BY status, name, citizen_id LIMIT $5 OFFSET $6",
        )
        .bind(&filter.unit_code)
        .bind(filter.post_category.clone().unwrap_or_default())
        .bind(filter.employment_form.clone().unwrap_or_default())
        .bind(filter.status.clone().unwrap_or_default())
        .bind(if filter.limit > 0 {
            filter.limit
        } else {
            i64::MAX
        })
        .bind(filter.offset.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(query("read staff"))
    }

    /// Active posts per unit and post category across the city.
    pub async fn post_counts(&self) -> Result<Vec<PostCount>, MergerError> {
        sqlx::query_as(
            "SELECT r.unit_code, COALESCE(u.unit_name, '') AS unit_name, r.post_category, \
               COUNT(*) AS active \
             FROM roster_entries r LEFT JOIN units u ON u.unit_code = r.unit_code \
             WHERE r.deleted = 0 AND r.status = '在职' \
             GROUP BY r.unit_code, u.unit_name, r.post_category \
             ORDER BY r.unit_code, r.post_category",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("count posts"))
    }

    /// Everything the departments said about one person, oldest first:
    /// roster rows, payments, contributions, pension starts, placements.
    /// Court cases are not part of it: they are the court's, shared only
    /// for a named case.
    pub async fn history_of(&self, citizen_id: &str) -> Result<Vec<HistoryItem>, MergerError> {
        sqlx::query_as(
            "SELECT source_system, 'roster' AS fact, unit_code, \
               COALESCE(hire_date, '') AS when_text, \
               status || ' ' || post_category || ' ' || employment_form || \
                 COALESCE(' 合同至 ' || contract_end, '') || \
                 COALESCE(' 减少 ' || left_on, '') AS detail, deleted, \
               CAST(NULL AS BIGINT) AS amount_cents \
             FROM roster_entries WHERE citizen_id = $1 \
             UNION ALL \
             SELECT source_system, 'payroll', unit_code, CAST(pay_month AS TEXT), \
               '实发', deleted, net_cents \
             FROM payroll_payments WHERE citizen_id = $1 \
             UNION ALL \
             SELECT source_system, 'contribution', unit_code, \
               CAST(contribution_month AS TEXT), insurance_type, deleted, \
               CAST(NULL AS BIGINT) \
             FROM contributions WHERE citizen_id = $1 \
             UNION ALL \
             SELECT source_system, 'pension', '', starts_on, benefit_type, deleted, \
               CAST(NULL AS BIGINT) \
             FROM pension_starts WHERE citizen_id = $1 \
             UNION ALL \
             SELECT source_system, 'placement', unit_code, COALESCE(placed_on, ''), \
               placement_type, deleted, CAST(NULL AS BIGINT) \
             FROM veteran_placements WHERE citizen_id = $1 \
             ORDER BY 4, 2, 3",
        )
        .bind(citizen_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query("read a person's history"))
        .map(|items: Vec<HistoryItem>| {
            items
                .into_iter()
                .map(|mut item| {
                    if let Some(cents) = item.amount_cents {
                        let sign = if cents < 0 { "-" } else { "" };
                        let cents = cents.unsigned_abs();
                        item.detail =
                            format!("{} {sign}{}.{:02}", item.detail, cents / 100, cents % 100);
                    }
                    item
                })
                .collect()
        })
    }
}
