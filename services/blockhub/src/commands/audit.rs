//! `blockhub audit verify | show`: the gateway's audit log.

use std::process::ExitCode;

use anyhow::Result;
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
        AuditCommand::Verify { store } => {
            let key = data.audit_key()?;
            let store = store.open_existing(data).await?;
            let report = store.verify_audit(&key).await?;
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
                    println!(
                        "audit log BROKEN at entry {}: {} ({} entries before it verified)",
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
                    let at = chrono::DateTime::from_timestamp_millis(entry.at)
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default();
                    let detail = if entry.decision == "allowed" {
                        format!("{} record(s): {}", entry.result_count, entry.fields)
                    } else {
                        entry.reason.clone()
                    };
                    println!(
                        "#{} {at} {} {} {} purpose={:?} case={:?} operator={:?} {} — {detail}",
                        entry.seq,
                        entry.department,
                        entry.principal,
                        entry.method,
                        entry.purpose,
                        entry.case_number,
                        entry.operator,
                        entry.decision
                    );
                }
            }
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}
