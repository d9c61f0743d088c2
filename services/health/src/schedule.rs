//! Deadlines: when the delivery a cadence expects was due.
//!
//! A feed is on time while it has delivered since the deadline before the
//! latest one: an export sent any time in the month before the 10th covers
//! the 10th. The latest deadline passing without such a delivery makes it
//! late, from that deadline on.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};

use crate::config::{Cadence, HealthConfig};

/// How far back deadlines are searched: more than a month and a year.
const SEARCH_DAYS: i64 = 800;

/// The deadlines around `now`: the latest one passed, the one before it,
/// and the next one ahead. None for a feed that is never due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// The latest deadline at or before now.
    pub latest: DateTime<Utc>,
    /// The deadline before that.
    pub previous: DateTime<Utc>,
    /// The first deadline after now.
    pub next: DateTime<Utc>,
}

/// The deadlines of `cadence` around `now`.
pub fn deadlines(
    cadence: &Cadence,
    config: &HealthConfig,
    now: DateTime<Utc>,
) -> Option<Deadlines> {
    if *cadence == Cadence::OnDemand {
        return None;
    }
    let today = now.with_timezone(&config.timezone).date_naive();
    let due = |date: NaiveDate| due_on(cadence, config, date);
    let mut past = (0..SEARCH_DAYS)
        .filter_map(|back| today.checked_sub_signed(Duration::days(back)))
        .filter_map(due)
        .filter(|deadline| *deadline <= now);
    let latest = past.next()?;
    let previous = past.next()?;
    let next = (0..SEARCH_DAYS)
        .filter_map(|ahead| today.checked_add_signed(Duration::days(ahead)))
        .filter_map(due)
        .find(|deadline| *deadline > now)?;
    Some(Deadlines {
        latest,
        previous,
        next,
    })
}

/// The first deadline a delivery at `last` does not cover: the deadline
/// after the first one following it.
pub fn first_missed(
    cadence: &Cadence,
    config: &HealthConfig,
    last: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let covered = deadlines(cadence, config, last)?.next;
    Some(deadlines(cadence, config, covered)?.next)
}

/// The deadline falling on `date`, if the cadence has one that day.
fn due_on(cadence: &Cadence, config: &HealthConfig, date: NaiveDate) -> Option<DateTime<Utc>> {
    let at = |by: &NaiveTime| {
        config
            .timezone
            .from_local_datetime(&date.and_time(*by))
            .single()
            .map(|local| local.with_timezone(&Utc))
    };
    match cadence {
        Cadence::OnDemand => None,
        Cadence::Daily {
            working_days_only,
            by,
        } => (!working_days_only || config.is_working_day(date))
            .then(|| at(by))
            .flatten(),
        Cadence::Weekly { weekday, by } => (date.weekday() == *weekday).then(|| at(by)).flatten(),
        Cadence::Monthly { by_day, by } => {
            let last = last_day_of_month(date);
            (date.day() == (*by_day).min(last))
                .then(|| at(by))
                .flatten()
        }
    }
}

fn last_day_of_month(date: NaiveDate) -> u32 {
    (28..=31)
        .rev()
        .find(|day| date.with_day(*day).is_some())
        .unwrap_or(28)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_str(&format!("{text} +08:00"), "%Y-%m-%d %H:%M %z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn config() -> HealthConfig {
        HealthConfig::from_toml(
            "holidays = [\"2026-12-25\"]\nworkdays = [\"2026-12-27\"]",
            "t",
        )
        .unwrap()
    }

    #[test]
    fn monthly_deadline_is_the_day_at_the_time_and_the_month_before() {
        let cadence = Cadence::Monthly {
            by_day: 10,
            by: NaiveTime::from_hms_opt(23, 59, 0).unwrap(),
        };
        let found = deadlines(&cadence, &config(), local("2026-12-05 12:00")).unwrap();
        assert_eq!(found.latest, local("2026-11-10 23:59"));
        assert_eq!(found.previous, local("2026-10-10 23:59"));
        assert_eq!(found.next, local("2026-12-10 23:59"));
    }

    #[test]
    fn monthly_day_31_falls_on_the_last_day_of_short_months() {
        let cadence = Cadence::Monthly {
            by_day: 31,
            by: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
        };
        let found = deadlines(&cadence, &config(), local("2027-03-05 00:00")).unwrap();
        assert_eq!(found.latest, local("2027-02-28 12:00"));
        assert_eq!(found.previous, local("2027-01-31 12:00"));
    }

    #[test]
    fn working_day_deadlines_skip_weekends_and_holidays_and_keep_make_up_days() {
        let cadence = Cadence::Daily {
            working_days_only: true,
            by: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
        };
        // Monday 28 December, morning: Sunday 27th was worked, Friday 25th
        // was a holiday, so the deadlines before are the 27th and the 24th.
        let found = deadlines(&cadence, &config(), local("2026-12-28 09:00")).unwrap();
        assert_eq!(found.latest, local("2026-12-27 18:00"));
        assert_eq!(found.previous, local("2026-12-24 18:00"));
        assert_eq!(found.next, local("2026-12-28 18:00"));
    }

    #[test]
    fn weekly_and_on_demand() {
        let cadence = Cadence::Weekly {
            weekday: chrono::Weekday::Fri,
            by: NaiveTime::from_hms_opt(23, 59, 0).unwrap(),
        };
        let found = deadlines(&cadence, &config(), local("2026-12-05 10:00")).unwrap();
        assert_eq!(found.latest, local("2026-12-04 23:59"));
        assert_eq!(found.previous, local("2026-11-27 23:59"));
        assert!(deadlines(&Cadence::OnDemand, &config(), local("2026-12-05 10:00")).is_none());
    }
}
