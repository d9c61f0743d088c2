//! The alert rules of the staffing office, each exactly as written in the
//! sample county's README, evaluated as of a date.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use blockhub_merger::store::{AlertRecord, RosterFact, RuleFacts};
use blockhub_model::CitizenId;
use chrono::{Datelike, Days, Months, NaiveDate};
use serde::Serialize;

use crate::policy::Policy;

/// The kinds of alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertKind {
    /// Active, contract ended before as-of.
    ContractExpired,
    /// Active, contract ends within the window.
    ContractExpiring,
    /// Active, statutory retirement date on or before as-of.
    RetirementAgeReached,
    /// Active, statutory retirement date within the window.
    RetirementAgeApproaching,
    /// Active, with a pension start on or before as-of.
    RetiredStillOnRoster,
    /// The only active post is not at the unit paying the latest
    /// contribution.
    SocialSecurityEmployerMismatch,
    /// Active for a while with no contribution at all.
    NoSocialSecurity,
    /// More than one active post.
    ActiveAtTwoUnits,
    /// Paid by a unit for a month without a post there.
    PaidNotOnRoster,
    /// More active posts than the quota.
    OverQuota,
    /// Posts left unused and nobody hired for a long time.
    QuotaUnused,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 11] = [
        Self::ContractExpired,
        Self::ContractExpiring,
        Self::RetirementAgeReached,
        Self::RetirementAgeApproaching,
        Self::RetiredStillOnRoster,
        Self::SocialSecurityEmployerMismatch,
        Self::NoSocialSecurity,
        Self::ActiveAtTwoUnits,
        Self::PaidNotOnRoster,
        Self::OverQuota,
        Self::QuotaUnused,
    ];

    /// The kind's code, as in truth/alerts.jsonl.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ContractExpired => "CONTRACT_EXPIRED",
            Self::ContractExpiring => "CONTRACT_EXPIRING",
            Self::RetirementAgeReached => "RETIREMENT_AGE_REACHED",
            Self::RetirementAgeApproaching => "RETIREMENT_AGE_APPROACHING",
            Self::RetiredStillOnRoster => "RETIRED_STILL_ON_ROSTER",
            Self::SocialSecurityEmployerMismatch => "SOCIAL_SECURITY_EMPLOYER_MISMATCH",
            Self::NoSocialSecurity => "NO_SOCIAL_SECURITY",
            Self::ActiveAtTwoUnits => "ACTIVE_AT_TWO_UNITS",
            Self::PaidNotOnRoster => "PAID_NOT_ON_ROSTER",
            Self::OverQuota => "OVER_QUOTA",
            Self::QuotaUnused => "QUOTA_UNUSED",
        }
    }

    /// The kind a code names.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

/// An alert that holds as of a date.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alert {
    /// What it is.
    pub kind: AlertKind,
    /// The person (normalised ID), where the kind concerns one.
    pub citizen_id: Option<String>,
    /// The unit's credit code, where the kind concerns one.
    pub unit_code: Option<String>,
    /// Which facts raised it, in words (no ID numbers).
    pub evidence: String,
}

impl Alert {
    /// A stable id: the same kind, person and unit always give the same
    /// id, so an alert keeps its state across evaluations.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for part in [
            self.kind.code(),
            self.citizen_id.as_deref().unwrap_or(""),
            self.unit_code.as_deref().unwrap_or(""),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        hex::encode(&hasher.finalize()[..10])
    }

    /// The alert as the store keeps it.
    pub fn record(&self) -> AlertRecord {
        AlertRecord {
            alert_id: self.id(),
            kind: self.kind.code().to_string(),
            citizen_id: self.citizen_id.clone(),
            unit_code: self.unit_code.clone(),
            evidence: self.evidence.clone(),
        }
    }
}

const ACTIVE: &str = "在职";
const LEFT: &str = "减少";

fn month_bounds(month: i64) -> Option<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::from_ymd_opt((month / 100) as i32, (month % 100) as u32, 1)?;
    let last = first.checked_add_months(Months::new(1))?.pred_opt()?;
    Some((first, last))
}

/// The days a roster row held its post: from hiring (or always, when no
/// date is given) to leaving for a 减少 row, open-ended for an active one.
/// A row whose status is neither has no known days.
fn post_days(row: &RosterFact) -> Option<(NaiveDate, NaiveDate)> {
    let start = row.hire_date.unwrap_or(NaiveDate::MIN);
    match row.status.as_str() {
        ACTIVE => Some((start, NaiveDate::MAX)),
        LEFT => row.left_on.map(|end| (start, end)),
        _ => None,
    }
}

fn person_unit(kind: AlertKind, row: &RosterFact, evidence: String) -> Alert {
    Alert {
        kind,
        citizen_id: Some(row.citizen_id.clone()),
        unit_code: Some(row.unit_code.clone()),
        evidence,
    }
}

fn month_text(month: i64) -> String {
    format!("{}-{:02}", month / 100, month % 100)
}

/// Every alert that holds as of `as_of`, in a fixed order.
pub fn evaluate(facts: &RuleFacts, as_of: NaiveDate, policy: &Policy) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let active: Vec<&RosterFact> = facts.roster.iter().filter(|r| r.status == ACTIVE).collect();

    let mut pension_start: HashMap<&str, NaiveDate> = HashMap::new();
    for (id, day) in &facts.pension_starts {
        let earliest = pension_start.entry(id.as_str()).or_insert(*day);
        *earliest = (*earliest).min(*day);
    }
    let mut contributions: HashMap<&str, BTreeMap<i64, BTreeSet<&str>>> = HashMap::new();
    for (id, unit, month) in &facts.contributions {
        contributions
            .entry(id.as_str())
            .or_default()
            .entry(*month)
            .or_default()
            .insert(unit.as_str());
    }

    let expiring_until = as_of + Days::new(u64::from(policy.contract_expiring_days));
    let approaching_until = as_of + Days::new(u64::from(policy.retirement_approaching_days));
    let hired_by = as_of.checked_sub_months(Months::new(policy.no_social_security_months));
    for row in &active {
        if !row.contract_open_ended
            && let Some(end) = row.contract_end
        {
            if end < as_of {
                let evidence = format!("staffing.roster: contract ended {end}");
                alerts.push(person_unit(AlertKind::ContractExpired, row, evidence));
            } else if end <= expiring_until {
                let evidence = format!("staffing.roster: contract ends {end}");
                alerts.push(person_unit(AlertKind::ContractExpiring, row, evidence));
            }
        }
        if let Ok(id) = CitizenId::parse(&row.citizen_id) {
            let rule = policy.retirement.rule(id.is_male(), &row.post_category);
            if let Some(date) = rule.retirement_date(id.birth_date()) {
                let evidence = format!(
                    "statutory retirement date {date} (born {}-{:02}, {} post)",
                    id.birth_date().year(),
                    id.birth_date().month(),
                    row.post_category
                );
                if date <= as_of {
                    alerts.push(person_unit(AlertKind::RetirementAgeReached, row, evidence));
                } else if date <= approaching_until {
                    alerts.push(person_unit(
                        AlertKind::RetirementAgeApproaching,
                        row,
                        evidence,
                    ));
                }
            }
        }
        let pension = pension_start.get(row.citizen_id.as_str()).copied();
        if let Some(start) = pension.filter(|start| *start <= as_of) {
            let evidence = format!("social_security.retirements: pension since {start}");
            alerts.push(person_unit(AlertKind::RetiredStillOnRoster, row, evidence));
        }
        let hired_long_enough = match (row.hire_date, hired_by) {
            (Some(hired), Some(by)) => hired <= by,
            _ => false,
        };
        if hired_long_enough
            && pension.is_none()
            && !contributions.contains_key(row.citizen_id.as_str())
        {
            let evidence = format!(
                "hired {}; no contribution in social_security.contributions",
                row.hire_date.map(|d| d.to_string()).unwrap_or_default()
            );
            alerts.push(person_unit(AlertKind::NoSocialSecurity, row, evidence));
        }
    }

    let mut active_by_person: BTreeMap<&str, Vec<&RosterFact>> = BTreeMap::new();
    for row in &active {
        active_by_person
            .entry(row.citizen_id.as_str())
            .or_default()
            .push(row);
    }
    for (id, rows) in &active_by_person {
        if rows.len() > 1 {
            let units: Vec<&str> = rows.iter().map(|r| r.unit_code.as_str()).collect();
            alerts.push(Alert {
                kind: AlertKind::ActiveAtTwoUnits,
                citizen_id: Some(id.to_string()),
                unit_code: None,
                evidence: format!("staffing.roster: active at {}", units.join(", ")),
            });
            continue;
        }
        let row = rows[0];
        if pension_start.contains_key(id) {
            continue;
        }
        let latest = contributions
            .get(id)
            .and_then(|months| months.iter().next_back());
        if let Some((month, units)) = latest
            && !units.contains(row.unit_code.as_str())
        {
            let payers: Vec<&str> = units.iter().copied().collect();
            let evidence = format!(
                "staffing.roster: active at {}; social_security.contributions {}: paid by {}",
                row.unit_code,
                month_text(*month),
                payers.join(", ")
            );
            alerts.push(person_unit(
                AlertKind::SocialSecurityEmployerMismatch,
                row,
                evidence,
            ));
        }
    }

    let mut posts: HashMap<(&str, &str), Vec<(NaiveDate, NaiveDate)>> = HashMap::new();
    for row in &facts.roster {
        if let Some(days) = post_days(row) {
            posts
                .entry((row.citizen_id.as_str(), row.unit_code.as_str()))
                .or_default()
                .push(days);
        }
    }
    let mut unrostered: BTreeMap<(&str, &str), BTreeSet<i64>> = BTreeMap::new();
    for (id, unit, month) in &facts.payments {
        let Some((first, last)) = month_bounds(*month) else {
            continue;
        };
        let held = posts
            .get(&(id.as_str(), unit.as_str()))
            .is_some_and(|spans| {
                spans
                    .iter()
                    .any(|(start, end)| *start <= last && *end >= first)
            });
        if !held {
            unrostered
                .entry((id.as_str(), unit.as_str()))
                .or_default()
                .insert(*month);
        }
    }
    for ((id, unit), months) in unrostered {
        let months: Vec<String> = months.into_iter().map(month_text).collect();
        alerts.push(Alert {
            kind: AlertKind::PaidNotOnRoster,
            citizen_id: Some(id.to_string()),
            unit_code: Some(unit.to_string()),
            evidence: format!(
                "finance.payroll paid {}; no post at the unit in staffing.roster those months",
                months.join(", ")
            ),
        });
    }

    let recent_from = as_of.checked_sub_months(Months::new(policy.quota_unused_months));
    for unit in &facts.units {
        let at_unit: Vec<&&RosterFact> = active
            .iter()
            .filter(|r| r.unit_code == unit.unit_code)
            .collect();
        let headcount = at_unit.len() as i64;
        let unit_alert = |kind, evidence| Alert {
            kind,
            citizen_id: None,
            unit_code: Some(unit.unit_code.clone()),
            evidence,
        };
        if headcount > unit.quota {
            let evidence = format!("{headcount} active posts, quota {}", unit.quota);
            alerts.push(unit_alert(AlertKind::OverQuota, evidence));
        } else if headcount < unit.quota {
            let hired_recently = at_unit.iter().any(|r| match (r.hire_date, recent_from) {
                (Some(hired), Some(from)) => hired > from && hired <= as_of,
                _ => false,
            });
            if !hired_recently {
                let evidence = format!(
                    "{headcount} active posts, quota {}; nobody active hired in the last {} \
                     months",
                    unit.quota, policy.quota_unused_months
                );
                alerts.push(unit_alert(AlertKind::QuotaUnused, evidence));
            }
        }
    }
    alerts.sort();
    alerts
}

#[cfg(test)]
mod tests {
    use blockhub_merger::store::UnitFact;

    use super::*;

    const UNIT: &str = "11330681830166130U";

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    /// A valid ID for someone born on `birth` (YYYYMMDD), male or female.
    fn id(birth: &str, male: bool) -> String {
        let sequence = if male { "001" } else { "002" };
        CitizenId::from_body(&format!("330681{birth}{sequence}"))
            .unwrap()
            .as_str()
            .to_string()
    }

    fn active(id: &str, post: &str, end: Option<&str>) -> RosterFact {
        RosterFact {
            citizen_id: id.to_string(),
            unit_code: UNIT.into(),
            post_category: post.into(),
            employment_form: "劳动合同".into(),
            status: ACTIVE.into(),
            hire_date: Some(day("2020-01-01")),
            contract_end: end.map(day),
            contract_open_ended: false,
            left_on: None,
        }
    }

    fn facts(roster: Vec<RosterFact>) -> RuleFacts {
        let ids: Vec<String> = roster.iter().map(|r| r.citizen_id.clone()).collect();
        RuleFacts {
            units: vec![UnitFact {
                unit_code: UNIT.into(),
                unit_name: "示例单位".into(),
                quota: roster.len() as i64,
            }],
            roster,
            // Everyone insured at the unit: only the rule under test fires.
            contributions: ids
                .into_iter()
                .map(|id| (id, UNIT.into(), 202611))
                .collect(),
            ..RuleFacts::default()
        }
    }

    fn kinds(facts: &RuleFacts, as_of: &str) -> Vec<AlertKind> {
        evaluate(facts, day(as_of), &Policy::default())
            .into_iter()
            .map(|a| a.kind)
            .collect()
    }

    #[test]
    fn contract_alerts_move_on_the_day_before_of_and_after_the_end() {
        let facts = facts(vec![active(
            &id("19900101", true),
            "普通辅助",
            Some("2026-12-31"),
        )]);
        assert!(
            kinds(&facts, "2026-11-30").is_empty(),
            "31 days before: nothing yet"
        );
        assert_eq!(kinds(&facts, "2026-12-01"), [AlertKind::ContractExpiring]);
        assert_eq!(kinds(&facts, "2026-12-30"), [AlertKind::ContractExpiring]);
        assert_eq!(kinds(&facts, "2026-12-31"), [AlertKind::ContractExpiring]);
        assert_eq!(kinds(&facts, "2027-01-01"), [AlertKind::ContractExpired]);
    }

    #[test]
    fn open_ended_contracts_never_expire() {
        let mut row = active(&id("19900101", true), "普通辅助", None);
        row.contract_open_ended = true;
        let facts = facts(vec![row]);
        assert!(
            kinds(&facts, "2099-01-01")
                .iter()
                .all(|k| !matches!(k, AlertKind::ContractExpired | AlertKind::ContractExpiring))
        );
    }

    #[test]
    fn a_man_born_1966_03_reaches_retirement_on_2026_07_day() {
        // 60 years and 4 months: 1966-03-15 retires on 2026-07-15.
        let facts = facts(vec![active(&id("19660315", true), "普通辅助", None)]);
        assert!(kinds(&facts, "2026-04-15").is_empty(), "91 days before");
        assert_eq!(
            kinds(&facts, "2026-04-16"),
            [AlertKind::RetirementAgeApproaching]
        );
        assert_eq!(
            kinds(&facts, "2026-07-14"),
            [AlertKind::RetirementAgeApproaching]
        );
        assert_eq!(
            kinds(&facts, "2026-07-15"),
            [AlertKind::RetirementAgeReached]
        );
        assert_eq!(
            kinds(&facts, "2026-07-16"),
            [AlertKind::RetirementAgeReached]
        );
    }

    #[test]
    fn women_retire_at_each_base_age_by_post() {
        // Born before each first delayed cohort: exactly 55 in a 技术技能
        // post, exactly 50 in any other.
        let technical = facts(vec![active(&id("19691210", false), "技术技能", None)]);
        assert_eq!(
            kinds(&technical, "2024-12-09"),
            [AlertKind::RetirementAgeApproaching]
        );
        assert_eq!(
            kinds(&technical, "2024-12-10"),
            [AlertKind::RetirementAgeReached]
        );
        let other = facts(vec![active(&id("19741210", false), "普通辅助", None)]);
        assert_eq!(
            kinds(&other, "2024-12-09"),
            [AlertKind::RetirementAgeApproaching]
        );
        assert_eq!(
            kinds(&other, "2024-12-10"),
            [AlertKind::RetirementAgeReached]
        );
        // The same woman in a 普通辅助 post retires 5 years before a
        // 技术技能 one: the post decides, not only the birth date.
        let woman = id("19711210", false);
        let in_general = facts(vec![active(&woman, "普通辅助", None)]);
        assert_eq!(
            kinds(&in_general, "2022-01-01"),
            [AlertKind::RetirementAgeReached]
        );
        let in_technical = facts(vec![active(&woman, "技术技能", None)]);
        assert!(kinds(&in_technical, "2022-01-01").is_empty());
    }

    #[test]
    fn pay_for_a_month_without_a_post_at_the_unit_is_an_alert() {
        let person = id("19900101", true);
        let mut row = active(&person, "普通辅助", None);
        row.status = LEFT.into();
        row.left_on = Some(day("2026-09-15"));
        let mut facts = facts(vec![row]);
        facts.units[0].quota = 0;
        for month in [202609, 202610] {
            facts.payments.push((person.clone(), UNIT.into(), month));
        }
        let alerts = evaluate(&facts, day("2026-11-30"), &Policy::default());
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind, AlertKind::PaidNotOnRoster);
        assert!(alerts[0].evidence.contains("2026-10"));
        assert!(
            !alerts[0].evidence.contains("2026-09"),
            "held a post in September"
        );
    }

    #[test]
    fn alert_ids_are_stable_and_carry_no_id_number() {
        let facts = facts(vec![active(&id("19660315", true), "普通辅助", None)]);
        let first = evaluate(&facts, day("2026-08-01"), &Policy::default());
        let again = evaluate(&facts, day("2026-09-01"), &Policy::default());
        assert_eq!(first[0].id(), again[0].id());
        assert!(!first[0].id().contains("19660315"));
        assert!(!first[0].evidence.contains("330681"));
    }
}
