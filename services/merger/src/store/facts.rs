//! Reads of every live fact the rules need (alerts and reports), in plain
//! values. A county's facts fit in memory many times over; a province
//! would evaluate per unit (see the rules crate).

use chrono::NaiveDate;
use sqlx::FromRow;

use super::Store;
use super::read::stored_date;
use crate::error::{MergerError, query};

/// A live roster row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterFact {
    /// The person.
    pub citizen_id: String,
    /// The unit.
    pub unit_code: String,
    /// 普通辅助, 技术技能, 执法辅助 or 未知.
    pub post_category: String,
    /// 用工形式 as exported.
    pub employment_form: String,
    /// 在职, 减少 or 未知.
    pub status: String,
    /// 入职日期.
    pub hire_date: Option<NaiveDate>,
    /// 合同终止日期.
    pub contract_end: Option<NaiveDate>,
    /// 无固定期限.
    pub contract_open_ended: bool,
    /// 减少日期.
    pub left_on: Option<NaiveDate>,
}

/// A unit and its quota.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct UnitFact {
    /// Credit code.
    pub unit_code: String,
    /// Name on the quota list.
    pub unit_name: String,
    /// Posts allowed.
    pub quota: i64,
}

/// Everything live in the store that the rules read.
#[derive(Debug, Clone, Default)]
pub struct RuleFacts {
    /// Units with their quota.
    pub units: Vec<UnitFact>,
    /// Roster rows.
    pub roster: Vec<RosterFact>,
    /// Payments: person, unit, month as YYYYMM.
    pub payments: Vec<(String, String, i64)>,
    /// Contributions: person, unit, month as YYYYMM.
    pub contributions: Vec<(String, String, i64)>,
    /// Pension starts: person, first day.
    pub pension_starts: Vec<(String, NaiveDate)>,
    /// Veteran placements: person, unit, 安置方式.
    pub placements: Vec<(String, String, String)>,
    /// Purchased services: unit, staff count.
    pub purchases: Vec<(String, i64)>,
}

#[derive(FromRow)]
struct RosterRow {
    citizen_id: String,
    unit_code: String,
    post_category: String,
    employment_form: String,
    status: String,
    hire_date: Option<String>,
    contract_end: Option<String>,
    contract_open_ended: i64,
    left_on: Option<String>,
}

impl Store {
    /// Every live fact the rules read.
    pub async fn rule_facts(&self) -> Result<RuleFacts, MergerError> {
        let units = sqlx::query_as(
            "SELECT unit_code, unit_name, quota FROM units WHERE deleted = 0 ORDER BY unit_code",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read units"))?;
        let rows: Vec<RosterRow> = sqlx::query_as(
            "SELECT citizen_id, unit_code, post_category, employment_form, status, hire_date, \
               contract_end, contract_open_ended, left_on \
             FROM roster_entries WHERE deleted = 0 ORDER BY citizen_id, unit_code",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read roster entries"))?;
        let mut roster = Vec::with_capacity(rows.len());
        for row in rows {
            roster.push(RosterFact {
                citizen_id: row.citizen_id,
                unit_code: row.unit_code,
                post_category: row.post_category,
                employment_form: row.employment_form,
                status: row.status,
                hire_date: stored_date("hire_date", row.hire_date)?,
                contract_end: stored_date("contract_end", row.contract_end)?,
                contract_open_ended: row.contract_open_ended != 0,
                left_on: stored_date("left_on", row.left_on)?,
            });
        }
        let payments = sqlx::query_as(
            "SELECT citizen_id, unit_code, pay_month FROM payroll_payments WHERE deleted = 0",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read payments"))?;
        let contributions = sqlx::query_as(
            "SELECT citizen_id, unit_code, contribution_month FROM contributions \
             WHERE deleted = 0",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read contributions"))?;
        let starts: Vec<(String, String)> =
            sqlx::query_as("SELECT citizen_id, starts_on FROM pension_starts WHERE deleted = 0")
                .fetch_all(&self.pool)
                .await
                .map_err(query("read pension starts"))?;
        let mut pension_starts = Vec::with_capacity(starts.len());
        for (id, day) in starts {
            if let Some(day) = stored_date("starts_on", Some(day))? {
                pension_starts.push((id, day));
            }
        }
        let placements = sqlx::query_as(
            "SELECT citizen_id, unit_code, placement_type FROM veteran_placements \
             WHERE deleted = 0",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read placements"))?;
        let purchases = sqlx::query_as(
            "SELECT unit_code, staff_count FROM purchased_services WHERE deleted = 0",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query("read purchased services"))?;
        Ok(RuleFacts {
            units,
            roster,
            payments,
            contributions,
            pension_starts,
            placements,
            purchases,
        })
    }
}
