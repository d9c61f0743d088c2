//! `blockhub superseded`: statements the store kept as history instead of
//! applying, because it held a newer statement of the same fact (an old
//! export ingested late, a replay).

use std::process::ExitCode;

use anyhow::Result;
use blockhub_merger::store::SupersededFact;
use blockhub_model::mask_ids_in_text;

use crate::config::DataDir;

/// Flags of `superseded`: how many, how printed, from which store.
pub type SupersededArgs = super::dead_letters::ListArgs;

/// Runs `superseded`.
pub async fn run(data: &DataDir, args: SupersededArgs) -> Result<ExitCode> {
    let store = args.store.open_existing(data).await?;
    let kept = store.superseded_facts(args.limit.max(0)).await?;
    for fact in &kept {
        println!("{}", render(fact, args.json)?);
    }
    if kept.is_empty() && !args.json {
        println!("Nothing superseded: every statement the store received was applied.");
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// One kept statement as printed: a JSON object, or two lines of text.
/// ID numbers in what it said are masked, as in dead letters: `lookup` is
/// the way to a person.
pub fn render(fact: &SupersededFact, json: bool) -> Result<String> {
    let content = mask_ids_in_text(&fact.content);
    if json {
        let mut value = serde_json::to_value(fact)?;
        value["content"] = serde_json::Value::String(content);
        return Ok(serde_json::to_string(&value)?);
    }
    let time = |millis: i64| {
        chrono::DateTime::from_timestamp_millis(millis)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default()
    };
    let exported = fact
        .exported_at
        .map(|at| format!(", exported {}", time(at)))
        .unwrap_or_default();
    Ok(format!(
        "{} {} {} row {} ({} {}{exported}), not applied: the store held a newer \
         statement\n    {content}",
        time(fact.observed_at),
        fact.source_system,
        fact.location,
        fact.position,
        fact.operation,
        fact.fact_table,
    ))
}
