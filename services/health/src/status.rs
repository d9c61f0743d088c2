//! The verdict on one source: OK, LATE, STALLED or FAILING, always with
//! the reason and what to do in words.
//!
//! Pure: it takes what the hub knows of the source and the time, so the
//! rules are tested with plain values and any clock.

use blockhub_model::SyncRun;
use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::Serialize;

use crate::config::{Cadence, HealthConfig, SourceConfig};
use crate::schedule::{Deadlines, deadlines, first_missed};

/// A source's state, in rising order of severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Delivered on time; nothing rejected beyond the limit.
    Ok,
    /// A deadline passed without a delivery.
    Late,
    /// Late for longer than the source's limit, never delivered, or its
    /// events wait unapplied.
    Stalled,
    /// Its last run stopped early or rejected too many rows.
    Failing,
}

impl Status {
    /// Every status, mildest first.
    pub const ALL: [Status; 4] = [Status::Ok, Status::Late, Status::Stalled, Status::Failing];

    /// The label shown and exported.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Late => "LATE",
            Status::Stalled => "STALLED",
            Status::Failing => "FAILING",
        }
    }
}

/// What the hub knows of one source.
#[derive(Debug, Clone, Default)]
pub struct SourceFacts {
    /// The newest connector run.
    pub last_run: Option<SyncRun>,
    /// The newest event's own time.
    pub last_event_at: Option<DateTime<Utc>>,
    /// Events in the source's topic not yet in the store.
    pub waiting: i64,
    /// Since when the store's offsets for the topic have not moved while
    /// events wait (None while the merger keeps up).
    pub waiting_since: Option<DateTime<Utc>>,
    /// The end of the first run of the current streak of failing runs.
    pub failing_since: Option<DateTime<Utc>>,
    /// How many runs in a row have failed.
    pub failing_runs: usize,
    /// The end of the newest run that did not fail.
    pub last_good_run: Option<DateTime<Utc>>,
}

impl SourceFacts {
    /// The newest delivery: a run, or an event where no run says more.
    pub fn last_delivery(&self) -> Option<DateTime<Utc>> {
        let run = self.last_run.as_ref().map(|run| run.finished_at);
        run.max(self.last_event_at)
    }
}

/// The verdict on a source at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The worst state found.
    pub status: Status,
    /// Every finding, the worst first.
    pub reasons: Vec<String>,
    /// What to do about the worst finding.
    pub action: String,
    /// The deadlines around the time judged, if the source has any.
    pub deadlines: Option<Deadlines>,
    /// The missed deadline, while the source is late.
    pub overdue_since: Option<DateTime<Utc>>,
    /// The first deadline the deliveries so far do not cover (in the
    /// past while the source is late).
    pub next_due: Option<DateTime<Utc>>,
}

/// Judges `source` at `now`.
pub fn evaluate(
    source: &str,
    facts: &SourceFacts,
    config: &SourceConfig,
    health: &HealthConfig,
    now: DateTime<Utc>,
) -> Verdict {
    let tz = health.timezone;
    let mut findings: Vec<(Status, String, String)> = Vec::new();

    let command = ingest_command(source);
    if let Some(run) = &facts.last_run {
        let which = format!(
            "its last run ({}, finished {})",
            shown(&run.location),
            local(run.finished_at, tz)
        );
        let streak = streak_text(facts, tz);
        if let Some(error) = &run.error {
            findings.push((
                Status::Failing,
                format!("{which} stopped early: {error}{streak}"),
                format!(
                    "Fix or replace the file named, then run the connector again \
                     ({command})."
                ),
            ));
        }
        if let Some(rejected) = rejected_too_many(run, config) {
            findings.push((
                Status::Failing,
                format!("{which} rejected {rejected}{streak}"),
                format!(
                    "See why in the dead letters (blockhub dead-letters --source {source}). If \
                     the rows lack what the command must add (--unit, --mapping), run it again \
                     with that; otherwise ask {} to correct the export and send it again \
                     ({command}).",
                    config.contact
                ),
            ));
        }
    }

    let found = deadlines(&config.cadence, health, now);
    let mut overdue_since = None;
    let last = facts.last_delivery();
    match (found, last) {
        (None, _) => {}
        (Some(_), None) => findings.push((
            Status::Stalled,
            format!(
                "nothing has arrived yet; it is expected {}",
                config.cadence.describe()
            ),
            format!(
                "Ask {} for the export, and check that its connector is scheduled \
                 ({command}).",
                config.contact
            ),
        )),
        (Some(due), Some(last)) if last <= due.previous => {
            // Late from the first deadline the last delivery did not cover:
            // the one after the first deadline following it.
            let missed = first_missed(&config.cadence, health, last).unwrap_or(due.latest);
            overdue_since = Some(missed);
            let overdue = now - missed;
            let (status, limit) = if overdue > config.stalled_after {
                (
                    Status::Stalled,
                    format!(
                        ", more than the {} after which it counts as stalled",
                        span(config.stalled_after)
                    ),
                )
            } else {
                (Status::Late, String::new())
            };
            findings.push((
                status,
                format!(
                    "no delivery since {} ({} ago); the one due by {} ({}) is {} overdue{limit}",
                    local(last, tz),
                    span(now - last),
                    local(missed, tz),
                    config.cadence.describe(),
                    span(overdue),
                ),
                format!(
                    "Ask {} whether the export was sent, and check the connector's schedule \
                     and log; once it runs, the status recovers by itself.",
                    config.contact
                ),
            ));
        }
        (Some(_), Some(_)) => {}
    }

    if let Some(since) = facts.waiting_since
        && facts.waiting > 0
        && now - since >= health.lag_stalled_after
    {
        findings.push((
            Status::Stalled,
            format!(
                "{} events wait in its topic and the merger has applied none of them since {} \
                 ({})",
                facts.waiting,
                local(since, tz),
                span(now - since)
            ),
            "Check the hub's log for the merger and that the store is reachable; restarting \
             the hub resumes where the store left off."
                .into(),
        ));
    }

    findings.sort_by_key(|finding| std::cmp::Reverse(finding.0));
    let status = findings.first().map_or(Status::Ok, |f| f.0);
    let action = findings.first().map(|f| f.2.clone()).unwrap_or_default();
    let mut reasons: Vec<String> = findings.into_iter().map(|f| f.1).collect();
    // A delivery on the due day before the deadline covers it already:
    // the next one due is the first it does not cover.
    let next_due = match last {
        Some(last) if found.is_some() => first_missed(&config.cadence, health, last),
        _ => found.map(|due| due.next),
    };
    if reasons.is_empty() {
        reasons.push(on_time(last, next_due, &config.cadence, tz, now));
    }
    Verdict {
        status,
        reasons,
        action,
        deadlines: found,
        overdue_since,
        next_due,
    }
}

/// Whether `run` failed: it stopped early or rejected too many rows.
pub fn run_failed(run: &SyncRun, config: &SourceConfig) -> bool {
    run.error.is_some() || rejected_too_many(run, config).is_some()
}

/// What the run rejected beyond the limit, in words: the whole run's
/// share, or that of its worst file when one file alone is over it.
fn rejected_too_many(run: &SyncRun, config: &SourceConfig) -> Option<String> {
    let limit = config.failing_percent;
    let percent = share(run.rejected, run.rows_read);
    if run.rejected > 0 && percent > limit {
        return Some(format!(
            "{} of {} rows ({percent:.1}%, more than the {limit}% allowed)",
            run.rejected, run.rows_read
        ));
    }
    let worst = run.worst_file.as_ref()?;
    let (file, rows, rejected) = (&worst.location, worst.rows_read, worst.rejected);
    let percent = share(rejected, rows);
    (rejected > 0 && percent > limit).then(|| {
        format!(
            "{rejected} of the {rows} rows of {file} ({percent:.1}%, more than the {limit}% \
             allowed)"
        )
    })
}

fn streak_text(facts: &SourceFacts, tz: FixedOffset) -> String {
    let Some(since) = facts.failing_since else {
        return String::new();
    };
    let good = match facts.last_good_run {
        Some(at) => format!("; last good run {}", local(at, tz)),
        None => "; no good run kept".into(),
    };
    let runs = match facts.failing_runs {
        1 => "1 run".to_string(),
        runs => format!("{runs} runs"),
    };
    format!("; failing since {} ({runs}){good}", local(since, tz))
}

/// The command that feeds `source` again.
fn ingest_command(source: &str) -> String {
    let name = blockhub_model::EventKind::of_source(source).and_then(|kind| kind.ingest_name());
    match name {
        Some(name) => format!("blockhub ingest {name} FILE"),
        None => "its connector".into(),
    }
}

fn on_time(
    last: Option<DateTime<Utc>>,
    next_due: Option<DateTime<Utc>>,
    cadence: &Cadence,
    tz: FixedOffset,
    now: DateTime<Utc>,
) -> String {
    let delivered = match last {
        Some(last) => format!("delivered {} ({} ago)", local(last, tz), span(now - last)),
        None => "nothing delivered yet".into(),
    };
    match next_due {
        Some(due) => format!("{delivered}; next due by {}", local(due, tz)),
        None => format!("{delivered}; {}", cadence.describe()),
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return if part > 0 { 100.0 } else { 0.0 };
    }
    part as f64 * 100.0 / whole as f64
}

fn shown(location: &str) -> String {
    if location.is_empty() {
        "no file".into()
    } else {
        location.to_string()
    }
}

/// A time in the hub's zone, to the minute.
pub fn local(at: DateTime<Utc>, tz: FixedOffset) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// A duration in words, to the largest two units.
pub fn span(duration: Duration) -> String {
    let minutes = duration.num_minutes().max(0);
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let unit = |n: i64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    match (days, hours) {
        (0, 0) => unit(minutes, "minute"),
        (0, _) if minutes == 0 => unit(hours, "hour"),
        (0, _) => format!("{} {}", unit(hours, "hour"), unit(minutes, "minute")),
        (_, 0) => unit(days, "day"),
        _ => format!("{} {}", unit(days, "day"), unit(hours, "hour")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_str(&format!("{text} +08:00"), "%Y-%m-%d %H:%M %z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn health() -> HealthConfig {
        HealthConfig::default()
    }

    fn run(finished: &str, rows: u64, rejected: u64) -> SyncRun {
        SyncRun {
            run_id: "r".into(),
            source_system: "staffing.roster".into(),
            location: "roster.xlsx".into(),
            started_at: at(finished),
            finished_at: at(finished),
            rows_read: rows,
            published: 0,
            unchanged: rows - rejected,
            rejected,
            error: None,
            worst_file: None,
            exports: Vec::new(),
        }
    }

    fn judge(source: &str, facts: &SourceFacts, now: &str) -> Verdict {
        let health = health();
        evaluate(source, facts, &health.sources[source], &health, at(now))
    }

    #[test]
    fn roster_turns_late_then_stalled_and_recovers_when_fed() {
        // Delivered Monday 7 December 2026; due every working day by 18:00.
        let mut facts = SourceFacts {
            last_run: Some(run("2026-12-07 09:00", 100, 0)),
            ..SourceFacts::default()
        };
        let verdict = judge("staffing.roster", &facts, "2026-12-08 12:00");
        assert_eq!(verdict.status, Status::Ok, "{:?}", verdict.reasons);
        assert!(verdict.reasons[0].contains("next due by 2026-12-08 18:00"));

        let verdict = judge("staffing.roster", &facts, "2026-12-08 19:00");
        assert_eq!(verdict.status, Status::Late);
        assert_eq!(verdict.overdue_since, Some(at("2026-12-08 18:00")));
        assert!(
            verdict.reasons[0].contains("no delivery since 2026-12-07 09:00"),
            "{:?}",
            verdict.reasons
        );
        assert!(verdict.action.contains("the staffing office"));

        let verdict = judge("staffing.roster", &facts, "2026-12-11 19:00");
        assert_eq!(verdict.status, Status::Stalled, "{:?}", verdict.reasons);
        assert!(verdict.reasons[0].contains("more than the 3 days"));

        // An unchanged export is a delivery too.
        facts.last_run = Some(run("2026-12-11 19:30", 100, 0));
        let verdict = judge("staffing.roster", &facts, "2026-12-11 19:31");
        assert_eq!(verdict.status, Status::Ok, "{:?}", verdict.reasons);
    }

    #[test]
    fn a_delivery_on_the_due_day_makes_the_next_month_due() {
        let facts = SourceFacts {
            last_run: Some(run("2026-12-05 09:29", 20, 0)),
            ..SourceFacts::default()
        };
        let verdict = judge("staffing.quota", &facts, "2026-12-05 10:00");
        assert_eq!(verdict.status, Status::Ok);
        assert!(
            verdict.reasons[0].ends_with("next due by 2027-01-05 23:59"),
            "{:?}",
            verdict.reasons
        );
    }

    #[test]
    fn weekend_does_not_make_the_roster_late() {
        let facts = SourceFacts {
            last_run: Some(run("2026-12-11 17:00", 10, 0)),
            ..SourceFacts::default()
        };
        let verdict = judge("staffing.roster", &facts, "2026-12-13 23:00");
        assert_eq!(verdict.status, Status::Ok, "{:?}", verdict.reasons);
    }

    #[test]
    fn rejections_over_the_limit_fail_until_a_clean_run() {
        let mut facts = SourceFacts {
            last_run: Some(run("2026-12-07 09:00", 100, 6)),
            ..SourceFacts::default()
        };
        let verdict = judge("staffing.roster", &facts, "2026-12-07 10:00");
        assert_eq!(verdict.status, Status::Failing);
        assert!(verdict.reasons[0].contains("rejected 6 of 100 rows (6.0%"));
        // Computed by the report from the runs; here as it would say.
        let facts_failing = SourceFacts {
            failing_since: facts.last_run.as_ref().map(|r| r.finished_at),
            failing_runs: 1,
            ..facts.clone()
        };
        let verdict = judge("staffing.roster", &facts_failing, "2026-12-07 10:00");
        assert!(
            verdict.reasons[0].contains("failing since 2026-12-07 09:00 (1 run)"),
            "{:?}",
            verdict.reasons
        );
        assert!(
            verdict
                .action
                .contains("blockhub dead-letters --source staffing.roster")
        );

        facts.last_run = Some(run("2026-12-07 09:30", 100, 5));
        let verdict = judge("staffing.roster", &facts, "2026-12-07 10:00");
        assert_eq!(
            verdict.status,
            Status::Ok,
            "5% is allowed: {:?}",
            verdict.reasons
        );
    }

    #[test]
    fn one_bad_file_among_good_ones_fails_the_feed() {
        let mut mixed = run("2026-12-07 09:00", 1616, 23);
        mixed.worst_file = Some(blockhub_model::FileRejections {
            location: "shifted.csv".into(),
            rows_read: 20,
            rejected: 20,
        });
        let facts = SourceFacts {
            last_run: Some(mixed),
            ..SourceFacts::default()
        };
        let verdict = judge("staffing.roster", &facts, "2026-12-07 10:00");
        assert_eq!(verdict.status, Status::Failing, "{:?}", verdict.reasons);
        assert!(verdict.reasons[0].contains("20 of the 20 rows of shifted.csv (100.0%"));
    }

    #[test]
    fn a_run_that_stopped_early_fails_and_says_why() {
        let mut failed = run("2026-12-07 09:00", 0, 0);
        failed.error = Some("roster.xlsx: not a spreadsheet".into());
        let facts = SourceFacts {
            last_run: Some(failed),
            ..SourceFacts::default()
        };
        let verdict = judge("staffing.roster", &facts, "2026-12-07 10:00");
        assert_eq!(verdict.status, Status::Failing);
        assert!(verdict.reasons[0].contains("stopped early: roster.xlsx: not a spreadsheet"));
    }

    #[test]
    fn never_delivered_is_stalled_and_on_demand_never_late() {
        let verdict = judge(
            "finance.payroll",
            &SourceFacts::default(),
            "2026-12-07 10:00",
        );
        assert_eq!(verdict.status, Status::Stalled);
        assert!(verdict.reasons[0].contains("nothing has arrived yet"));
        let verdict = judge(
            "veterans.placements",
            &SourceFacts::default(),
            "2026-12-07 10:00",
        );
        assert_eq!(verdict.status, Status::Ok);
    }

    #[test]
    fn events_waiting_unapplied_stall_the_source() {
        let facts = SourceFacts {
            last_event_at: Some(at("2026-12-07 09:00")),
            waiting: 40,
            waiting_since: Some(at("2026-12-07 09:00")),
            ..SourceFacts::default()
        };
        let verdict = judge("veterans.placements", &facts, "2026-12-07 09:10");
        assert_eq!(verdict.status, Status::Ok);
        let verdict = judge("veterans.placements", &facts, "2026-12-07 09:20");
        assert_eq!(verdict.status, Status::Stalled);
        assert!(verdict.reasons[0].starts_with("40 events wait"));
    }

    #[test]
    fn spans_read_as_words() {
        assert_eq!(span(Duration::minutes(1)), "1 minute");
        assert_eq!(span(Duration::minutes(125)), "2 hours 5 minutes");
        assert_eq!(span(Duration::hours(49)), "2 days 1 hour");
        assert_eq!(span(Duration::days(3)), "3 days");
    }
}
