//! Sync health: is each feed fresh, late, stalled or failing, and why.
//!
//! Connectors publish a record of every run to the `sync-runs` topic; the
//! merger stores runs and per-source activity in the batch's transaction.
//! From those, the dead letters, the open alerts and the merger's lag, the
//! monitor judges every source against its expected cadence and serves the
//! verdicts to the gateway's SyncHealth service, to Prometheus and to the
//! status page.

pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod monitor;
pub mod page;
pub mod report;
pub mod schedule;
pub mod status;

pub use config::{Cadence, HealthConfig, SourceConfig};
pub use error::HealthError;
pub use http::StatusServer;
pub use monitor::Monitor;
pub use report::{HealthReport, HourCount, RecentDeadLetter, SourceHealth};
pub use status::Status;
