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
//! baseline, and the merger's peak resident memory. The merger runs in a
//! process of its own (this program started again with `merge`), so its
//! peak holds nothing of the generating and publishing before it.
//! Given several sizes, it measures each in turn in the same run and
//! reports every peak as a ratio to the smallest size's peak on the same
//! backend: how the merger's memory grows with N.
//!
//!   cargo run --release -p blockhub-benches -- --persons 10000 --backend both
//!   cargo run --release -p blockhub-benches -- --persons 100000,1000000 \
//!       --partitions 64 --backend both

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use blockhub_benches::Backends;
use blockhub_connector::publish::Publisher;
use blockhub_merger::{MergerConfig, Store};
use blockhub_model::{Envelope, Event, EventKind, Fact, KafkaSettings, Operation, PayrollPayment};
use blockhub_tests::{Backend, TestBroker, TestDatabase, test_keyer, wait_caught_up_within};
use clap::{Parser, Subcommand};

/// Merger throughput and peak memory, each against a baseline measured in
/// the same run (see BENCHMARKS.md).
#[derive(Debug, Parser)]
struct Args {
    /// Internal: the merger phase, run by the benchmark itself.
    #[command(subcommand)]
    phase: Option<Phase>,
    /// Persons to generate; each gets 12 monthly payments. Several sizes,
    /// comma-separated, are measured one after another in the same run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10000",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    persons: Vec<u64>,
    /// Which store backends to measure.
    #[arg(long, value_enum, default_value_t = Backends::Both)]
    backend: Backends,
    /// Partitions of the payroll topic the payments go to (the other
    /// topics keep the hub's default of 3). tansu 0.6 reads a partition
    /// from the fetched offset to its end on every fetch, so a fetch costs
    /// time in proportion to what is left in the partition; a million
    /// persons need more, smaller partitions.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
    /// Measure the merger only, without the direct-write baseline (whose
    /// SQLite write of a million persons takes about 20 minutes): for
    /// memory figures, whose baseline is the smallest size's peak.
    #[arg(long)]
    memory_only: bool,
}

#[derive(Debug, Subcommand)]
enum Phase {
    /// Runs the merger from the given topics into the given store until
    /// it has applied `rows` payments, then prints its figures on one
    /// line starting with `merge-phase`.
    #[command(hide = true)]
    Merge {
        #[arg(long)]
        brokers: String,
        #[arg(long)]
        topic_prefix: String,
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        rows: u64,
    },
}

/// What the merger process reports of its run.
struct MergePhase {
    merged: Duration,
    peak_kib: u64,
    spent: blockhub_merger::LoopProfile,
}

impl MergePhase {
    /// The figures as the child prints them (times in microseconds); read
    /// back by `from_figures`, the one other place that knows the order.
    fn figures(&self) -> [u64; 9] {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let spent = &self.spent;
        [
            us(self.merged),
            self.peak_kib,
            us(spent.waiting),
            us(spent.filling),
            us(spent.decoding),
            us(spent.applying),
            us(spent.other),
            spent.batches,
            spent.messages,
        ]
    }

    fn from_figures(figures: [u64; 9]) -> Self {
        let [
            merged,
            peak_kib,
            waiting,
            filling,
            decoding,
            applying,
            other,
            batches,
            messages,
        ] = figures;
        let us = Duration::from_micros;
        Self {
            merged: us(merged),
            peak_kib,
            spent: blockhub_merger::LoopProfile {
                waiting: us(waiting),
                filling: us(filling),
                decoding: us(decoding),
                applying: us(applying),
                other: us(other),
                batches,
                messages,
            },
        }
    }
}

/// The n-th generated payment: person n / 12, month n % 12 + 1 of 2026.
fn payment(n: u64) -> Result<PayrollPayment> {
    let month = u32::try_from(n % 12).context("month")? + 1;
    blockhub_benches::payment(n / 12, month)
}

fn envelope(n: u64) -> Envelope {
    Envelope::for_file_row("finance.payroll", "bench.csv", n + 2, Operation::Upsert)
}

/// This process's peak resident memory. An error rather than 0 when it
/// cannot be read: a zero peak would pass any memory target.
fn peak_rss_kib() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")
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
    partitions: i32,
) -> Result<(Duration, MergePhase)> {
    let settings = broker.settings();
    let payroll = settings.topic(EventKind::PayrollPayment);
    // Created before the publisher creates the rest with the default.
    KafkaSettings {
        partitions,
        ..settings.clone()
    }
    .ensure_named_topics(std::slice::from_ref(&payroll))
    .await?;
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
    let phase = merge_in_child(&settings, &database.url, rows).await?;
    let (_, _, payments, _) = store.counts().await?;
    anyhow::ensure!(
        payments as u64 == rows,
        "merger stored {payments} of {rows} payments"
    );
    database.remove(store).await;
    Ok((published, phase))
}

/// Runs the merger phase in a process of its own and reads its figures.
async fn merge_in_child(settings: &KafkaSettings, url: &str, rows: u64) -> Result<MergePhase> {
    let exe = std::env::current_exe().context("finding the benchmark's executable")?;
    let args = [
        "merge".to_string(),
        "--brokers".into(),
        settings.brokers.clone(),
        "--topic-prefix".into(),
        settings.topic_prefix.clone(),
        "--database-url".into(),
        url.to_string(),
        "--rows".into(),
        rows.to_string(),
    ];
    let output = tokio::process::Command::new(exe)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .context("starting the merger process")?;
    anyhow::ensure!(
        output.status.success(),
        "the merger process failed ({})",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("merge-phase "))
        .context("the merger process printed no figures")?;
    let numbers = line
        .split_whitespace()
        .map(str::parse::<u64>)
        .collect::<Result<Vec<u64>, _>>()
        .with_context(|| format!("unreadable figures from the merger process: {line}"))?;
    let figures = <[u64; 9]>::try_from(numbers)
        .map_err(|_| anyhow::anyhow!("expected nine figures from the merger process: {line}"))?;
    Ok(MergePhase::from_figures(figures))
}

/// The merger phase itself, in the child process: merges until `rows`
/// payments are applied and prints the figures for the parent.
async fn merge_phase(brokers: String, topic_prefix: String, url: String, rows: u64) -> Result<()> {
    let mut settings = KafkaSettings::new(brokers);
    settings.topic_prefix = topic_prefix;
    let payroll = settings.topic(EventKind::PayrollPayment);
    let store = Store::open(&url).await?;
    let mut config = MergerConfig::new(settings.clone());
    config.group = format!("{}bench", settings.topic_prefix);
    let started = Instant::now();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let merger = tokio::spawn(blockhub_merger::run(config.clone(), store.clone(), async {
        let _ = stopped.await;
    }));
    // A generous limit that grows with N: the tests' two minutes are too
    // short for a million payments.
    let limit = std::time::Duration::from_secs(120 + rows / 500);
    // Watched through the store's own offsets, a small table, because a
    // lag check asks the broker for every partition's watermarks and
    // would load the broker the merger is reading from; one lag check
    // then confirms that nothing else is waiting.
    loop {
        let applied: i64 = store
            .next_offsets(&config.group)
            .await?
            .iter()
            .filter(|((topic, _), _)| *topic == payroll)
            .map(|(_, next)| next)
            .sum();
        if applied as u64 >= rows {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "merger applied {applied} of {rows} payments in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_caught_up_within(&config, &store, limit).await;
    let phase = MergePhase {
        merged: started.elapsed(),
        peak_kib: peak_rss_kib()?,
        spent: blockhub_merger::profile(),
    };
    let _ = stop.send(());
    merger.await??;
    let figures: Vec<String> = phase.figures().iter().map(u64::to_string).collect();
    println!("merge-phase {}", figures.join(" "));
    Ok(())
}

/// One size on one backend, measured.
struct Measured {
    persons: u64,
    backend: &'static str,
    direct: Option<Duration>,
    phase: MergePhase,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(Phase::Merge {
        brokers,
        topic_prefix,
        database_url,
        rows,
    }) = args.phase
    {
        return merge_phase(brokers, topic_prefix, database_url, rows).await;
    }
    let mut sizes = args.persons.clone();
    sizes.sort_unstable();
    sizes.dedup();
    anyhow::ensure!(!sizes.is_empty(), "--persons needs at least one size");
    let backends = args.backend.selected();
    let broker = TestBroker::start().await;
    println!(
        "persons {} payroll partitions {}",
        sizes
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        args.partitions
    );
    println!(
        "| N persons | backend | direct rows/s | publish rows/s | merger rows/s \
         | merger / direct | merger peak RSS MiB | peak / peak at N = {} |",
        sizes[0]
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut measured: Vec<Measured> = Vec::new();
    for &persons in &sizes {
        let rows = persons * 12;
        for &(name, backend) in &backends {
            let direct = if args.memory_only {
                None
            } else {
                Some(baseline(backend, rows).await?)
            };
            let (published, phase) =
                through_merger(backend, &broker, rows, args.partitions).await?;
            let (merged, peak_kib) = (phase.merged, phase.peak_kib);
            // The smallest size on the same backend, measured first.
            let smallest = measured
                .iter()
                .find(|m| m.backend == name)
                .map_or(peak_kib, |m| m.phase.peak_kib);
            let rate = |d: Duration| rows as f64 / d.as_secs_f64();
            let (direct_rate, ratio) = match direct {
                Some(direct) => (
                    format!("{:.0}", rate(direct)),
                    format!("{:.2}", rate(merged) / rate(direct)),
                ),
                None => ("-".into(), "-".into()),
            };
            println!(
                "| {persons} | {name} | {direct_rate} | {:.0} | {:.0} | {ratio} | {:.0} | {:.2} |",
                rate(published),
                rate(merged),
                peak_kib as f64 / 1024.0,
                peak_kib as f64 / smallest.max(1) as f64
            );
            measured.push(Measured {
                persons,
                backend: name,
                direct,
                phase,
            });
        }
    }
    // Where the merger's time went, phase by phase, next to the direct
    // write of the same rows.
    println!();
    println!(
        "| N persons | backend | direct s | merger s | waiting s | filling s | decoding s \
         | applying s | other s | batches | mean batch |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for m in measured {
        let Measured {
            persons,
            backend: name,
            direct,
            phase: MergePhase { merged, spent, .. },
        } = m;
        let s = |d: Duration| format!("{:.1}", d.as_secs_f64());
        println!(
            "| {persons} | {name} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
            direct.map_or_else(|| "-".into(), s),
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
