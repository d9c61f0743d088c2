//! Errors of the gateway, and their one conversion into gRPC statuses.

use blockhub_merger::MergerError;
use blockhub_model::BrokerError;
use tonic::Status;

/// Why the gateway could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The tokens file could not be read.
    #[error("tokens file {file} could not be read")]
    TokensRead {
        /// The file.
        file: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The tokens file is not valid TOML of the expected shape.
    #[error("tokens file {file} is invalid")]
    TokensParse {
        /// The file.
        file: String,
        /// The parser's error, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// The policy file could not be read.
    #[error("policy file {file} could not be read")]
    PolicyRead {
        /// The file.
        file: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The policy file is not valid.
    #[error("policy file {file}, line {line}: {reason}")]
    PolicyInvalid {
        /// The file.
        file: String,
        /// The line (0 when the parser could not tell).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A TLS certificate or key could not be read or used.
    #[error("TLS {what} {file} could not be used: {reason}")]
    Tls {
        /// Certificate, key or client CA.
        what: &'static str,
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("gateway could not listen on {address}")]
    Bind {
        /// The address.
        address: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gateway server failed")]
    Serve(#[source] tonic::transport::Error),
    /// The reflection service could not be built from the descriptors.
    #[error("reflection service could not be built")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// An audit entry could not be written as JSON for the audit topic.
    #[error("audit entry {seq} could not be encoded")]
    Encode {
        /// The entry's sequence number.
        seq: i64,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// Kafka refused or went away.
    #[error(transparent)]
    Broker(BrokerError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] MergerError),
    /// The status page could not be set up.
    #[error(transparent)]
    Health(#[from] blockhub_health::HealthError),
}

impl From<GatewayError> for Status {
    /// Database and file details stay in the server log; a client learns
    /// only whether to retry.
    fn from(error: GatewayError) -> Self {
        match &error {
            GatewayError::Store(inner) if inner.is_statement_timeout() => {
                Status::deadline_exceeded("the call's deadline passed; its query was stopped")
            }
            GatewayError::Store(inner) if inner.is_retryable() => {
                tracing::warn!(%error, "Store unavailable for a request.");
                Status::unavailable("the store is unavailable; retry later")
            }
            _ => {
                tracing::error!(%error, "Request failed.");
                Status::internal("the request could not be answered")
            }
        }
    }
}
