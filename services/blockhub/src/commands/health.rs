//! `blockhub health`: waits for the gateway, then shows every feed's sync
//! health (OK, LATE, STALLED, FAILING) with the reason and what to do.
//! `--json` prints the report in the shape of the status page's
//! `/report.json`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use blockhub_gateway::proto::HealthRequest;
use blockhub_gateway::proto::sync_health_client::SyncHealthClient;
use blockhub_health::{HealthReport, Status};
use clap::Args;
use serde_json::json;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::ClientArgs;
use crate::config::DataDir;

/// Exit code when the gateway answers but some feed is not OK and
/// --fail-unless-ok was given; 2 stays the command line's own (a usage
/// error), so that a script can tell the two apart.
const NOT_ALL_OK: u8 = 3;

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
    /// Exit 3 unless every feed is OK (for monitoring scripts).
    #[arg(long)]
    pub fail_unless_ok: bool,
    /// Only check that the gateway serves; show no feeds.
    #[arg(long, conflicts_with_all = ["source", "fail_unless_ok"])]
    pub serving_only: bool,
    /// Print the shipped cadences (a starting point for --health-config)
    /// and exit; the hub is not asked.
    #[arg(long)]
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
            Err(error) => Err(blockhub_model::error_chain(error.as_ref())),
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
    // One report type for the table and the JSON, the one the status page
    // is made from.
    let report = blockhub_gateway::sync_health::report_from_message(&report);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report_text(&report, &gateway));
    }
    let all_ok = report.sources.iter().all(|s| s.status == Status::Ok);
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

fn report_text(report: &HealthReport, gateway: &str) -> String {
    let mut out = format!(
        "Sync health at {} ({}), from {gateway}\n\n{:<32} {:<8} {:<17} {:>10} {:>12} {:>8}\n",
        report.local(report.generated_at),
        report.timezone,
        "FEED",
        "STATUS",
        "LAST DELIVERY",
        "EVENTS 24H",
        "REJECTED 24H",
        "WAITING"
    );
    for source in &report.sources {
        let last = source
            .last_delivery_at
            .map_or_else(|| "never".to_string(), |at| report.local(at));
        out.push_str(&format!(
            "{:<32} {:<8} {:<17} {:>10} {:>12} {:>8}\n",
            source.source,
            source.status.label(),
            last,
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
        let kinds: Vec<String> = report
            .open_alerts
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        out.push_str(&format!("\nOpen alerts: {}\n", kinds.join(", ")));
    }
    out
}
