//! When each feed is expected: the sync-health configuration file.
//!
//! The shipped defaults follow the departments' usual rhythm (payroll by
//! the 10th, contributions by the 15th, the roster every working day); a
//! data centre overrides them with its own file. A broken file is refused
//! with its line and the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{Duration, FixedOffset, NaiveDate, NaiveTime, Weekday};
use serde::Deserialize;

use crate::error::HealthError;

/// The shipped configuration.
pub const DEFAULT_CONFIG: &str = include_str!("default_health.toml");

/// Share of a run's rows that may be rejected before the feed is FAILING,
/// where a source names none.
pub const DEFAULT_FAILING_PERCENT: f64 = 5.0;

/// When a feed is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    /// Never late: delivered when something happens.
    OnDemand,
    /// Every day (every working day if `working_days_only`) by `by`.
    Daily {
        /// Skip weekends and holidays, count make-up working days.
        working_days_only: bool,
        /// Local time of day the delivery is due.
        by: NaiveTime,
    },
    /// Every week on `weekday` by `by`.
    Weekly {
        /// The day.
        weekday: Weekday,
        /// Local time of day the delivery is due.
        by: NaiveTime,
    },
    /// Every month on `by_day` (the month's last day in shorter months).
    Monthly {
        /// Day of the month.
        by_day: u32,
        /// Local time of day the delivery is due.
        by: NaiveTime,
    },
}

impl Cadence {
    /// The cadence in words, for the page and the reasons.
    pub fn describe(&self) -> String {
        let at = |by: &NaiveTime| by.format("%H:%M").to_string();
        match self {
            Cadence::OnDemand => "on demand (never late)".into(),
            Cadence::Daily {
                working_days_only: true,
                by,
            } => format!("every working day by {}", at(by)),
            Cadence::Daily { by, .. } => format!("every day by {}", at(by)),
            Cadence::Weekly { weekday, by } => format!("every {weekday} by {}", at(by)),
            Cadence::Monthly { by_day, by } => {
                format!("monthly by day {by_day}, {}", at(by))
            }
        }
    }
}

/// What is expected of one source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// When deliveries are due.
    pub cadence: Cadence,
    /// How long after a missed deadline the feed counts as stalled.
    pub stalled_after: Duration,
    /// Percentage of a run's rows rejected above which it is FAILING.
    pub failing_percent: f64,
    /// Who to ask when the feed is late (default: from the source name).
    pub contact: String,
}

/// The whole sync-health configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// Local time of deadlines and of times shown.
    pub timezone: FixedOffset,
    /// Working days off.
    pub holidays: BTreeSet<NaiveDate>,
    /// Weekend days worked.
    pub workdays: BTreeSet<NaiveDate>,
    /// Waiting events with none applied for this long: STALLED.
    pub lag_stalled_after: Duration,
    /// Per source, by connector name.
    pub sources: BTreeMap<String, SourceConfig>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        // The shipped file is tested to parse (see the tests below).
        Self::from_toml(DEFAULT_CONFIG, "default_health.toml").unwrap_or_else(|_| Self {
            timezone: china_time(),
            holidays: BTreeSet::new(),
            workdays: BTreeSet::new(),
            lag_stalled_after: Duration::minutes(15),
            sources: BTreeMap::new(),
        })
    }
}

fn china_time() -> FixedOffset {
    use chrono::Offset;
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| chrono::Utc.fix())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    timezone: Option<String>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    workdays: Vec<String>,
    lag_stalled_minutes: Option<i64>,
    #[serde(default)]
    sources: BTreeMap<String, FileSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSource {
    cadence: String,
    #[serde(default)]
    working_days_only: bool,
    by: Option<String>,
    weekday: Option<String>,
    by_day: Option<u32>,
    stalled_after_days: Option<i64>,
    failing_rejected_percent: Option<f64>,
    contact: Option<String>,
}

impl HealthConfig {
    /// Reads a configuration file. Sources it does not name keep the
    /// shipped cadence; to stop expecting one, name it with `cadence =
    /// "on_demand"`.
    pub fn from_file(path: &Path) -> Result<Self, HealthError> {
        let text = std::fs::read_to_string(path).map_err(|source| HealthError::ReadConfig {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Self::from_toml(&text, &path.display().to_string())?;
        for (source, shipped) in Self::default().sources {
            config.sources.entry(source).or_insert(shipped);
        }
        Ok(config)
    }

    /// Parses a configuration; `name` says where it came from in errors.
    pub fn from_toml(text: &str, name: &str) -> Result<Self, HealthError> {
        let invalid = |reason: String| HealthError::Config {
            file: name.to_string(),
            reason,
        };
        let file: FileConfig = toml::from_str(text).map_err(|error| {
            let line = error
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| before.matches('\n').count() + 1);
            invalid(match line {
                Some(line) => format!("line {line}: {}", error.message()),
                None => error.message().to_string(),
            })
        })?;
        let timezone = match file.timezone.as_deref() {
            None => china_time(),
            Some(zone) => zone.parse::<FixedOffset>().map_err(|_| {
                let line = line_of_key(text, 0, "timezone").unwrap_or(1);
                invalid(format!(
                    "line {line}: timezone {zone:?} is not an offset like +08:00"
                ))
            })?,
        };
        let dates = |list: &[String], what: &str| -> Result<BTreeSet<NaiveDate>, HealthError> {
            list.iter()
                .map(|text| {
                    NaiveDate::parse_from_str(text, "%Y-%m-%d")
                        .map_err(|_| invalid(format!("{what} {text:?} is not a YYYY-MM-DD date")))
                })
                .collect()
        };
        let mut sources = BTreeMap::new();
        for (source, entry) in file.sources {
            let at_line = |reason: String| {
                // The line of the key the reason names, else the header's.
                let header = line_of_source(text, &source);
                let key = reason
                    .strip_prefix(&format!("source {source}: "))
                    .and_then(|rest| rest.split_whitespace().next());
                let line = header
                    .and_then(|header| key.and_then(|key| line_of_key(text, header, key)))
                    .or(header);
                match line {
                    Some(line) => invalid(format!("line {line}: {reason}")),
                    None => invalid(reason),
                }
            };
            if blockhub_model::EventKind::of_source(&source).is_none() {
                let known: Vec<&str> = blockhub_model::EventKind::ALL
                    .iter()
                    .filter_map(|kind| kind.source())
                    .collect();
                return Err(at_line(format!(
                    "source {source:?} is not one Blockhub has; sources are {}",
                    known.join(", ")
                )));
            }
            let config = source_config(&source, entry).map_err(at_line)?;
            sources.insert(source, config);
        }
        let lag_minutes = file.lag_stalled_minutes.unwrap_or(15);
        if lag_minutes < 1 {
            return Err(invalid("lag_stalled_minutes must be at least 1".into()));
        }
        Ok(Self {
            timezone,
            holidays: dates(&file.holidays, "holiday")?,
            workdays: dates(&file.workdays, "workday")?,
            lag_stalled_after: Duration::minutes(lag_minutes),
            sources,
        })
    }

    /// Whether `date` is a working day: Monday to Friday unless a holiday,
    /// or a weekend day listed as worked.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        use chrono::Datelike;
        if self.workdays.contains(&date) {
            return true;
        }
        let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        !weekend && !self.holidays.contains(&date)
    }
}

fn source_config(source: &str, entry: FileSource) -> Result<SourceConfig, String> {
    let by = match entry.by.as_deref() {
        None => NaiveTime::from_hms_opt(23, 59, 0).unwrap_or_default(),
        Some(text) => NaiveTime::parse_from_str(text, "%H:%M")
            .map_err(|_| format!("source {source}: by {text:?} is not a time like 18:00"))?,
    };
    let cadence = match entry.cadence.as_str() {
        "on_demand" => Cadence::OnDemand,
        "daily" => Cadence::Daily {
            working_days_only: entry.working_days_only,
            by,
        },
        "weekly" => {
            let text = entry
                .weekday
                .ok_or_else(|| format!("source {source}: a weekly cadence needs weekday"))?;
            let weekday = text
                .parse::<Weekday>()
                .map_err(|_| format!("source {source}: weekday {text:?} is not a day name"))?;
            Cadence::Weekly { weekday, by }
        }
        "monthly" => {
            let by_day = entry
                .by_day
                .ok_or_else(|| format!("source {source}: a monthly cadence needs by_day"))?;
            if !(1..=31).contains(&by_day) {
                return Err(format!("source {source}: by_day {by_day} is not 1 to 31"));
            }
            Cadence::Monthly { by_day, by }
        }
        other => {
            return Err(format!(
                "source {source}: cadence {other:?} is not daily, weekly, monthly or on_demand"
            ));
        }
    };
    let stalled_days = entry.stalled_after_days.unwrap_or(match cadence {
        Cadence::Monthly { .. } => 10,
        Cadence::Weekly { .. } => 7,
        _ => 3,
    });
    if stalled_days < 0 {
        return Err(format!("source {source}: stalled_after_days is negative"));
    }
    let failing_percent = entry
        .failing_rejected_percent
        .unwrap_or(DEFAULT_FAILING_PERCENT);
    if !(0.0..=100.0).contains(&failing_percent) {
        return Err(format!(
            "source {source}: failing_rejected_percent {failing_percent} is not 0 to 100"
        ));
    }
    Ok(SourceConfig {
        cadence,
        stalled_after: Duration::days(stalled_days),
        failing_percent,
        contact: entry
            .contact
            .unwrap_or_else(|| department_of(source).to_string()),
    })
}

/// The line of the table header naming `source`, counted from 1.
fn line_of_source(text: &str, source: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim();
            line.starts_with("[sources") && line.contains(source)
        })
        .map(|index| index + 1)
}

/// The line (from 1) where `key = ...` is set in the table whose header
/// is on line `after` (0: before any table).
fn line_of_key(text: &str, after: usize, key: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(after)
        .take_while(|(_, line)| !line.trim_start().starts_with('['))
        .find(|(_, line)| line.split('=').next().map(str::trim) == Some(key) && line.contains('='))
        .map(|(index, _)| index + 1)
}

/// The department that sends a source, from the source name's first part.
pub fn department_of(source: &str) -> &'static str {
    match source.split('.').next().unwrap_or_default() {
        "staffing" => "the staffing office",
        "finance" => "the finance bureau",
        "social_security" => "the social-security bureau",
        "court" => "the court",
        "veterans" => "the veterans-affairs bureau",
        _ => "the department that sends it",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_configuration_parses_and_names_every_source() {
        let config = HealthConfig::from_toml(DEFAULT_CONFIG, "default").unwrap();
        for kind in blockhub_model::EventKind::ALL {
            if let Some(source) = kind.source() {
                assert!(config.sources.contains_key(source), "{source} missing");
            }
        }
        assert_eq!(config, HealthConfig::default());
    }

    #[test]
    fn broken_file_names_the_line_and_the_reason() {
        let text = "timezone = \"+08:00\"\n\n[sources.\"finance.payroll\"]\ncadence = \"hourly\"\n";
        let error = HealthConfig::from_toml(text, "h.toml")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("h.toml: line 4") && error.contains("hourly"),
            "{error}"
        );
        let text = "[sources.\"finance.payroll\"]\ncadence = \"daily\"\nby = \"6pm\"\n";
        let error = HealthConfig::from_toml(text, "h.toml")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 3: source finance.payroll: by"),
            "{error}"
        );
        let text = "timezone = \"Asia/Shanghai\"\n";
        let error = HealthConfig::from_toml(text, "h.toml")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 1: timezone"), "{error}");
        let text = "[sources.\"finance.payrol\"]\ncadence = \"daily\"\n";
        let error = HealthConfig::from_toml(text, "h.toml")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 1") && error.contains("finance.payroll,"),
            "{error}"
        );
        let text = "[sources.\"x.y\"]\ncadence = \"daily\"\nevery = 3\n";
        let error = HealthConfig::from_toml(text, "h.toml")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 3"), "{error}");
    }

    #[test]
    fn make_up_days_work_and_holidays_do_not() {
        let text = "holidays = [\"2026-10-01\"]\nworkdays = [\"2026-10-11\"]\n";
        let config = HealthConfig::from_toml(text, "h").unwrap();
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        assert!(!config.is_working_day(day("2026-10-01"))); // Thursday, holiday
        assert!(config.is_working_day(day("2026-10-11"))); // Sunday, worked
        assert!(!config.is_working_day(day("2026-10-10"))); // Saturday
        assert!(config.is_working_day(day("2026-10-12"))); // Monday
    }
}
