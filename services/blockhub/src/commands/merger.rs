//! `blockhub merger`: the merger alone.

use std::process::ExitCode;

use anyhow::{Context, Result};
use blockhub_merger::{MergerConfig, Store};
use clap::Args;

use crate::BrokerArgs;
use crate::StoreArgs;
use crate::config::DataDir;

/// Flags of `merger`.
#[derive(Debug, Args)]
pub struct MergerArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The consumer group: the name the store keeps its offsets under.
    #[arg(long, env = "BLOCKHUB_MERGER_GROUP", default_value = "blockhub-merger")]
    pub group: String,
    /// Split the partitions with the other mergers of the group through
    /// the broker (several mergers on a Kafka cluster). Without it, the
    /// merger reads every partition itself from the store's offsets, which
    /// resumes at once after a crash.
    #[arg(long)]
    pub share_partitions: bool,
    /// Broker settings.
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// Runs `merger` until stopped.
pub async fn run(data: &DataDir, args: MergerArgs) -> Result<ExitCode> {
    let url = args.store.url(data);
    let store = Store::open(&url).await.context("opening the store")?;
    let mut config = MergerConfig::new(super::kafka_settings(data, &args.broker)?);
    config.group = args.group;
    if args.share_partitions {
        config.membership = blockhub_merger::Membership::Group;
    }
    blockhub_merger::run(config, store, super::stop_signal())
        .await
        .context("merger")?;
    Ok(ExitCode::SUCCESS)
}
