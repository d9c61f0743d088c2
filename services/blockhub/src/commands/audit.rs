//! `blockhub audit verify | show`: the gateway's audit log.

use std::process::ExitCode;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use blockhub_gateway::audit_topic::read_published;
use clap::Subcommand;

use crate::StoreArgs;
use crate::config::DataDir;

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain; exit 0 when intact, 1 naming the first
    /// broken entry otherwise.
    Verify {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// The broker whose audit topic holds the published copies
        /// (default: the hub running with --data-dir); without one, only
        /// the chain is checked.
        #[command(flatten)]
        broker: crate::BrokerArgs,
    },
    /// The newest entries, oldest of them first.
    Show {
        /// How many.
        #[arg(long, default_value_t = 20)]
        last: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs `audit`.
pub async fn run(data: &DataDir, command: AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Verify { store, broker } => {
            let key = data.audit_key()?;
            let store = store.open_existing(data).await?;
            let copies = match super::kafka_settings(data, &broker) {
                Ok(settings) => {
                    let (published, unreadable) = read_published(&settings)
                        .await
                        .context("reading the audit topic")?;
                    anyhow::ensure!(
                        unreadable == 0,
                        "{unreadable} message(s) on the audit topic are not audit entries"
                    );
                    let copies: BTreeMap<i64, BTreeSet<String>> = published
                        .into_iter()
                        .map(|(seq, versions)| {
                            (seq, versions.into_iter().map(|e| e.hash).collect())
                        })
                        .collect();
                    println!(
                        "compared with {} entries published to the audit topic",
                        copies.len()
                    );
                    copies
                }
                Err(_) => {
                    println!(
                        "not compared with the audit topic (no hub running with this data \
                         directory, and no --brokers): only the chain was checked"
                    );
                    BTreeMap::new()
                }
            };
            let report = store.verify_audit_against(&key, &copies).await?;
            store.close().await;
            match report.broken {
                None => {
                    println!(
                        "audit log intact: {} entries verified, chain unbroken",
                        report.verified
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(broken) => {
                    let entries = if report.verified == 1 {
                        "entry"
                    } else {
                        "entries"
                    };
                    println!(
                        "audit log BROKEN at entry {}: {} ({} {entries} before it verified)",
                        broken.seq, broken.reason, report.verified
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
        AuditCommand::Show { last, json, store } => {
            let store = store.open_existing(data).await?;
            for entry in &store.audit_tail(last.max(0)).await? {
                if json {
                    println!("{}", serde_json::to_string(entry)?);
                } else {
                    let at = chrono::DateTime::from_timestamp_millis(entry.content.at)
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default();
                    let detail = if entry.content.decision == "allowed" {
                        format!(
                            "{} record(s): {}",
                            entry.content.result_count, entry.content.fields
                        )
                    } else {
                        entry.content.reason.clone()
                    };
                    println!(
                        "#{} {at} {} {} {} purpose={:?} case={:?} operator={:?} {} — {detail}",
                        entry.seq,
                        entry.content.department,
                        entry.content.principal,
                        entry.content.method,
                        entry.content.purpose,
                        entry.content.case_number,
                        entry.content.operator,
                        entry.content.decision
                    );
                }
            }
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}
