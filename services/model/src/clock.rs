//! The time the hub goes by: the system's, or one a test sets.
//!
//! Sync health judges freshness against deadlines days apart; a test
//! cannot wait for them, so connectors and the health monitor read the
//! time through a `Clock` that a test may hold and move.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// The system clock, or a manual one shared by everything given a clone.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands at `at` until moved with `set` or `advance`.
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(at.timestamp_millis()))),
        }
    }

    /// The time now, to the millisecond (the precision of the wire).
    pub fn now(&self) -> DateTime<Utc> {
        let millis = match &self.manual {
            Some(at) => at.load(Ordering::SeqCst),
            None => Utc::now().timestamp_millis(),
        };
        DateTime::from_timestamp_millis(millis).unwrap_or_else(Utc::now)
    }

    /// Moves a manual clock to `at`; the system clock ignores it.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(manual) = &self.manual {
            manual.store(at.timestamp_millis(), Ordering::SeqCst);
        }
    }

    /// Moves a manual clock forward; the system clock ignores it.
    pub fn advance(&self, by: chrono::Duration) {
        if let Some(manual) = &self.manual {
            manual.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = DateTime::from_timestamp_millis(1_765_000_000_000).unwrap();
        let clock = Clock::manual(start);
        let shared = clock.clone();
        assert_eq!(clock.now(), start);
        shared.advance(chrono::Duration::days(2));
        assert_eq!(clock.now(), start + chrono::Duration::days(2));
        clock.set(start);
        assert_eq!(shared.now(), start);
    }

    #[test]
    fn system_clock_ignores_set() {
        let clock = Clock::system();
        clock.set(DateTime::from_timestamp_millis(0).unwrap());
        assert!(clock.now().timestamp() > 1_700_000_000);
    }
}
