//! Errors of sync health.

use blockhub_merger::MergerError;

/// What can go wrong judging the feeds or serving the page.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The configuration file could not be read.
    #[error("health configuration {path} could not be read")]
    ReadConfig {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is not valid.
    #[error("health configuration {file}: {reason}")]
    Config {
        /// The file (or "default").
        file: String,
        /// What is wrong, with the line where known.
        reason: String,
    },
    /// The store could not be read.
    #[error("reading the store for sync health")]
    Store(#[from] MergerError),
    /// The status page's address could not be bound.
    #[error(
        "status page address {address} could not be bound; choose another with \
         --status-listen ADDR (or `off`)"
    )]
    Bind {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
}

impl HealthError {
    /// Whether trying again later can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            HealthError::Store(error) => error.is_retryable(),
            HealthError::ReadConfig { .. } | HealthError::Config { .. } => false,
            HealthError::Bind { .. } => false,
        }
    }
}
