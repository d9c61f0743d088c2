//! `blockhub alerts`: the staffing office's alerts, kept with their state;
//! `blockhub alerts ack ID --by NAME`: acknowledge one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use blockhub_merger::store::{AckOutcome, AlertFilter, StoredAlert};
use blockhub_rules::{AlertKind, Policy, evaluate};
use chrono::{Local, NaiveDate, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::StoreArgs;
use crate::config::DataDir;

/// Flags of `alerts`.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Acknowledge an alert instead of listing.
    #[command(subcommand)]
    pub action: Option<AlertsAction>,
    /// Evaluate as of this date (YYYY-MM-DD). Default: today, and then the
    /// kept alerts are brought up to date (new ones open, cleared ones
    /// resolve); any other date only shows what held then.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Only this kind, such as CONTRACT_EXPIRED.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only alerts concerning this unit (credit code).
    #[arg(long)]
    pub unit: Option<String>,
    /// Only this state: open, acknowledged or resolved.
    #[arg(long)]
    pub state: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Thresholds and retirement policy (TOML); default: the statutory one.
    #[arg(long, env = "BLOCKHUB_POLICY")]
    pub policy: Option<PathBuf>,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// What `alerts` can do besides listing.
#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// Acknowledge an alert: it stays acknowledged while its condition
    /// holds, and reopens if the condition clears and later returns.
    Ack {
        /// The alert's id, as `alerts` lists it.
        alert_id: String,
        /// Who acknowledges it.
        #[arg(long)]
        by: String,
        /// Why, or what is being done about it.
        #[arg(long, default_value = "")]
        note: String,
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// One alert as printed with --json.
#[derive(Debug, Serialize)]
struct AlertLine<'a> {
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    alert_id: &'a str,
    state: &'a str,
    evidence: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledged_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledged_note: Option<&'a str>,
}

fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// Runs `alerts`. Exits 0 whether or not alerts hold (their number is the
/// answer), 1 for a bad flag value or an unreadable store; `ack` exits 3
/// when the alert is unknown or resolved.
pub async fn run(data: &DataDir, args: AlertsArgs) -> Result<ExitCode> {
    if let Some(AlertsAction::Ack {
        alert_id,
        by,
        note,
        store,
    }) = &args.action
    {
        return acknowledge(data, store, alert_id, by, note).await;
    }
    if let Some(kind) = &args.kind
        && AlertKind::parse(kind).is_none()
    {
        let kinds: Vec<&str> = AlertKind::ALL.iter().map(|k| k.code()).collect();
        bail!(
            "--kind {kind} is not a kind of alert; kinds: {}",
            kinds.join(", ")
        );
    }
    if let Some(state) = &args.state
        && !["open", "acknowledged", "resolved"].contains(&state.as_str())
    {
        bail!("--state {state}: use open, acknowledged or resolved");
    }
    if let Some(unit) = &args.unit {
        blockhub_model::CreditCode::parse(unit).context("--unit")?;
    }
    let policy = match &args.policy {
        Some(path) => Policy::from_file(path)?,
        None => Policy::default(),
    };
    let today = Local::now().date_naive();
    let as_of = args.as_of.unwrap_or(today);
    let store = args.store.open_existing(data).await?;
    let facts = store.rule_facts().await?;
    let computed = evaluate(&facts, as_of, &policy);
    let filter = AlertFilter {
        kind: args.kind.clone(),
        unit_code: args.unit.clone(),
        state: args.state.clone(),
        ..AlertFilter::default()
    };
    let alerts: Vec<StoredAlert> = if as_of == today {
        let records: Vec<_> = computed.iter().map(|a| a.record()).collect();
        let sync = store
            .sync_alerts(&records, Utc::now().timestamp_millis())
            .await?;
        let changed =
            !(sync.opened.is_empty() && sync.reopened.is_empty() && sync.resolved.is_empty());
        if changed && !args.json {
            eprintln!(
                "{} new, {} reopened, {} resolved since the last evaluation.",
                sync.opened.len(),
                sync.reopened.len(),
                sync.resolved.len()
            );
        }
        store.alerts(&filter).await?
    } else {
        // Another date: what held then, with the kept state where the
        // same alert is kept; nothing is changed.
        let kept = store.alerts(&AlertFilter::default()).await?;
        computed
            .iter()
            .filter(|a| filter.kind.as_deref().is_none_or(|k| a.kind.code() == k))
            .filter(|a| filter.unit_code.is_none() || a.unit_code == filter.unit_code)
            .map(|a| {
                let record = a.record();
                kept.iter()
                    .find(|k| k.alert_id == record.alert_id)
                    .cloned()
                    .map(|mut k| {
                        k.evidence = record.evidence.clone();
                        k
                    })
                    .unwrap_or(StoredAlert {
                        alert_id: record.alert_id,
                        kind: record.kind,
                        citizen_id: record.citizen_id,
                        unit_code: record.unit_code,
                        evidence: record.evidence,
                        // Held on that date, but not kept: it does not
                        // hold today, so it has no state to acknowledge.
                        state: "not-kept".into(),
                        first_seen: 0,
                        last_seen: 0,
                        acknowledged_by: None,
                        acknowledged_note: None,
                        acknowledged_at: None,
                        resolved_at: None,
                    })
            })
            .filter(|a| filter.state.as_deref().is_none_or(|s| a.state == s))
            .collect()
    };
    store.close().await;
    print_alerts(&alerts, args.json, as_of)?;
    Ok(ExitCode::SUCCESS)
}

fn print_alerts(alerts: &[StoredAlert], json: bool, as_of: NaiveDate) -> Result<()> {
    for alert in alerts {
        if json {
            let line = AlertLine {
                kind: &alert.kind,
                id: alert.citizen_id.as_deref(),
                unit: alert.unit_code.as_deref(),
                alert_id: &alert.alert_id,
                state: &alert.state,
                evidence: &alert.evidence,
                first_seen: (alert.first_seen > 0).then(|| time_text(alert.first_seen)),
                last_seen: (alert.last_seen > 0).then(|| time_text(alert.last_seen)),
                acknowledged_by: alert.acknowledged_by.as_deref(),
                acknowledged_note: alert.acknowledged_note.as_deref(),
            };
            println!("{}", serde_json::to_string(&line)?);
        } else {
            let who = [alert.citizen_id.as_deref(), alert.unit_code.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" @ ");
            println!(
                "{} {:<34} {:<12} {who}\n    {}",
                alert.alert_id, alert.kind, alert.state, alert.evidence
            );
            if let Some(by) = &alert.acknowledged_by {
                let note = alert.acknowledged_note.as_deref().unwrap_or("");
                println!("    acknowledged by {by}: {note}");
            }
        }
    }
    if !json {
        let noun = if alerts.len() == 1 { "alert" } else { "alerts" };
        println!("{} {noun} as of {as_of}.", alerts.len());
    }
    Ok(())
}

async fn acknowledge(
    data: &DataDir,
    store: &StoreArgs,
    alert_id: &str,
    by: &str,
    note: &str,
) -> Result<ExitCode> {
    let store = store.open_existing(data).await?;
    let outcome = store
        .acknowledge_alert(alert_id, by, note, Utc::now().timestamp_millis())
        .await?;
    store.close().await;
    match outcome {
        AckOutcome::Done(alert) => {
            println!("{} {} acknowledged by {by}.", alert.alert_id, alert.kind);
            Ok(ExitCode::SUCCESS)
        }
        AckOutcome::NotFound => {
            eprintln!(
                "No kept alert has id {alert_id}. `blockhub alerts` (as of today) lists the kept \
                 ones; an alert listed only for another date (state not-kept) does not hold \
                 today and has nothing to acknowledge."
            );
            Ok(ExitCode::from(3))
        }
        AckOutcome::Resolved => {
            eprintln!("Alert {alert_id} is resolved: its condition no longer holds.");
            Ok(ExitCode::from(3))
        }
    }
}
