//! `blockhub health`: exit 0 once the gateway answers SERVING.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::ClientArgs;
use crate::config::DataDir;

/// Flags of `health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Keep asking for up to this many seconds before giving up.
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
    /// Gateway settings.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `health`.
pub async fn run(data: &DataDir, args: HealthArgs) -> Result<ExitCode> {
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    loop {
        let answer = match super::client_settings(data, &args.client) {
            Ok((gateway, _)) => check(&gateway, &args.client)
                .await
                .map(|()| gateway.clone()),
            Err(error) => Err(format!("{error:#}")),
        };
        match answer {
            Ok(gateway) => {
                println!("SERVING {gateway}");
                return Ok(ExitCode::SUCCESS);
            }
            Err(reason) if Instant::now() >= deadline => {
                eprintln!("NOT SERVING: {reason}");
                return Ok(ExitCode::FAILURE);
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
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
