//! Errors of the merger and the store.

use blockhub_model::BrokerError;

/// Why the store or the merger failed.
#[derive(Debug, thiserror::Error)]
pub enum MergerError {
    /// The database could not be opened or migrated.
    #[error("store at {url} could not be opened")]
    Open {
        /// The database URL with any password removed.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The store's migrations failed.
    #[error("store migrations failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A statement failed.
    #[error("store could not {action}")]
    Query {
        /// What was being done.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A stored value does not read back as its type.
    #[error("stored {column} value is invalid: {reason}")]
    Corrupt {
        /// The column.
        column: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Kafka refused or went away.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The consumer could not be created or subscribed.
    #[error("consumer for group {group} could not {action}")]
    Consumer {
        /// The consumer group.
        group: String,
        /// What was being done.
        action: &'static str,
        /// rdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

impl MergerError {
    /// Whether PostgreSQL stopped the statement at its deadline
    /// (SQLSTATE 57014, query_canceled).
    pub fn is_statement_timeout(&self) -> bool {
        match self {
            Self::Query {
                source: sqlx::Error::Database(db),
                ..
            } => db.code().as_deref() == Some("57014"),
            _ => false,
        }
    }

    /// Whether the store refused because another writer held it: SQLite's
    /// one write lock (a transaction that read first cannot take it while
    /// another writes), or a PostgreSQL serialization failure or deadlock.
    /// The transaction was rolled back; trying again is safe.
    pub fn is_contention(&self) -> bool {
        matches!(self, Self::Query { source, .. } if is_contention(source))
    }

    /// Whether retrying later can help.
    pub fn is_retryable(&self) -> bool {
        if self.is_contention() {
            return true;
        }
        match self {
            Self::Query { source, .. } | Self::Open { source, .. } => {
                matches!(
                    source,
                    sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
                )
            }
            Self::Broker(error) => error.is_retryable(),
            Self::Consumer { .. } => true,
            Self::Migrate(_) | Self::Corrupt { .. } => false,
        }
    }
}

/// Whether the driver refused because another writer held the store (see
/// `MergerError::is_contention`).
pub(crate) fn is_contention(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code();
            matches!(
                code.as_deref(),
                Some("5" | "6" | "261" | "517" | "40001" | "40P01")
            ) || db.message().contains("database is locked")
                || db.message().contains("busy")
        }
        _ => false,
    }
}

/// Shorthand for mapping a driver error with what was being done.
pub(crate) fn query(action: &'static str) -> impl FnOnce(sqlx::Error) -> MergerError {
    move |source| MergerError::Query { action, source }
}
