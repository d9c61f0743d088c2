//! `blockhub dead-letters`: what was rejected, where and why.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::StoreArgs;
use crate::config::DataDir;

/// Flags of `dead-letters`.
#[derive(Debug, Args)]
pub struct DeadLettersArgs {
    /// Only this source system (staffing.roster, finance.payroll, merger, ...).
    #[arg(long)]
    pub source: Option<String>,
    /// How many, how printed, from which store.
    #[command(flatten)]
    pub list: ListArgs,
}

/// Flags of the commands that list what the store kept (`dead-letters`,
/// `superseded`).
#[derive(Debug, Args)]
pub struct ListArgs {
    /// At most this many, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs `dead-letters`.
pub async fn run(data: &DataDir, args: DeadLettersArgs) -> Result<ExitCode> {
    let DeadLettersArgs { source, list: args } = args;
    let store = args.store.open_existing(data).await?;
    let letters = store.dead_letters(source.as_deref(), args.limit).await?;
    for letter in &letters {
        if args.json {
            println!("{}", serde_json::to_string(letter)?);
        } else {
            println!(
                "{} {} {} row {}: {} ({})\n    {}",
                letter.observed_at.format("%Y-%m-%d %H:%M:%S UTC"),
                letter.source_system,
                letter.location,
                letter.position,
                letter.reason,
                letter.reason_code,
                letter.raw
            );
        }
    }
    if letters.is_empty() && !args.json {
        println!("No dead letters.");
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
