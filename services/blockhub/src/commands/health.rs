//! `blockhub health`: waits for the gateway, then shows every feed's sync
//! health (OK, LATE, STALLED, FAILING) with the reason and what to do.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use blockhub_gateway::proto::sync_health_client::SyncHealthClient;
use blockhub_gateway::proto::{FeedStatus, HealthReport, HealthRequest, SourceHealth};
use chrono::{DateTime, FixedOffset};
use clap::Args;
use serde_json::{Value, json};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::ClientArgs;
use crate::config::DataDir;

/// Exit code when the gateway answers but some feed is not OK and
/// --fail-unless-ok was given.
const NOT_ALL_OK: u8 = 2;

/// Flags of `health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Keep asking for up to this many seconds before giving up.
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
    /// Only this feed (such as finance.payroll).
    #[arg(long)]
    pub source: Option<String>,
    /// The report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Exit 2 unless every feed is OK (for monitoring scripts).
    #[arg(long)]
    pub fail_unless_ok: bool,
    /// Only check that the gateway serves; show no feeds.
    #[arg(long)]
    pub serving_only: bool,
    /// Print the shipped cadences (a starting point for --health-config).
    #[arg(long, exclusive = true)]
    pub default_config: bool,
    /// Gateway settings.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `health`.
pub async fn run(data: &DataDir, args: HealthArgs) -> Result<ExitCode> {
    if args.default_config {
        print!("{}", blockhub_health::config::DEFAULT_CONFIG);
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let (gateway, token) = loop {
        let answer = match super::client_settings(data, &args.client) {
            Ok((gateway, token)) => check(&gateway, &args.client)
                .await
                .map(|()| (gateway, token)),
            Err(error) => Err(format!("{error:#}")),
        };
        match answer {
            Ok(found) => break found,
            Err(reason) if Instant::now() >= deadline => {
                eprintln!("NOT SERVING: {reason}");
                return Ok(ExitCode::FAILURE);
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    if args.serving_only {
        if args.json {
            println!("{}", json!({ "serving": true, "gateway": gateway }));
        } else {
            println!("SERVING {gateway}");
        }
        return Ok(ExitCode::SUCCESS);
    }

    let channel = super::lookup::connect_as(&gateway, &args.client).await?;
    let request = HealthRequest {
        source: args.source.clone().unwrap_or_default(),
    };
    let request = super::lookup::authorised(request, token.as_deref())?;
    let report = SyncHealthClient::new(channel)
        .get(request)
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))
        .context("asking the gateway for sync health")?
        .into_inner();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report_json(&report))?);
    } else {
        print!("{}", report_text(&report, &gateway));
    }
    let all_ok = report.sources.iter().all(|s| s.status() == FeedStatus::Ok);
    Ok(if args.fail_unless_ok && !all_ok {
        ExitCode::from(NOT_ALL_OK)
    } else {
        ExitCode::SUCCESS
    })
}

async fn check(gateway: &str, client: &crate::ClientArgs) -> Result<(), String> {
    let channel = super::lookup::connect_as(gateway, client)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| status.message().to_string())?;
    match reply.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        other => Err(format!("status {other:?}")),
    }
}

fn label(status: FeedStatus) -> &'static str {
    match status {
        FeedStatus::Ok => "OK",
        FeedStatus::Late => "LATE",
        FeedStatus::Stalled => "STALLED",
        FeedStatus::Failing => "FAILING",
        FeedStatus::Unspecified => "UNKNOWN",
    }
}

/// An RFC 3339 time in the hub's zone, to the minute; "never" if empty.
fn local(text: &str, zone: &str) -> String {
    use chrono::Offset;
    let zone: FixedOffset = zone.parse().unwrap_or_else(|_| chrono::Utc.fix());
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| "never".into())
}

fn report_text(report: &HealthReport, gateway: &str) -> String {
    let zone = report.timezone.as_str();
    let mut out = format!(
        "Sync health at {} ({zone}), from {gateway}\n\n{:<32} {:<8} {:<17} {:>10} {:>12} {:>8}\n",
        local(&report.generated_at, zone),
        "FEED",
        "STATUS",
        "LAST DELIVERY",
        "EVENTS 24H",
        "REJECTED 24H",
        "WAITING"
    );
    for source in &report.sources {
        out.push_str(&format!(
            "{:<32} {:<8} {:<17} {:>10} {:>12} {:>8}\n",
            source.source,
            label(source.status()),
            local(&source.last_delivery_at, zone),
            source.events_24h,
            source.rejected_24h,
            source.waiting
        ));
        for reason in &source.reasons {
            out.push_str(&format!("    {reason}\n"));
        }
        if !source.action.is_empty() {
            out.push_str(&format!("    -> {}\n", source.action));
        }
    }
    if !report.open_alerts.is_empty() {
        let mut kinds: Vec<_> = report.open_alerts.iter().collect();
        kinds.sort();
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        out.push_str(&format!("\nOpen alerts: {}\n", kinds.join(", ")));
    }
    out
}

fn source_json(source: &SourceHealth) -> Value {
    json!({
        "source": source.source,
        "topic": source.topic,
        "status": label(source.status()),
        "reasons": source.reasons,
        "action": source.action,
        "cadence": source.cadence,
        "contact": source.contact,
        "last_delivery_at": source.last_delivery_at,
        "last_event_at": source.last_event_at,
        "next_due": source.next_due,
        "overdue_since": source.overdue_since,
        "last_run": source.last_run.as_ref().map(|run| json!({
            "location": run.location,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "rows_read": run.rows_read,
            "published": run.published,
            "unchanged": run.unchanged,
            "rejected": run.rejected,
            "error": run.error,
            "worst_file": run.worst_file,
            "worst_file_rows": run.worst_file_rows,
            "worst_file_rejected": run.worst_file_rejected,
        })),
        "events_total": source.events_total,
        "rejected_total": source.rejected_total,
        "events_24h": source.events_24h,
        "rejected_24h": source.rejected_24h,
        "waiting": source.waiting,
        "failing_since": source.failing_since,
        "last_good_run": source.last_good_run,
        "partitions": source.partitions.iter().map(|p| json!({
            "topic": p.topic,
            "partition": p.partition,
            "high_watermark": p.high_watermark,
            "next_offset": p.next_offset,
        })).collect::<Vec<_>>(),
    })
}

fn report_json(report: &HealthReport) -> Value {
    json!({
        "generated_at": report.generated_at,
        "timezone": report.timezone,
        "sources": report.sources.iter().map(source_json).collect::<Vec<_>>(),
        "open_alerts": report.open_alerts,
        "recent_dead_letters": report.recent_dead_letters.iter().map(|l| json!({
            "observed_at": l.observed_at,
            "source": l.source,
            "location": l.location,
            "position": l.position,
            "reason_code": l.reason_code,
        })).collect::<Vec<_>>(),
        "hours": report.hours.iter().map(|h| json!({
            "hour_start": h.hour_start,
            "events": h.events,
            "rejected": h.rejected,
        })).collect::<Vec<_>>(),
    })
}
