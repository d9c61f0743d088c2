//! Where the merger's time goes: wall-clock time per phase of its loop,
//! summed over every batch since the last reset. The benchmark prints it;
//! it costs a clock read per phase per batch, and two per message for
//! decoding.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static WAITING: AtomicU64 = AtomicU64::new(0);
static FILLING: AtomicU64 = AtomicU64::new(0);
static DECODING: AtomicU64 = AtomicU64::new(0);
static APPLYING: AtomicU64 = AtomicU64::new(0);
static OTHER: AtomicU64 = AtomicU64::new(0);
static BATCHES: AtomicU64 = AtomicU64::new(0);
static MESSAGES: AtomicU64 = AtomicU64::new(0);

/// The loop's time per phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopProfile {
    /// Waiting for a batch's first message (the broker's pace, or idle).
    pub waiting: Duration,
    /// Receiving the rest of each batch from the prefetch queue.
    pub filling: Duration,
    /// Decoding Avro (part of receiving, counted apart).
    pub decoding: Duration,
    /// Writing each batch and its offsets to the store, one transaction.
    pub applying: Duration,
    /// Dead letters to Kafka and the offset commit to the broker.
    pub other: Duration,
    /// Batches applied.
    pub batches: u64,
    /// Messages applied.
    pub messages: u64,
}

pub(crate) enum Phase {
    Waiting,
    Filling,
    Decoding,
    Applying,
    Other,
}

pub(crate) fn add(phase: Phase, spent: Duration) {
    let counter = match phase {
        Phase::Waiting => &WAITING,
        Phase::Filling => &FILLING,
        Phase::Decoding => &DECODING,
        Phase::Applying => &APPLYING,
        Phase::Other => &OTHER,
    };
    counter.fetch_add(spent.as_nanos() as u64, Ordering::Relaxed);
}

pub(crate) fn batch(messages: usize) {
    BATCHES.fetch_add(1, Ordering::Relaxed);
    MESSAGES.fetch_add(messages as u64, Ordering::Relaxed);
}

/// The sums since the last reset (every merger in the process together).
pub fn profile() -> LoopProfile {
    let read = |counter: &AtomicU64| Duration::from_nanos(counter.load(Ordering::Relaxed));
    LoopProfile {
        waiting: read(&WAITING),
        filling: read(&FILLING),
        decoding: read(&DECODING),
        applying: read(&APPLYING),
        other: read(&OTHER),
        batches: BATCHES.load(Ordering::Relaxed),
        messages: MESSAGES.load(Ordering::Relaxed),
    }
}

/// Starts the sums again.
pub fn reset_profile() {
    for counter in [
        &WAITING, &FILLING, &DECODING, &APPLYING, &OTHER, &BATCHES, &MESSAGES,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
}
