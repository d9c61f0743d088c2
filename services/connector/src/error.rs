//! Errors of the connectors.

use blockhub_model::BrokerError;

use crate::export::ExportError;

/// Why an ingest run failed as a whole. Rejected rows are not errors: they
/// go to the dead-letter topic and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// An export could not be read at all or stopped being readable.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// No header row naming the source's required fields was found.
    #[error("{file}: no header row naming {required} in the first {searched} rows")]
    NoHeader {
        /// The file.
        file: String,
        /// The required column names, joined.
        required: String,
        /// Rows searched.
        searched: usize,
    },
    /// No broker answered at the configured address.
    #[error(
        "no Kafka broker answers at {brokers}; start the hub with `blockhub up`, or pass \
         --brokers HOST:PORT"
    )]
    BrokerUnreachable {
        /// The bootstrap servers tried.
        brokers: String,
    },
    /// The broker refused or did not confirm.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The producer shut down before confirming a message.
    #[error("producer closed before confirming a message to {topic}")]
    ProducerClosed {
        /// The topic.
        topic: String,
    },
}

impl ConnectorError {
    /// Whether re-running the same ingest later can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Broker(error) => error.is_retryable(),
            Self::ProducerClosed { .. } | Self::BrokerUnreachable { .. } => true,
            Self::Export(_) | Self::NoHeader { .. } => false,
        }
    }
}
