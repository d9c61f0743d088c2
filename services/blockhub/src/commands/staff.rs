//! `blockhub staff`: a unit's staff, counts per unit and post category,
//! and one person's history across departments, read from the store.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use blockhub_merger::store::StaffFilter;
use blockhub_model::CitizenId;
use clap::{Args, Subcommand};

use crate::StoreArgs;
use crate::config::DataDir;

/// Flags of `staff`.
#[derive(Debug, Args)]
pub struct StaffArgs {
    /// What to show.
    #[command(subcommand)]
    pub query: StaffQuery,
    /// One JSON object per line.
    #[arg(long, global = true)]
    pub json: bool,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The staff queries.
#[derive(Debug, Subcommand)]
pub enum StaffQuery {
    /// A unit's staff, filtered by post category, employment form, status.
    List {
        /// The unit's credit code.
        #[arg(long)]
        unit: String,
        /// 普通辅助, 技术技能, 执法辅助 (or 未知).
        #[arg(long)]
        post: Option<String>,
        /// 用工形式 as exported, such as 劳务派遣.
        #[arg(long)]
        form: Option<String>,
        /// 在职 or 减少.
        #[arg(long)]
        status: Option<String>,
        /// Rows per page (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
        /// Page number, from 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
        page: i64,
    },
    /// Active posts per unit and post category across the city.
    Counts,
    /// One person's facts from every department, oldest first.
    History {
        /// The citizen ID in any exported form.
        citizen_id: String,
    },
}

/// Roster statuses as stored.
const STATUSES: [&str; 3] = ["在职", "减少", "未知"];

/// A post category as stored, from a label with or without a trailing 类.
fn post_category(label: &str) -> Result<String> {
    let category = blockhub_model::PostCategory::from_label(label);
    if category == blockhub_model::PostCategory::Unknown && label.trim_end_matches('类') != "未知"
    {
        bail!("--post {label}: use 普通辅助, 技术技能, 执法辅助 or 未知");
    }
    Ok(category.label().to_string())
}

/// Runs `staff`. Exits 0, or 3 when nothing matched.
pub async fn run(data: &DataDir, args: StaffArgs) -> Result<ExitCode> {
    let store = args.store.open_existing(data).await?;
    let found = match &args.query {
        StaffQuery::List {
            unit,
            post,
            form,
            status,
            limit,
            page,
        } => {
            let limit = *limit;
            let unit = blockhub_model::CreditCode::parse(unit).context("--unit")?;
            let post = post.as_deref().map(post_category).transpose()?;
            if let Some(status) = status
                && !STATUSES.contains(&status.as_str())
            {
                bail!("--status {status}: use one of {}", STATUSES.join(", "));
            }
            let filter = StaffFilter {
                unit_code: unit.as_str().to_string(),
                post_category: post,
                employment_form: form.clone(),
                status: status.clone(),
                offset: (page - 1) * limit,
                limit,
            };
            let rows = store.staff(&filter).await?;
            for row in &rows {
                if args.json {
                    println!("{}", serde_json::to_string(row)?);
                } else {
                    println!(
                        "{} {:<8} {:<6} {:<8} {:<10} hired {:<10} contract to {}",
                        row.citizen_id,
                        row.name,
                        row.status,
                        row.post_category,
                        row.employment_form,
                        row.hire_date.as_deref().unwrap_or("?"),
                        row.contract_end.as_deref().unwrap_or("-"),
                    );
                }
            }
            if !args.json && !rows.is_empty() {
                let first = (page - 1) * limit + 1;
                let last = first + rows.len() as i64 - 1;
                let more = if rows.len() as i64 == limit {
                    format!("; more with --page {}", page + 1)
                } else {
                    String::new()
                };
                println!("(rows {first}-{last}, page {page}{more})");
            }
            rows.len()
        }
        StaffQuery::Counts => {
            let counts = store.post_counts().await?;
            for count in &counts {
                if args.json {
                    println!("{}", serde_json::to_string(count)?);
                } else {
                    println!(
                        "{} {:<28} {:<8} {:>5}",
                        count.unit_code, count.unit_name, count.post_category, count.active
                    );
                }
            }
            counts.len()
        }
        StaffQuery::History { citizen_id } => {
            let id = CitizenId::parse(citizen_id).context("the citizen ID")?;
            let items = store.history_of(id.as_str()).await?;
            for item in &items {
                if args.json {
                    println!("{}", serde_json::to_string(item)?);
                } else {
                    let deleted = if item.deleted != 0 { " (deleted)" } else { "" };
                    println!(
                        "{:<10} {:<12} {:<30} {} {}{deleted}",
                        item.when_text, item.fact, item.source_system, item.unit_code, item.detail
                    );
                }
            }
            items.len()
        }
    };
    store.close().await;
    if found == 0 && !args.json {
        eprintln!("Nothing matched.");
    }
    Ok(if found == 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
