//! Merger throughput against a direct batched write, in the same run.
//!
//! Generates N persons with 12 months of payroll each, then:
//!   1. baseline: writes the same rows straight into a fresh store with
//!      plain multi-row inserts (no broker, no bookkeeping);
//!   2. publishes them through the connector's idempotent producer to a
//!      real tansu broker;
//!   3. runs the merger on another fresh store until it has caught up.
//!
//! Reports rows per second of each, the merger's as a ratio to the
//! baseline, and the process's peak resident memory during the merger
//! phase (the peak is reset before it through /proc/self/clear_refs).
//!
//!   cargo run --release -p blockhub-benches -- --persons 10000 --backend both

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use blockhub_benches::Backends;
use blockhub_connector::publish::Publisher;
use blockhub_merger::{MergerConfig, Store};
use blockhub_model::{Envelope, Event, Fact, Operation, PayrollPayment};
use blockhub_tests::{Backend, TestBroker, TestDatabase, test_keyer, wait_caught_up_within};
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Persons to generate; each gets 12 monthly payments.
    #[arg(long, default_value_t = 10_000)]
    persons: u64,
    /// Which store backends to measure.
    #[arg(long, value_enum, default_value_t = Backends::Both)]
    backend: Backends,
}

/// The n-th generated payment: person n / 12, month n % 12 + 1 of 2026.
fn payment(n: u64) -> Result<PayrollPayment> {
    let month = u32::try_from(n % 12).context("month")? + 1;
    blockhub_benches::payment(n / 12, month)
}

fn envelope(n: u64) -> Envelope {
    Envelope::for_file_row("finance.payroll", "bench.csv", n + 2, Operation::Upsert)
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn reset_peak_rss() {
    // Writing 5 resets the peak resident set size (Linux 4.0 and later).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn baseline(backend: Backend, rows: u64) -> Result<Duration> {
    let database = TestDatabase::create(backend).await;
    let store = Store::open(&database.url).await?;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    let envelopes: Vec<Envelope> = (0..1000).map(envelope).collect();
    for n in 0..rows {
        batch.push((payment(n)?, &envelopes[(n % 1000) as usize]));
        if batch.len() == 1000 {
            store.insert_payments_direct(&batch).await?;
            batch.clear();
        }
    }
    store.insert_payments_direct(&batch).await?;
    let elapsed = started.elapsed();
    database.remove(store).await;
    Ok(elapsed)
}

async fn through_merger(
    backend: Backend,
    broker: &TestBroker,
    rows: u64,
) -> Result<(Duration, Duration, u64, blockhub_merger::LoopProfile)> {
    let settings = broker.settings();
    let mut publisher = Publisher::connect(&settings, test_keyer()).await?;
    let started = Instant::now();
    for n in 0..rows {
        let event = Event {
            envelope: envelope(n),
            fact: Fact::PayrollPayment(payment(n)?),
        };
        publisher.send(&event).await?;
    }
    publisher.finish().await?;
    let published = started.elapsed();

    let database = TestDatabase::create(backend).await;
    let store = Store::open(&database.url).await?;
    let mut config = MergerConfig::new(settings.clone());
    config.group = format!("{}bench", settings.topic_prefix);
    reset_peak_rss();
    blockhub_merger::reset_profile();
    let started = Instant::now();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let merger = tokio::spawn(blockhub_merger::run(config.clone(), store.clone(), async {
        let _ = stopped.await;
    }));
    // A generous limit that grows with N: the tests' two minutes are too
    // short for a million payments.
    let limit = std::time::Duration::from_secs(120 + rows / 500);
    wait_caught_up_within(&config, &store, limit).await;
    let merged = started.elapsed();
    let peak = peak_rss_kib();
    let spent = blockhub_merger::profile();
    let _ = stop.send(());
    merger.await??;
    let (_, _, payments, _) = store.counts().await?;
    anyhow::ensure!(
        payments as u64 == rows,
        "merger stored {payments} of {rows} payments"
    );
    database.remove(store).await;
    Ok((published, merged, peak, spent))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let rows = args.persons * 12;
    let backends = args.backend.selected();
    let broker = TestBroker::start().await;
    println!("persons {} payments {rows}", args.persons);
    println!(
        "| backend | direct rows/s | publish rows/s | merger rows/s | merger / direct \
         | merger peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|");
    let mut profiles = Vec::new();
    for (name, backend) in backends {
        let direct = baseline(backend, rows).await?;
        let (published, merged, peak, spent) = through_merger(backend, &broker, rows).await?;
        profiles.push((name, direct, merged, spent));
        let rate = |d: Duration| rows as f64 / d.as_secs_f64();
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.2} | {:.0} |",
            rate(direct),
            rate(published),
            rate(merged),
            rate(merged) / rate(direct),
            peak as f64 / 1024.0
        );
    }
    // Where the merger's time went, phase by phase, next to the direct
    // write of the same rows.
    println!();
    println!(
        "| backend | direct s | merger s | waiting s | filling s | decoding s | applying s \
         | other s | batches | mean batch |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, direct, merged, spent) in profiles {
        let s = |d: Duration| format!("{:.1}", d.as_secs_f64());
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
            s(direct),
            s(merged),
            s(spent.waiting),
            s(spent.filling),
            s(spent.decoding),
            s(spent.applying),
            s(spent.other),
            spent.batches,
            spent.messages as f64 / spent.batches.max(1) as f64
        );
    }
    Ok(())
}
