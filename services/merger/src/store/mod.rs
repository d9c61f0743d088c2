//! The block data store: SQLite embedded, PostgreSQL in production.
//!
//! One schema and one set of statements serve both backends through sqlx's
//! Any driver, so every test run against one backend exercises the same
//! SQL as the other. Writes come only from the merger (`apply`); reads for
//! the gateway and the command line are in `read`.

mod alerts;
mod apply;
mod audit;
mod facts;
mod read;
mod staff;
mod sync;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, ConnectOptions, Connection};
use tracing::info;

use crate::error::{MergerError, query};

pub use alerts::{AckOutcome, AlertFilter, AlertRecord, AlertSync, StoredAlert};
pub use apply::{BatchOutcome, Delivered, DeliveredItem};
pub use audit::{AuditBreak, AuditDraft, AuditEntry, AuditReport, GENESIS, chain_hash};
pub use facts::{RosterFact, RuleFacts, UnitFact};
pub use read::{ContentSnapshot, Provenance, StoredPayment, StoredRosterEntry, SupersededFact};
pub use staff::{HistoryItem, PostCount, StaffFilter, StaffRow};
pub use sync::ActivityHour;

/// Which database a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// The block data store.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating an SQLite file if needed) and migrates the store.
    pub async fn open(url: &str) -> Result<Self, MergerError> {
        install_default_drivers();
        let shown = redact(url);
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|source| MergerError::Open {
                url: shown.clone(),
                source,
            })?
            .disable_statement_logging();
        // One connection on its own first: a database that refuses or does
        // not answer then says why at once, where a pool would only report,
        // after its 30 s, that it timed out waiting for a connection.
        let probe = tokio::time::timeout(Duration::from_secs(10), options.connect()).await;
        let open_error = |source| MergerError::Open {
            url: shown.clone(),
            source,
        };
        match probe {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
            }
            Ok(Err(source)) => return Err(open_error(source)),
            Err(_) => {
                let silent = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the database did not answer within 10 s",
                );
                return Err(open_error(sqlx::Error::Io(silent)));
            }
        }
        // SQLite allows one writer at a time; more connections only queue.
        let max = if backend == Backend::Sqlite { 4 } else { 16 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|source| MergerError::Open {
                url: shown.clone(),
                source,
            })?;
        if backend == Backend::Sqlite {
            // WAL lets the gateway read while the merger writes.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(query("enable write-ahead logging"))?;
        }
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(MergerError::Migrate)?;
        info!(url = %shown, ?backend, "Store opened.");
        Ok(Self { pool, backend })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A database URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact("postgres://bh:secret@127.0.0.1/db"),
            "postgres://bh:***@127.0.0.1/db"
        );
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/db"),
            "postgres://postgres@127.0.0.1/db"
        );
    }
}
