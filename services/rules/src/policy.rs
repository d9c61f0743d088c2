//! The thresholds and the statutory retirement policy, configurable.
//!
//! Defaults are the 2025 reform (DESIGN.md) and the staffing office's
//! windows: contracts ending within 30 days, retirement within 90 days, no
//! social security 2 months after hiring, a quota unused for 12 months.
//! A TOML file may override any of them:
//!
//! ```toml
//! contract_expiring_days = 30
//! retirement_approaching_days = 90
//! no_social_security_months = 2
//! quota_unused_months = 12
//!
//! [retirement.men]
//! base_years = 60
//! first_delayed_cohort = "1965-01"
//! months_per_step = 4
//! cap_months = 36
//! ```

use chrono::{Datelike, Months, NaiveDate};
use serde::Deserialize;

/// One group's retirement rule: base age, and the gradual delay by birth
/// month from the first delayed cohort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetirementRule {
    /// Age in years before any delay.
    pub base_years: u32,
    /// The first birth month whose retirement is delayed, as "YYYY-MM".
    #[serde(with = "year_month")]
    pub first_delayed_cohort: (i32, u32),
    /// Birth months per extra month of delay.
    pub months_per_step: u32,
    /// The most months of delay.
    pub cap_months: u32,
}

impl RetirementRule {
    /// Months of delay for someone born in `birth`'s month: none before
    /// the first cohort, else one more every `months_per_step` birth
    /// months, up to the cap.
    pub fn delay_months(&self, birth: NaiveDate) -> u32 {
        let (year, month) = self.first_delayed_cohort;
        let since = (birth.year() - year) * 12 + birth.month() as i32 - month as i32;
        if since < 0 {
            return 0;
        }
        let steps = since as u32 / self.months_per_step.max(1) + 1;
        steps.min(self.cap_months)
    }

    /// The statutory retirement date: the birth date plus the base age and
    /// the delay (the last day of the month where that month is shorter).
    pub fn retirement_date(&self, birth: NaiveDate) -> Option<NaiveDate> {
        let months = self.base_years * 12 + self.delay_months(birth);
        birth.checked_add_months(Months::new(months))
    }
}

/// The three groups of the statutory policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetirementPolicy {
    /// Men.
    pub men: RetirementRule,
    /// Women in 技术技能 posts.
    pub women_technical: RetirementRule,
    /// Other women.
    pub women_other: RetirementRule,
}

impl Default for RetirementPolicy {
    fn default() -> Self {
        Self {
            men: RetirementRule {
                base_years: 60,
                first_delayed_cohort: (1965, 1),
                months_per_step: 4,
                cap_months: 36,
            },
            women_technical: RetirementRule {
                base_years: 55,
                first_delayed_cohort: (1970, 1),
                months_per_step: 4,
                cap_months: 36,
            },
            women_other: RetirementRule {
                base_years: 50,
                first_delayed_cohort: (1975, 1),
                months_per_step: 2,
                cap_months: 60,
            },
        }
    }
}

impl RetirementPolicy {
    /// The rule for a person: by sex, and for women by post category.
    pub fn rule(&self, male: bool, post_category: &str) -> &RetirementRule {
        match (male, post_category) {
            (true, _) => &self.men,
            (false, "技术技能") => &self.women_technical,
            (false, _) => &self.women_other,
        }
    }
}

/// Every threshold the rules use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// CONTRACT_EXPIRING: contract end within this many days of as-of.
    pub contract_expiring_days: u32,
    /// RETIREMENT_AGE_APPROACHING: retirement within this many days.
    pub retirement_approaching_days: u32,
    /// NO_SOCIAL_SECURITY: hired at least this many months before as-of.
    pub no_social_security_months: u32,
    /// QUOTA_UNUSED and report windows: this many months back.
    pub quota_unused_months: u32,
    /// The statutory retirement ages.
    pub retirement: RetirementPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            contract_expiring_days: 30,
            retirement_approaching_days: 90,
            no_social_security_months: 2,
            quota_unused_months: 12,
            retirement: RetirementPolicy::default(),
        }
    }
}

/// Why a policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("policy file {file} could not be read")]
    Read {
        /// The file.
        file: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error("policy file {file} is invalid")]
    Parse {
        /// The file.
        file: String,
        /// The parser's error, with line and column.
        #[source]
        source: toml::de::Error,
    },
}

impl Policy {
    /// Reads a policy file; fields it leaves out keep their defaults.
    pub fn from_file(path: &std::path::Path) -> Result<Self, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            file: file.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| PolicyError::Parse { file, source })
    }
}

mod year_month {
    use serde::{Deserialize, Deserializer, de::Error};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(i32, u32), D::Error> {
        let text = String::deserialize(d)?;
        let parsed = text.split_once('-').and_then(|(y, m)| {
            let year = y.parse::<i32>().ok()?;
            let month = m.parse::<u32>().ok().filter(|m| (1..=12).contains(m))?;
            Some((year, month))
        });
        parsed.ok_or_else(|| D::Error::custom(format!("{text} is not a YYYY-MM month")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn a_man_born_1966_03_retires_at_60_years_4_months() {
        let policy = RetirementPolicy::default();
        let rule = policy.rule(true, "普通辅助");
        assert_eq!(rule.delay_months(day("1966-03-15")), 4);
        assert_eq!(
            rule.retirement_date(day("1966-03-15")),
            Some(day("2026-07-15"))
        );
        // Before the first cohort: no delay; at it: one month.
        assert_eq!(rule.delay_months(day("1964-12-31")), 0);
        assert_eq!(rule.delay_months(day("1965-01-01")), 1);
        assert_eq!(rule.delay_months(day("1965-04-30")), 1);
        assert_eq!(rule.delay_months(day("1965-05-01")), 2);
        // The cap.
        assert_eq!(rule.delay_months(day("1990-01-01")), 36);
    }

    #[test]
    fn women_retire_by_post_category() {
        let policy = RetirementPolicy::default();
        let technical = policy.rule(false, "技术技能");
        let other = policy.rule(false, "普通辅助");
        // Under each base age's first cohort: no delay.
        assert_eq!(
            technical.retirement_date(day("1969-12-10")),
            Some(day("2024-12-10"))
        );
        assert_eq!(
            other.retirement_date(day("1974-12-10")),
            Some(day("2024-12-10"))
        );
        // Other women: one month per two birth months.
        assert_eq!(other.delay_months(day("1975-03-01")), 2);
        assert_eq!(other.delay_months(day("2010-01-01")), 60);
        // The 31st plus whole months lands on the month's last day.
        assert_eq!(technical.delay_months(day("1971-08-31")), 5);
        assert_eq!(
            technical.retirement_date(day("1971-08-31")),
            Some(day("2027-01-31"))
        );
        assert_eq!(
            technical.retirement_date(day("1970-01-31")),
            Some(day("2025-02-28"))
        );
    }

    #[test]
    fn a_policy_file_overrides_only_what_it_names() {
        let policy: Policy = toml::from_str(
            "contract_expiring_days = 60\n\n[retirement.men]\nbase_years = 63\n\
             first_delayed_cohort = \"1970-01\"\nmonths_per_step = 4\ncap_months = 36\n\
             [retirement.women_technical]\nbase_years = 55\n\
             first_delayed_cohort = \"1970-01\"\nmonths_per_step = 4\ncap_months = 36\n\
             [retirement.women_other]\nbase_years = 50\n\
             first_delayed_cohort = \"1975-01\"\nmonths_per_step = 2\ncap_months = 60\n",
        )
        .unwrap();
        assert_eq!(policy.contract_expiring_days, 60);
        assert_eq!(policy.quota_unused_months, 12);
        assert_eq!(policy.retirement.men.base_years, 63);
        let bad: Result<Policy, _> = toml::from_str("contract_expiring_dayz = 1\n");
        assert!(bad.is_err());
    }
}
