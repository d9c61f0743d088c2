//! The report as Prometheus metrics (text format 0.0.4).
//!
//! The figures are those of the status page and SyncHealth.Get, from the
//! same report. Labels are sources, statuses, topics, partitions and alert
//! kinds: a few values each, never a person or an event.

use std::fmt::Write;

use crate::report::HealthReport;
use crate::status::Status;

/// Renders `report`.
pub fn render(report: &HealthReport) -> String {
    let mut out = String::new();

    family(
        &mut out,
        "blockhub_source_status",
        "gauge",
        "1 for the source's current status (OK, LATE, STALLED, FAILING), 0 for the others.",
    );
    for source in &report.sources {
        for status in Status::ALL {
            let value = u8::from(source.status == status);
            let _ = writeln!(
                out,
                "blockhub_source_status{{source=\"{}\",status=\"{}\"}} {value}",
                label(&source.source),
                status.label()
            );
        }
    }
    let per_source: [(&str, &str, &str, PerSource); 7] = [
        (
            "blockhub_source_last_delivery_timestamp_seconds",
            "gauge",
            "Time of the newest delivery (a connector run or an event); 0 if none.",
            |_, s| seconds(s.last_delivery_at),
        ),
        (
            "blockhub_source_last_event_timestamp_seconds",
            "gauge",
            "Own time of the newest event applied; 0 if none.",
            |_, s| seconds(s.last_event_at),
        ),
        (
            "blockhub_source_events_total",
            "counter",
            "Events applied to the store.",
            |_, s| s.events_total as f64,
        ),
        (
            "blockhub_source_rejections_total",
            "counter",
            "Rows and events rejected; a row rejected again by a re-ingest counts again \
             (blockhub dead-letters lists each distinct rejection once).",
            |_, s| s.rejected_total as f64,
        ),
        (
            "blockhub_source_last_run_rows",
            "gauge",
            "Data rows read by the newest connector run.",
            |_, s| s.last_run.as_ref().map_or(0.0, |r| r.rows_read as f64),
        ),
        (
            "blockhub_source_last_run_rejected",
            "gauge",
            "Rows rejected by the newest connector run.",
            |_, s| s.last_run.as_ref().map_or(0.0, |r| r.rejected as f64),
        ),
        (
            "blockhub_source_overdue_seconds",
            "gauge",
            "How long the missed deadline has passed; 0 while on time.",
            |report, s| {
                s.overdue_since.map_or(0.0, |since| {
                    (report.generated_at - since).num_milliseconds() as f64 / 1000.0
                })
            },
        ),
    ];
    for (name, kind, help, value) in per_source {
        family(&mut out, name, kind, help);
        for source in &report.sources {
            let value = value(report, source);
            let _ = writeln!(
                out,
                "{name}{{source=\"{}\"}} {value}",
                label(&source.source)
            );
        }
    }

    family(
        &mut out,
        "blockhub_consumer_lag",
        "gauge",
        "Events in a partition not yet in the store.",
    );
    for source in &report.sources {
        for partition in &source.partitions {
            let _ = writeln!(
                out,
                "blockhub_consumer_lag{{topic=\"{}\",partition=\"{}\"}} {}",
                label(&partition.topic),
                partition.partition,
                partition.lag()
            );
        }
    }

    family(
        &mut out,
        "blockhub_open_alerts",
        "gauge",
        "Open alerts by kind.",
    );
    for (kind, count) in &report.open_alerts {
        let _ = writeln!(
            out,
            "blockhub_open_alerts{{kind=\"{}\"}} {count}",
            label(kind)
        );
    }
    out
}

/// One figure of one source.
type PerSource = fn(&HealthReport, &crate::SourceHealth) -> f64;

fn seconds(at: Option<chrono::DateTime<chrono::Utc>>) -> f64 {
    at.map_or(0.0, |at| at.timestamp_millis() as f64 / 1000.0)
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with the text format's escapes.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
